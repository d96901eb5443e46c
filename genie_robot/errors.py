"""Errors a user can cause. The CLI prints these as one line and exits non-zero."""


class GenieRobotError(Exception):
    """Base for every user-facing error: the message names the problem and the fix."""


class StoreError(GenieRobotError, ValueError):
    """An episode store that is missing, corrupt, of another version, or misused."""


class InputError(GenieRobotError, ValueError):
    """A bad argument, command or action value."""


class ConfigError(GenieRobotError, ValueError):
    """An invalid model/training config, or a checkpoint that does not match one."""


class CheckpointError(GenieRobotError):
    """A missing, corrupt or mismatched checkpoint."""


class TrainingDiverged(GenieRobotError):
    """Loss became NaN/inf; the last good checkpoint is kept."""
