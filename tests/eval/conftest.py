"""Fixtures the eval tests share."""

import pytest

import bgforge


@pytest.fixture(scope="session")
def wb95_built(tmp_path_factory, cub_root, places_root):
    """One Waterbirds-95 build on the synthetic trees, read (never written) by the eval tests."""
    out = tmp_path_factory.mktemp("wb95") / "o"
    bgforge.build("waterbirds-95", out, roots={"cub": cub_root, "places": places_root},
                  run=bgforge.RunConfig(progress=False))
    return out
