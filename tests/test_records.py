"""Sample records."""

from __future__ import annotations

import dataclasses

from bgforge.records import Sample


def test_sample_to_dict_is_shallow_and_equal_to_asdict():
    s = Sample(key="k", split="train", inputs={"box": [1, 2, 3, 4]}, meta={"label": 1})
    assert s.to_dict() == dataclasses.asdict(s)
    assert not hasattr(s, "__dict__")  # slots: a million of them while a plan is made
