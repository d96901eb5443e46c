"""Optional dependencies: the heavy readers and UIs install as extras of the package
(`pip install "genie-robot[rlds]"`; `make setup` installs them all). A missing one is a
clear error naming the extra, raised where it is first needed."""
from __future__ import annotations

import importlib
from types import ModuleType

from genie_robot.errors import GenieRobotError

# module -> (extra, what needs it)
EXTRAS = {
    "tensorflow_datasets": ("rlds", "reading RLDS / Open X-Embodiment datasets"),
    "av": ("video", "decoding video files"),
    "rosbags": ("rosbag", "reading and writing rosbag2 recordings"),
    "ale_py": ("games", "recording Atari platformers"),
    "pygame": ("play", "the interactive play window"),
    "gymnasium": ("gym", "the Gymnasium environments (genie_robot.envs)"),
    "pyarrow": ("lerobot", "reading and writing LeRobotDataset parquet files"),
}


class MissingExtra(GenieRobotError, ImportError):
    """An optional dependency is not installed."""


def require(module: str) -> ModuleType:
    """Import an optional dependency, or raise MissingExtra naming the extra that installs it."""
    extra, purpose = EXTRAS[module.split(".")[0]]
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtra(f"{purpose} needs the optional package {module.split('.')[0]!r} ({exc}); install it with "
                           f"`pip install \"genie-robot[{extra}]\"` (`make setup` installs every extra)") from None
