"""The exceptions and warnings vbt_jax and the inference package raise on purpose.

Every one derives from :class:`VbtError`, so a caller (the ``vbt`` command among them) can tell
an error the library diagnosed from a bug. Errors about what the caller passed in are
``ValueError`` subclasses:

- :class:`ConfigError`: an experiment configuration (TOML) is invalid; only configuration
  readers raise it, and the message starts with the file, the section and the key;
- :class:`DataError`: input data (a file or an array) are malformed or inconsistent; the message
  names the file or argument, and both sides of a mismatch. :class:`ShapeError` (a wrong shape
  or orientation), :class:`LabelError` (region labels missing, repeated or not matching) and
  :class:`ConnectomeError` (a malformed connectome) are the specific kinds;
- :class:`ArgumentError`: an argument of a library call is out of range or unknown
  (:class:`SimulationError` for :func:`vbt_jax.simulate`, checked before compiling);
- :class:`CheckpointError`: a checkpoint folder holds the state of a different run.

:class:`DivergenceError` (a ``RuntimeError``) reports a simulation that produced NaN or inf.
:class:`DataWarning` flags input a user may legitimately give but should know about (a
non-zero diagonal, an asymmetric matrix declared undirected, rows reordered by label).
"""


class VbtError(Exception):
    """Base of every exception vbt_jax and inference raise on purpose."""


class ConfigError(VbtError, ValueError):
    """An experiment configuration is invalid; the message names the file, section and key."""


class DataError(VbtError, ValueError):
    """Input data (a file or an array) are malformed or inconsistent."""


class ShapeError(DataError):
    """An array or file has the wrong shape or orientation (the message gives both shapes)."""


class LabelError(DataError):
    """Region labels are missing, repeated, or do not match those of another input."""


class ConnectomeError(DataError):
    """A connectome file or array is malformed (shape, NaN, sign, labels...)."""


class ArgumentError(VbtError, ValueError):
    """An argument of a library call is out of range, unknown or inconsistent."""


class SimulationError(ArgumentError):
    """Arguments to :func:`vbt_jax.simulate` are inconsistent (checked before compiling)."""


class CheckpointError(VbtError, ValueError):
    """A checkpoint folder belongs to another run (different settings, data or model)."""


class DivergenceError(VbtError, RuntimeError):
    """A simulation produced NaN or inf values."""


class DataWarning(UserWarning):
    """Input that is legitimate but unusual enough to mention (it is used as given)."""
