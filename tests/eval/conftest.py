"""Fixtures the eval tests share."""

import pytest
from helpers import build

from bgforge import recipe as recipemod
from bgforge.planners import BuildContext


@pytest.fixture(scope="session")
def wb95_built(tmp_path_factory, cub_root, places_root):
    """One Waterbirds-95 build on the synthetic trees, read (never written) by the eval tests."""
    out = tmp_path_factory.mktemp("wb95") / "o"
    build(recipemod.load("waterbirds-95"), BuildContext(roots={"cub": cub_root, "places": places_root}), out)
    return out
