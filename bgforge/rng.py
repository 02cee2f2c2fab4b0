"""Deterministic randomness.

Every random choice is derived from (seed, purpose/key) through SHA-256, never from global
state, so any worker, slice or node that handles a sample makes the same choice.
"""

import hashlib

import numpy as np


def derive_seed(seed: int, *parts: object) -> int:
    text = "\x1f".join([str(int(seed))] + [str(p) for p in parts])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def rng_for(seed: int, *parts: object) -> np.random.Generator:
    """A generator private to (seed, *parts), e.g. rng_for(seed, "val-split") or (seed, key)."""
    return np.random.Generator(np.random.PCG64(derive_seed(seed, *parts)))
