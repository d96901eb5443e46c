"""The nodes as a ROS 2 user meets them: real rclpy processes, an external client process,
all inside one loopback-only network namespace (see conftest.py).

One world model node (tiny untrained run + a fitted action adapter, parameters from the
repo's compare.yaml and a test YAML), one MuJoCo node at the model's 16 px, and one world
model node that starts with a missing checkpoint (world_model.yaml) are started once for the
module; the comparison node joins last and drives the first two."""
import numpy as np
import pytest

from tests.ros_nodes.conftest import REPO

CONFIG = REPO / "config"
WM, SIM, UNCONFIGURED = "/world_model", "/mujoco_sim", "/second/world_model"
CONFIGURE, ACTIVATE = 1, 3  # lifecycle_msgs/Transition ids
TEST_PARAMS = {"maskgit_steps": 2, "frame_id": "test_camera", "queue_size": 4, "history": 4}

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def run_with_adapter(tiny_run, tmp_path_factory):
    """tiny_run's models (linked) plus an action adapter fit on random pairs and an untrained state probe."""
    from genie_robot.models.adapter import fit_adapter
    from genie_robot.models.checkpoint import save_model
    from genie_robot.sim.world import COMMAND_NAMES

    run = tmp_path_factory.mktemp("run_with_adapter")
    for kind in ("tokenizer", "lam", "dynamics"):
        (run / kind).symlink_to(tiny_run / kind)
    rng = np.random.default_rng(0)
    adapter = fit_adapter(rng.uniform(-1, 1, (64, 4)), rng.integers(0, 8, 64), list(COMMAND_NAMES), 8, steps=5)
    save_model(adapter, run / "adapter")
    from genie_robot.models import ProbeConfig, StateProbe

    save_model(StateProbe(ProbeConfig.preset("tiny", position_names=["hand", "red_cube"])), run / "probe")
    return run


@pytest.fixture(scope="module")
def graph(ros_graph, run_with_adapter, tmp_path_factory):
    params = tmp_path_factory.mktemp("params") / "test.yaml"
    values = {"checkpoint": f'"{run_with_adapter}"', **TEST_PARAMS}
    params.write_text("/**/world_model:\n  ros__parameters:\n" + "".join(f"    {k}: {v}\n" for k, v in values.items()))
    ros_graph.start("world_model", "ros_nodes.world_model_node",
                    "--params-file", CONFIG / "compare.yaml", "--params-file", params)  # the later file wins
    ros_graph.start("mujoco_sim", "ros_nodes.mujoco_node", "--params-file", CONFIG / "mujoco.yaml",
                    "-p", "image_size:=16")
    ros_graph.start("unconfigured", "ros_nodes.world_model_node", "-r", "__ns:=/second",
                    "--params-file", CONFIG / "world_model.yaml", "-p", f"checkpoint:={params.parent / 'missing'}")
    return ros_graph


def test_yaml_parameters_take_effect_and_actions_make_frames(graph):
    wm_params, sim_params, start, *frames = graph.client(
        ["params", WM, ["maskgit_steps", "frame_id", "queue_size", "history", "action_policy", "scene_seed"]],
        ["params", SIM, ["image_size", "camera", "qos"]],
        ["reset", WM],
        *[["action", WM, a] for a in (0, 3, 7)],
        ["twist", WM, [0.5, 0.0, -0.2, 1.0]],  # through the action adapter
        ["twist", SIM, [0.5, 0.0, -0.2, 1.0]],
    )
    assert wm_params == {**TEST_PARAMS, "action_policy": "queue", "scene_seed": 0}
    assert sim_params == {"image_size": 16, "camera": "front", "qos": "reliable"}
    assert start["success"] and start["frame"] is not None
    for frame in frames:
        assert frame is not None, "an action got no frame"
        assert (frame["height"], frame["width"], frame["encoding"]) == (16, 16, "rgb8")
    assert [f["frame_id"] for f in frames] == ["test_camera"] * 4 + ["camera"]


def test_reset_restarts_and_prompt_replaces_the_start(graph):
    first, stepped, prompted, again = graph.client(
        ["reset", WM],
        ["action", WM, 5],
        ["prompt", WM, {"height": 24, "width": 20, "encoding": "bgr8", "step": 64, "fill": 250}],  # padded rows
        ["reset", WM],
    )
    assert first["frame"] is not None and stepped is not None and prompted is not None
    assert again["frame"]["digest"] == first["frame"]["digest"], "reset must return to the configured start"
    assert prompted["digest"] != first["frame"]["digest"]


