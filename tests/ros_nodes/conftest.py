"""ROS 2 test plumbing: every node and client runs as its own process inside one loopback-only
network namespace (`unshare -rn`, lo up), with ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST and
Fast DDS on UDP only (no shared memory, which namespaces do not separate). Nothing leaves
the namespace; every process started here is stopped by its fixture's finalizer."""
import json
import os
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CLIENT = Path(__file__).with_name("client.py")
ROS_ENV = {"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST", "FASTDDS_BUILTIN_TRANSPORTS": "UDPv4",
           "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"), "PYTHONUNBUFFERED": "1",
           "OMP_NUM_THREADS": "1"}  # several torch processes share 2 cores


@pytest.fixture(scope="session")
def netns():
    """The command prefix that runs a program inside a fresh loopback-only network namespace.

    Where user namespaces are unavailable the tests still run, without a prefix: DDS then stays
    on this machine through ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST alone, and a warning says so."""
    holder = subprocess.Popen(["unshare", "-rn", "sh", "-c", "ip link set lo up && echo ready && exec sleep infinity"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if holder.stdout.readline().strip() != "ready":
        holder.kill()
        _, err = holder.communicate()
        warnings.warn(f"no loopback-only network namespace (`unshare -rn` failed: {err.strip()}); ROS tests "
                      "run in the host network with ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST", stacklevel=2)
        yield []
        return
    yield ["nsenter", "-t", str(holder.pid), "-U", "-n", "--preserve-credentials"]
    holder.terminate()
    holder.wait()


class Graph:
    """ROS processes in the namespace; logs in `logs/NAME.log`."""

    def __init__(self, prefix: list[str], logs: Path):
        self.prefix, self.logs, self.processes = prefix, logs, {}
        self.env = {**os.environ, **ROS_ENV}

    def start(self, name: str, module: str, *ros_args: str) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "w")
        self.processes[name] = process = subprocess.Popen(
            [*self.prefix, sys.executable, "-m", module, "--ros-args", *map(str, ros_args)],
            cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        return process

    def stop(self, name: str) -> int:
        process = self.processes.pop(name)
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text()

    def client(self, *operations, timeout: float = 90) -> list:
        done = subprocess.run([*self.prefix, sys.executable, str(CLIENT), json.dumps(operations)], cwd=REPO,
                              env=self.env, capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, f"client failed:\n{done.stderr[-3000:]}"
        return json.loads(done.stdout.strip().splitlines()[-1])

    def close(self) -> None:
        for name in list(self.processes):
            self.stop(name)


@pytest.fixture(scope="module")
def ros_graph(netns, tmp_path_factory):
    graph = Graph(netns, tmp_path_factory.mktemp("ros_logs"))
    yield graph
    graph.close()
