"""`bgforge segment`: see planners/stage.py."""

from .stage import METADATA_COLUMNS, plan, validate  # noqa: F401
from .stage import make_segment_chain as make_chain  # noqa: F401
