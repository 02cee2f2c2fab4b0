"""Text from untrusted files, made safe to print on a terminal.

groups.json, manifests, plan names and metadata values come from whoever made the output folder:
an ESC sequence in a group name would otherwise reach the terminal raw (move the cursor, rewrite
earlier lines, set the window title). `printable` escapes every control character (C0, DEL, C1)
and the Unicode bidirectional overrides the way Python's repr does (`\\x1b`, `\\n`, `\\u202e`);
`printable_tree` applies it to every string (keys too) of a JSON-like value. `inspect` and
`status` pass what they print through it.
"""

from __future__ import annotations

import re

# C0 controls, DEL, C1 controls; bidi embeddings/overrides/isolates and the line/paragraph separators
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(m: re.Match) -> str:
    c = m.group()
    if c in _NAMED:
        return _NAMED[c]
    return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"


def printable(value: object) -> str:
    """str(value) with every control character written as an escape (backslashes stay as they are)."""
    text = value if isinstance(value, str) else str(value)
    return _UNSAFE.sub(_escape, text) if _UNSAFE.search(text) else text


def printable_tree(value):
    """A copy of a JSON-like value whose every string, dict keys included, went through `printable`."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {printable_tree(k): printable_tree(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(printable_tree(v) for v in value)
    return value
