"""User-facing errors.

A :class:`GankitError` means the *user* did something the library cannot work with (a missing file, a corrupt
dataset, a bad config key). The CLI prints its message on one line and exits non-zero, without a traceback;
anything else is a bug and keeps its traceback.
"""


class GankitError(Exception):
    """A mistake in the user's input: the message says what is wrong and how to fix it."""


class ConfigError(GankitError):
    """A config key, value or type that is not valid."""


class DataError(GankitError):
    """A dataset that is missing, corrupt or cannot be read."""


class MissingSplitError(DataError):
    """A dataset that has no data for the split asked for (an ``.npz`` without ``x_test``, say)."""


class Interrupted(GankitError):
    """Training stopped by a signal after saving a checkpoint; the CLI exits with ``exit_code`` (128 + signal)."""

    def __init__(self, message: str, exit_code: int = 130) -> None:
        super().__init__(message)
        self.exit_code = exit_code
