"""The launch files' start-up without ROS launch (which is not on PyPI): the same node
processes with the same parameter files, for `genie-robot serve`, `serve-sim` and
`serve-compare`. tests/ros_nodes checks that launch/*.launch.py and STARTUPS agree."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from genie_robot.errors import InputError

# executable (a [project.scripts] entry, as the launch files name it) -> module with main()
EXECUTABLES = {
    "genie_world_model": "ros_nodes.world_model_node",
    "genie_mujoco_sim": "ros_nodes.mujoco_node",
    "genie_sim_compare": "ros_nodes.compare_node",
}
# launch file -> (executables it starts, parameter file they all read)
STARTUPS = {
    "world_model.launch.py": (("genie_world_model",), "world_model.yaml"),
    "mujoco.launch.py": (("genie_mujoco_sim",), "mujoco.yaml"),
    "compare.launch.py": (("genie_world_model", "genie_mujoco_sim", "genie_sim_compare"), "compare.yaml"),
}


def config_file(name: str) -> Path:
    """A packaged parameter file: config/ of a source checkout, else share/genie_robot/config."""
    for folder in (Path(__file__).resolve().parents[1] / "config", Path(sys.prefix) / "share" / "genie_robot" / "config"):
        if (folder / name).is_file():
            return folder / name
    raise InputError(f"parameter file {name} not found in config/ or {sys.prefix}/share/genie_robot/config; "
                     "reinstall genie-robot or pass --params FILE.yaml")


def node_commands(launch_file: str, params: str | None = None, checkpoint: str | None = None) -> list[list[str]]:
    executables, default_params = STARTUPS[launch_file]
    params_file = Path(params) if params else config_file(default_params)
    if not params_file.is_file():
        raise InputError(f"--params {params_file}: no such parameter file")
    commands = []
    for executable in executables:
        ros_args = ["--ros-args", "--params-file", str(params_file)]
        if executable == "genie_world_model" and checkpoint:
            if not Path(checkpoint).is_dir():
                raise InputError(f"--run {checkpoint}: no such run directory")
            ros_args += ["-p", f"checkpoint:={Path(checkpoint).resolve()}"]  # -p wins over the file
        commands.append([sys.executable, "-m", EXECUTABLES[executable], *ros_args])
    return commands


def launch(commands: list[list[str]]) -> int:
    """Run the node processes until one ends or Ctrl-C / SIGTERM, then stop them all (SIGINT,
    so each node cleans up and the comparison bag is closed)."""
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    processes = [subprocess.Popen(command) for command in commands]
    try:
        while all(p.poll() is None for p in processes):
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        for p in processes:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in processes:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    return max(abs(p.returncode) for p in processes)
