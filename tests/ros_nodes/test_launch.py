"""Launch files, without ROS launch (not on PyPI): each one is read with `ast`, and its
executables, parameter file and node names must match the project's entry points, the
`genie-robot serve*` start-up (ros_nodes/launcher.py) and the nodes' declared parameters.
That the YAML loads into the running nodes is checked in test_ros_nodes.py."""
import ast

import pytest
import tomllib

from ros_nodes.launcher import EXECUTABLES, STARTUPS, node_commands
from tests.ros_nodes.conftest import REPO

NODES = {"genie_world_model": "world_model", "genie_mujoco_sim": "mujoco_sim", "genie_sim_compare": "sim_compare"}


def launched_nodes(path):
    """(executable, name) of every launch_ros Node(...) and the .yaml names in a launch file."""
    tree = ast.parse(path.read_text())
    nodes = [{k.arg: k.value.value for k in call.keywords if isinstance(k.value, ast.Constant)}
             for call in ast.walk(tree) if isinstance(call, ast.Call) and getattr(call.func, "id", "") == "Node"]
    yamls = {c.value for c in ast.walk(tree) if isinstance(c, ast.Constant) and str(c.value).endswith(".yaml")}
    return [(n["executable"], n["name"]) for n in nodes], yamls


def declared_parameters(executable):
    module = __import__(EXECUTABLES[executable], fromlist=["PARAMETERS"])
    return {p.name: p for p in module.PARAMETERS}


@pytest.mark.parametrize("launch_file", sorted(STARTUPS))
def test_launch_file_matches_the_cli_start_up(launch_file):
    nodes, yamls = launched_nodes(REPO / "launch" / launch_file)
    executables, params_file = STARTUPS[launch_file]
    assert [e for e, _ in nodes] == list(executables)
    assert yamls == {params_file} and (REPO / "config" / params_file).is_file()
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    for executable, name in nodes:
        assert scripts[executable] == EXECUTABLES[executable] + ":main"
        assert NODES[executable] == name
    commands = node_commands(launch_file, checkpoint=str(REPO))
    assert [c[2] for c in commands] == [EXECUTABLES[e] for e in executables]


@pytest.mark.parametrize("launch_file", sorted(STARTUPS))
def test_parameter_files_name_declared_parameters_with_valid_values(launch_file):
    import yaml  # PyYAML comes with rclpy

    executables, params_file = STARTUPS[launch_file]
    sections = yaml.safe_load((REPO / "config" / params_file).read_text())
    assert {f"/**/{NODES[e]}" for e in executables} == set(sections)
    for executable in executables:
        declared = declared_parameters(executable)
        for name, value in sections[f"/**/{NODES[executable]}"]["ros__parameters"].items():
            spec = declared[name]  # KeyError: the YAML names a parameter the node does not declare
            assert type(value) is type(spec.default), (executable, name)
            assert not spec.choices or value in spec.choices, (executable, name)
            assert spec.low is None or spec.low <= value <= spec.high, (executable, name)


def test_package_metadata_follows_ros_2_python_conventions():
    package = (REPO / "package.xml").read_text()
    assert "<name>genie_robot</name>" in package and "<build_type>ament_python</build_type>" in package
    assert (REPO / "resource" / "genie_robot").is_file()
    setup = (REPO / "setup.py").read_text()
    for installed in ("share/genie_robot/launch", "share/genie_robot/config", "resource_index/packages"):
        assert installed in setup
    assert "lib/genie_robot" in (REPO / "setup.cfg").read_text()
