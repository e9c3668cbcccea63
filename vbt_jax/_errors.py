"""Exception types raised by vbt_jax. All derive from ValueError or RuntimeError."""


class ConnectomeError(ValueError):
    """A connectome file or array is malformed (shape, NaN, sign, labels...)."""


class ConfigError(ValueError):
    """An experiment configuration is invalid; the message names the key at fault."""


class SimulationError(ValueError):
    """Arguments to :func:`vbt_jax.simulate` are inconsistent (checked before compiling)."""


class DivergenceError(RuntimeError):
    """A simulation produced NaN or inf values."""
