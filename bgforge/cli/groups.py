"""Option groups: options that several commands take together, declared once as a dataclass.

A command names a group as one parameter (`run: RunOptions = group()`); `expand_groups` shows Typer
the group's options in its place and hands the command one filled-in dataclass. `group(omit=...)`
leaves out options a command has no use for (they keep the dataclass default), and keyword
arguments change a default for that command only.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from typing import Any, Callable, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


@dataclasses.dataclass(frozen=True)
class GroupSpec:
    omit: tuple[str, ...] = ()
    defaults: dict = dataclasses.field(default_factory=dict)


def group(omit: tuple[str, ...] = (), **defaults: Any) -> Any:
    """The default of a group parameter: which options to leave out and which defaults to change."""
    return GroupSpec(tuple(omit), defaults)


def _group_parameters(cls: type, spec: GroupSpec) -> list[inspect.Parameter]:
    hints = typing.get_type_hints(cls, include_extras=True)
    params = []
    for f in dataclasses.fields(cls):
        if f.name in spec.omit:
            continue
        default = spec.defaults.get(f.name, f.default)
        if default is dataclasses.MISSING:  # a required option
            default = inspect.Parameter.empty
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                        annotation=hints[f.name]))
    return params


def expand_groups(command: F) -> F:
    """Replace each dataclass-typed parameter of `command` by the options of that dataclass."""
    signature = inspect.signature(command, eval_str=True)
    plain, expanded, groups = [], [], {}
    for p in signature.parameters.values():
        if dataclasses.is_dataclass(p.annotation):
            spec = p.default if isinstance(p.default, GroupSpec) else GroupSpec()
            members = _group_parameters(p.annotation, spec)
            groups[p.name] = (p.annotation, [m.name for m in members], spec.defaults)
            expanded.extend(members)
        else:
            plain.append(p)

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> Any:
        for name, (cls, members, defaults) in groups.items():
            given = {m: kwargs.pop(m) for m in members}
            kwargs[name] = cls(**{**defaults, **given})
        return command(**kwargs)

    params = plain + expanded
    wrapper.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    return wrapper  # type: ignore[return-value]
