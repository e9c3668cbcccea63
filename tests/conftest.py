import itertools

import jax
import jax.random as jr
import pytest


@pytest.fixture
def getkey():
    """Fresh, distinct PRNG keys for each call within a test (diffrax's pattern)."""
    counter = itertools.count()
    return lambda: jr.key(next(counter))


@pytest.fixture
def x64():
    enable = getattr(jax, "enable_x64", None)
    ctx = enable(True) if enable is not None else jax.experimental.enable_x64()
    with ctx:
        yield