def test_bad_messages_are_dropped_and_the_nodes_keep_serving(graph):
    bad = [
        ["prompt", WM, {"height": 16, "width": 16, "encoding": "rgba16", "step": 128}, 0.5],
        ["prompt", WM, {"height": 16, "width": 16, "encoding": "rgb8", "step": 40}, 0.5],  # step < row
        ["prompt", WM, {"height": 16, "width": 16, "encoding": "rgb8", "step": 48, "data_bytes": 100}, 0.5],
        ["prompt", WM, {"height": 8, "width": 8, "encoding": "mono8", "step": 8}, 0.5],  # smaller than the model
        ["action", WM, -1, 0.5],
        ["action", WM, 99, 0.5],
        ["twist", WM, ["nan", 0, 0, 0], 0.5],
        ["twist", WM, [1e6, 0, 0, 0], 0.5],
        ["twist", SIM, [0, "inf", 0, 0], 0.5],
    ]
    *dropped, wm_frame, sim_frame = graph.client(*bad, ["action", WM, 1], ["twist", SIM, [0, 0, 1, 0]])
    assert dropped == [None] * len(bad)
    assert wm_frame is not None and sim_frame is not None
    # Warnings are throttled per kind (a flood must not flood the log): the first of each shows.
    for warning in ("prompt dropped: image encoding 'rgba16' is not supported", "latent action -1 dropped",
                    "arm command dropped: arm command has NaN or inf"):
        assert warning in graph.log("world_model"), warning
    assert "NaN or inf" in graph.log("mujoco_sim")


def test_missing_checkpoint_leaves_an_unconfigured_node_that_can_be_fixed(graph, tiny_run):
    state, fixed, configured, activated, active, frame, twist = graph.client(
        ["state", UNCONFIGURED],
        ["set_string_param", UNCONFIGURED, "checkpoint", str(tiny_run)],
        ["lifecycle", UNCONFIGURED, CONFIGURE],
        ["lifecycle", UNCONFIGURED, ACTIVATE],
        ["state", UNCONFIGURED],
        ["action", UNCONFIGURED, 2],
        ["twist", UNCONFIGURED, [0.3, 0, 0, 0], 0.5],
    )
    log = graph.log("unconfigured")
    assert state == "unconfigured" and "configure failed" in log and "no such run directory" in log
    assert fixed and configured and activated and active == "active"
    assert frame is not None and frame["frame_id"] == "camera"  # world_model.yaml's
    assert twist is None and "no action adapter" in log


def rss_kb(pid: int) -> int:
    status = open(f"/proc/{pid}/status").read()
    return int(status.split("VmRSS:")[1].split()[0])


def test_a_flood_of_actions_leaves_memory_flat_and_the_node_serving(graph):
    pid = graph.processes["world_model"].pid
    graph.client(["flood", WM, 100, 0.5])  # warm up allocator and DDS buffers
    before = rss_kb(pid)
    flood, after_reset = graph.client(["flood", WM, 10_000, 0.0], ["reset", WM])  # full rate, far above the frame rate
    after = rss_kb(pid)
    print(f"flood of {flood['sent']} actions in {flood['seconds']:.1f} s, {flood['frames_meanwhile']} frames made; "
          f"world model node RSS {before / 1024:.1f} -> {after / 1024:.1f} MB")  # for the issue notes (-s)
    assert flood["seconds"] < 60
    assert after_reset["success"] and after_reset["frame"] is not None
    assert (after - before) / 1024 < 20, f"RSS grew by {(after - before) / 1024:.1f} MB during the flood"
    assert "queue_size" in graph.log("world_model")  # the bounded queue dropped actions, with a warning


def test_compare_node_scores_both_streams_and_writes_a_bag(graph, tmp_path):
    from rosbags.rosbag2 import Reader

    graph.start("sim_compare", "ros_nodes.compare_node", "--params-file", CONFIG / "compare.yaml",
                "-p", f"bag_dir:={tmp_path}", "-p", "episode_length:=3")
    psnr, iou = graph.client(["listen", "/sim_compare/psnr", 6, 60], ["listen", "/sim_compare/mask_iou", 3, 30])
    assert graph.stop("sim_compare") == 0, graph.log("sim_compare")[-3000:]
    assert len(psnr) == 6 and all(0 < v <= 100 for v in psnr)
    assert len(iou) == 3 and all(v is None or 0 <= v <= 1 for v in iou)
    (bag,) = tmp_path.iterdir()
    with Reader(bag) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
    for topic in ("/world_model/image", "/mujoco_sim/image", "/mujoco_sim/masks", "/sim_compare/psnr",
                  "/sim_compare/mask_iou", "/mujoco_sim/arm_command"):
        assert counts.get(topic, 0) >= 3, (topic, counts)


def test_a_goal_image_comes_back_as_a_plan(graph):
    goal = {"height": 16, "width": 16, "encoding": "rgb8", "step": 48, "fill": 200}
    wrong_size = {**goal, "height": 8, "width": 8, "step": 24}
    dropped, plan = graph.client(["goal", WM, wrong_size, 3.0], ["goal", WM, goal])
    assert dropped is None and "goal dropped: goal image frames are 8x8, smaller than the model's 16x16" in graph.log("world_model")
    assert plan is not None, "no plan came back"
    assert len(plan["latents"]) == 2 and all(0 <= a < 8 for a in plan["latents"])  # the reach preset's horizon
    assert plan["dims"] == [["step", 2], ["command", 4]] and len(plan["commands"]) == 8
    assert "state distance as imagined" in graph.log("world_model")  # the hand as the run's probe reads it


