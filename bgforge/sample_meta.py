"""The reserved keys of a sample's meta: what every planner writes and what finalize, eval, inspect,
the previews and an input shard's reader look up, declared once.

    split_name   the split the sample is written to (groups.json's split, the layouts' folders)
    split        the `split` column of metadata.csv: a code where the planner has SPLIT_CODES
                 (Waterbirds' 0/1/2), else the name again; absent from most recipes' samples
    group        the group (a code or a name)
    group_name   its name, as groups.json counts it

A reader asks `split_of(meta)` / `group_of(meta)` (the name first, the plain key otherwise) instead of
falling back between the keys itself.
"""

from __future__ import annotations

_UNSET = object()


def reserved_meta(split_name: str, group=_UNSET, group_name=_UNSET, *, split=_UNSET) -> dict:
    """The reserved keys of one sample: `split_name`, `split` when given, and `group` with its
    `group_name` (the group itself unless given) when a group is given."""
    meta = {"split_name": split_name}
    if split is not _UNSET:
        meta["split"] = split
    if group is not _UNSET:
        meta["group"] = group
        meta["group_name"] = group if group_name is _UNSET else group_name
    return meta


def split_of(meta: dict, default=None):
    """The split a sample's meta (or a metadata row) names: `split_name`, else `split`, else default."""
    return meta.get("split_name", meta.get("split", default))


def group_of(meta: dict, default=None):
    """The group name a sample's meta (or a metadata row) names: `group_name`, else `group`, else default."""
    return meta.get("group_name", meta.get("group", default))
