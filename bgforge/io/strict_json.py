"""JSON that bgforge reads back from disk is untrusted input: its own bookkeeping (plan.json, commit
markers, the key index header) as much as a manifest or an input shard's `json` member.

`loads` refuses what `json.loads` would quietly accept or crash on: a duplicate key (the last one
wins in `json.loads`, so `{"name": "a", "name": "../../x"}` reads as the second), nesting deeper
than any record needs (Python's recursion limit otherwise ends the run with a traceback), and
NaN / Infinity. Every refusal is a ValueError, which callers already treat as "not valid JSON".
"""

from __future__ import annotations

import json

MAX_DEPTH = 64  # bgforge's own records nest 4 deep; a manifest row's boxes 3


class StrictJSONError(ValueError):
    pass


def _pairs(pairs: list) -> dict:
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise StrictJSONError(f"duplicate key {key!r}")
        obj[key] = value
    return obj


def _constant(name: str):
    raise StrictJSONError(f"{name} is not a JSON number")


def _depth(data: bytes) -> int:
    """How deep brackets nest, counted outside strings (one linear pass, no recursion)."""
    deepest = depth = 0
    in_string = escaped = False
    for c in data:
        if in_string:
            if escaped:
                escaped = False
            elif c == 0x5C:  # backslash
                escaped = True
            elif c == 0x22:
                in_string = False
        elif c == 0x22:
            in_string = True
        elif c in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
        elif c in (0x5D, 0x7D):
            depth -= 1
    return deepest


def loads(text: str | bytes, max_depth: int | None = MAX_DEPTH, allow_nan: bool = False):
    """json.loads with duplicate keys, NaN/Infinity and nesting past `max_depth` refused (ValueError).

    `allow_nan`: a manifest's NaN box is a bad box the planner logs and drops, not a bad file.
    `max_depth=None` skips the depth count (plan.json lines, checked byte for byte against the
    recomputed plan instead); Python's recursion limit is then still caught.
    """
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
    if max_depth is not None and data.count(b"[") + data.count(b"{") > max_depth and _depth(data) > max_depth:
        raise StrictJSONError(f"nested more than {max_depth} levels deep")
    try:
        return json.loads(data, object_pairs_hook=_pairs, **({} if allow_nan else {"parse_constant": _constant}))
    except RecursionError:
        raise StrictJSONError("nested too deep to parse") from None