# simulation_interfaces constants (SimulationState, Result, SetSimulationState, ResetSimulation)
STOPPED, PLAYING, PAUSED = 0, 1, 2
UNSUPPORTED, OK, FAILED, ALREADY, INCORRECT_TRANSITION = 0, 1, 4, 101, 103
SCOPE_ALL, SCOPE_SPAWNED = 255, 4
PUSH = [0.5, 0.0, -0.2, 1.0]


@pytest.mark.parametrize("node", [WM, SIM])
def test_simulation_interfaces_pause_step_and_stop_either_simulator(graph, node):
    (features, playing, refused, paused, again, stepped, waiting, took_it, goal, reset, spawned, stopped, stopped_step,
     bad_transition, resumed, frame) = graph.client(
        ["sim", node, "get_simulator_features"],
        ["sim", node, "get_simulation_state"],
        ["sim", node, "step_simulation", {"steps": 1}],
        ["sim", node, "set_simulation_state", {"state": PAUSED}],
        ["sim", node, "set_simulation_state", {"state": PAUSED}],
        ["sim", node, "step_simulation", {"steps": 3}],
        ["twist", node, PUSH, 1.0],  # paused: the command waits for a step
        ["sim", node, "step_simulation", {"steps": 1}],
        ["simulate_steps", node, 4],
        ["sim", node, "reset_simulation", {"scope": SCOPE_ALL}],
        ["sim", node, "reset_simulation", {"scope": SCOPE_SPAWNED}],
        ["sim", node, "set_simulation_state", {"state": STOPPED}],
        ["sim", node, "step_simulation", {"steps": 1}],
        ["sim", node, "set_simulation_state", {"state": PAUSED}],
        ["sim", node, "set_simulation_state", {"state": PLAYING}],
        ["twist", node, PUSH],
    )
    assert {20, 24, 25, 26, 31, 32, 33} <= set(features["features"]) and "genie-robot" in features["info"]
    assert playing["state"] == PLAYING
    assert refused["result"] == FAILED and "needs PAUSED" in refused["message"] and refused["frames"] == 0
    assert paused["result"] == OK and again["result"] == ALREADY
    assert stepped["result"] == OK and stepped["frames"] == 3
    assert waiting is None and took_it["result"] == OK and took_it["frames"] == 1
    assert goal == {"accepted": True, "feedback": [1, 2, 3, 4], "status": "succeeded", "result": OK}
    assert reset["result"] == OK and spawned["result"] == UNSUPPORTED
    assert stopped["result"] == OK and stopped_step["result"] == FAILED and "STOPPED" in stopped_step["message"]
    assert bad_transition["result"] == INCORRECT_TRANSITION
    assert resumed["result"] == OK and frame is not None


def test_simulation_interfaces_survive_a_vanishing_client_and_concurrent_calls(graph):
    pid = graph.processes["world_model"].pid
    (paused,) = graph.client(["sim", WM, "set_simulation_state", {"state": PAUSED}])
    assert paused["result"] == OK
    before = rss_kb(pid)
    (vanished,) = graph.client(["simulate_steps", WM, 30, None, 2])  # disconnects after 2 of 30 steps
    # One spin can deliver several feedbacks on a loaded machine: the client leaves mid-goal, after 2 or a few more.
    assert 2 <= vanished["vanished_after"] < 30
    rejected, too_many, (answers) = graph.client(
        ["simulate_steps", WM, 0], ["simulate_steps", WM, 10**9],
        ["sim_concurrent", WM, [["step_simulation", {"steps": 2}]] * 6 + [["get_simulation_state", {}]] * 6])
    assert rejected == {"accepted": False} and too_many == {"accepted": False}
    steps, states = answers[:6], answers[6:]
    assert all(a["result"] == OK or (a["result"] == FAILED and "another step request is running" in a["message"])
               for a in steps)  # one step request at a time: the others are refused, not queued
    assert any(a["result"] == OK for a in steps) and all(a["result"] == OK and a["state"] == PAUSED for a in states)
    one_more, reset, playing, frame = graph.client(
        ["sim", WM, "step_simulation", {"steps": 1}], ["reset", WM],
        ["sim", WM, "set_simulation_state", {"state": PLAYING}], ["action", WM, 1])
    assert one_more["result"] == OK and one_more["frames"] == 1
    assert reset["success"] and playing["result"] == OK and frame is not None
    after = rss_kb(pid)
    print(f"world model node RSS: {before / 1024:.1f} MB before, {after / 1024:.1f} MB after")  # for the issue notes (-s)
    assert (after - before) / 1024 < 20, f"RSS grew by {(after - before) / 1024:.1f} MB"
