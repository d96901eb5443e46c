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
def change_only_run(change_run, tmp_path_factory):
    """The change-token world model alone (LAM, change tokenizer, its dynamics): no adapter."""
    run = tmp_path_factory.mktemp("change_only_run")
    for kind in ("lam", "change_tokenizer", "change_dynamics"):
        (run / kind).symlink_to((change_run / kind).resolve())
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


def test_missing_checkpoint_leaves_an_unconfigured_node_that_can_be_fixed(graph, change_only_run):
    """Fixed with a run of the change-token world model alone, which the node then serves."""
    state, fixed, chosen, configured, activated, active, frame, twist = graph.client(
        ["state", UNCONFIGURED],
        ["set_string_param", UNCONFIGURED, "checkpoint", str(change_only_run)],
        ["set_string_param", UNCONFIGURED, "world_model", "change"],
        ["lifecycle", UNCONFIGURED, CONFIGURE],
        ["lifecycle", UNCONFIGURED, ACTIVATE],
        ["state", UNCONFIGURED],
        ["action", UNCONFIGURED, 2],
        ["twist", UNCONFIGURED, [0.3, 0, 0, 0], 0.5],
    )
    log = graph.log("unconfigured")
    assert state == "unconfigured" and "configure failed" in log and "no such run directory" in log
    assert "change world model (16px, 8 latent actions, without action adapter)" in log
    assert fixed and chosen and configured and activated and active == "active"
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


# simulation_interfaces constants (SimulationState, Result, SetSimulationState, ResetSimulation,
# SetEntityState, SimulatorFeatures, EntityCategory, Bounds)
STOPPED, PLAYING, PAUSED = 0, 1, 2
UNSUPPORTED, OK, NOT_FOUND, FAILED, ALREADY, INVALID_POSE = 0, 1, 2, 4, 101, 101
SCOPE_TIME, SCOPE_STATE, SCOPE_ALL, SCOPE_SPAWNED = 1, 2, 255, 4
RESET_TIME, ENTITY_FEATURES = 21, {4, 5, 6, 8, 10, 11, 12}
ROBOT, OBJECT, BOX = 1, 0, 1
PUSH = [0.5, 0.0, -0.2, 1.0]


@pytest.mark.parametrize("node", [WM, SIM])
def test_simulation_interfaces_pause_step_and_stop_either_simulator(graph, node):
    (features, playing, refused, refused_goal, paused, again, stepped, waiting, took_it, goal, reset, spawned, stopped,
     stopped_step, stopped_to_paused, resumed, frame) = graph.client(
        ["sim", node, "get_simulator_features"],
        ["sim", node, "get_simulation_state"],
        ["sim", node, "step_simulation", {"steps": 1}],
        ["simulate_steps", node, 2],  # accepted, then aborted: the client learns why
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
    assert {20, 22, 24, 25, 26, 31, 32, 33} <= set(features["features"]) and "genie-robot" in features["info"]
    assert playing["state"] == PLAYING
    assert refused["result"] == FAILED and "needs PAUSED" in refused["message"] and refused["frames"] == 0
    assert refused_goal["accepted"] and refused_goal["status"] == "aborted" and refused_goal["result"] == FAILED
    assert "needs PAUSED" in refused_goal["message"] and refused_goal["feedback"] == []
    assert paused["result"] == OK and again["result"] == ALREADY
    assert stepped["result"] == OK and stepped["frames"] == 3
    assert waiting is None and took_it["result"] == OK and took_it["frames"] == 1
    assert goal == {"accepted": True, "feedback": [1, 2, 3, 4], "status": "succeeded", "result": OK, "message": ""}
    assert reset["result"] == OK and spawned["result"] == UNSUPPORTED
    assert stopped["result"] == OK and stopped_step["result"] == FAILED and "STOPPED" in stopped_step["message"]
    assert stopped_to_paused["result"] == OK  # as Gazebo does (the standard contradicts itself here)
    assert resumed["result"] == OK and frame is not None


def test_simulation_interfaces_survive_a_vanishing_client_and_concurrent_calls(graph):
    pid = graph.processes["world_model"].pid
    (paused,) = graph.client(["sim", WM, "set_simulation_state", {"state": PAUSED}])
    assert paused["result"] == OK
    before = rss_kb(pid)
    (vanished,) = graph.client(["simulate_steps", WM, 30, None, 2])  # disconnects after 2 of 30 steps
    # One spin can deliver several feedbacks on a loaded machine: the client leaves mid-goal, after 2 or a few more.
    assert 2 <= vanished["vanished_after"] < 30
    none, too_many, (answers) = graph.client(
        ["simulate_steps", WM, 0], ["simulate_steps", WM, 10**9],
        ["sim_concurrent", WM, [["step_simulation", {"steps": 2}]] * 6 + [["get_simulation_state", {}]] * 6])
    for aborted in (none, too_many):
        assert aborted["status"] == "aborted" and aborted["result"] == FAILED and "steps must be 1.." in aborted["message"]
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


ENTITY_SERVICES = ["get_entities", "get_entities_states", "get_entity_bounds", "get_entity_info", "get_entity_state",
                   "set_entity_state"]
YAW = [0.0, 0.0, float(np.sin(0.4)), float(np.cos(0.4))]  # x, y, z, w: 0.8 rad about z


def test_the_mujoco_twin_serves_entities_and_the_world_model_declares_none(graph):
    sim, wm, sim_services, wm_services, everything, rigid, arm, soft_info, cube_box, sphere = graph.client(
        ["sim", SIM, "get_simulator_features"],
        ["sim", WM, "get_simulator_features"],
        ["services", SIM], ["services", WM],
        ["sim", SIM, "get_entities"],
        ["sim", SIM, "get_entities", {"filters": {"tags": ["rigid"]}}],
        ["sim", SIM, "get_entity_info", {"entity": "arm"}],
        ["sim", SIM, "get_entity_info", {"entity": "soft_cube"}],
        ["sim", SIM, "get_entity_bounds", {"entity": "red_cube"}],
        ["sim", SIM, "get_entities", {"filters": {"bounds": [3, [[0, 0, 0], [0.05, 0, 0]]]}}],  # a sphere at the base
    )
    assert ENTITY_FEATURES | {RESET_TIME} <= set(sim["features"])
    assert not (ENTITY_FEATURES | {RESET_TIME}) & set(wm["features"])  # a learned simulator: frames, no entity state
    assert set(ENTITY_SERVICES) <= set(sim_services) and not set(ENTITY_SERVICES) & set(wm_services)
    assert everything["entities"] == ["arm", "red_cube", "blue_cylinder", "soft_cube"]
    assert rigid["entities"] == ["red_cube", "blue_cylinder"] and sphere["entities"] == ["arm"]
    assert arm["info"]["category"] == ROBOT and arm["info"]["tags"] == ["arm"] and "fixed" in arm["info"]["description"]
    assert soft_info["info"] == {**soft_info["info"], "category": OBJECT, "tags": ["soft"]}
    assert cube_box["bounds"]["type"] == BOX and np.allclose(cube_box["bounds"]["points"], [[0.03] * 3, [-0.03] * 3], atol=1e-4)


@pytest.fixture(scope="module")
def timed(graph):
    """A MuJoCo node of its own (nothing else drives it) with use_sim_time: its stamps are
    simulation time, its /clock remapped beside it so that it does not meet the other's."""
    graph.start("timed", "ros_nodes.mujoco_node", "-r", "__ns:=/timed", "-r", f"/clock:={TIMED_CLOCK}",
                "-p", "use_sim_time:=true", "-p", "image_size:=16")
    yield TIMED
    graph.stop("timed")


TIMED, TIMED_CLOCK = "/timed/mujoco_sim", "/timed/clock"


def test_set_entity_state_moves_objects_and_refuses_bad_requests_with_the_standard_codes(graph, timed):
    target = [0.3, -0.4, 0.15]  # away from the hand and the other objects
    (_, paused, moved, cube, kicked, cylinder_before, cylinder, soft, soft_state, stepped, states, clock, reset_time,
     clock_after, reset_state, cube_reset, playing) = graph.client(
        ["clock_now", TIMED_CLOCK],
        ["sim", timed, "set_simulation_state", {"state": PAUSED}],
        ["sim", timed, "set_entity_state", {"entity": "red_cube", "set_pose": True, "set_twist": False,
                                          "state": {"position": target, "orientation": YAW, "linear": [1, 0, 0]}}],
        ["sim", timed, "get_entity_state", {"entity": "red_cube"}],
        ["sim", timed, "set_entity_state", {"entity": "blue_cylinder", "set_pose": False, "set_twist": True,
                                          "state": {"position": ["nan", 0, 0], "linear": [0, 0, 0.5]}}],
        ["sim", timed, "get_entity_state", {"entity": "blue_cylinder"}],
        ["sim", timed, "get_entity_state", {"entity": "blue_cylinder"}],
        ["sim", timed, "set_entity_state", {"entity": "soft_cube", "set_pose": True,
                                          "state": {"position": [0.5, 0.15, 0.1], "orientation": YAW, "frame_id": "world"}}],
        ["sim", timed, "get_entity_state", {"entity": "soft_cube"}],
        ["sim", timed, "step_simulation", {"steps": 2}],
        ["sim", timed, "get_entities_states", {"filters": {"filter": "cube"}}],
        ["clock_now", TIMED_CLOCK],
        ["sim", timed, "reset_simulation", {"scope": SCOPE_TIME}],
        ["clock_now", TIMED_CLOCK],
        ["sim", timed, "reset_simulation", {"scope": SCOPE_STATE}],
        ["sim", timed, "get_entity_state", {"entity": "red_cube"}],
        ["sim", timed, "set_simulation_state", {"state": PLAYING}],
    )
    assert paused["result"] == moved["result"] == kicked["result"] == soft["result"] == OK
    assert np.allclose(cube["state"]["position"], target, atol=1e-6) and np.allclose(cube["state"]["orientation"], YAW, atol=1e-6)
    assert np.allclose(cube["state"]["linear"], 0, atol=1e-3)  # set_twist false: the request's twist is ignored
    assert cube["state"]["frame_id"] == "world"
    assert np.allclose(cylinder["state"]["linear"], [0, 0, 0.5], atol=1e-6)  # set_pose false: the NaN pose is ignored
    assert cylinder["state"]["position"] == cylinder_before["state"]["position"]
    assert np.allclose(soft_state["state"]["position"], [0.5, 0.15, 0.1], atol=1e-6)
    assert np.allclose(soft_state["state"]["orientation"], YAW, atol=1e-4)  # every node moved by one rigid motion
    assert stepped["result"] == OK and stepped["frames"] == 2
    assert states["entities"] == ["red_cube", "soft_cube"]
    fallen = states["states"][0]
    assert fallen["position"][2] < target[2] and np.allclose(fallen["position"][:2], target[:2], atol=0.02)  # it fell
    assert clock == states["states"][0]["stamp"] == pytest.approx(0.4)  # 2 frames of 0.2 s: stamps are simulation time
    assert reset_time["result"] == OK and clock_after == 0.0
    assert reset_state["result"] == OK and not np.allclose(cube_reset["state"]["position"], fallen["position"], atol=1e-3)
    assert playing["result"] == OK

    cube_state = {"position": [0.4, 0.0, 0.1], "orientation": [0, 0, 0, 1]}
    bad = graph.client(*[["sim", timed, service, fields] for service, fields in (
        ("get_entity_state", {"entity": "teapot"}),
        ("get_entity_info", {"entity": "teapot"}),
        ("set_entity_state", {"entity": "teapot", "set_pose": True, "state": cube_state}),
        ("set_entity_state", {"entity": "red_cube", "set_pose": True, "state": {**cube_state, "position": ["nan", 0, 0.1]}}),
        ("set_entity_state", {"entity": "red_cube", "set_pose": True, "state": {**cube_state, "orientation": [0, 0, 0, 2]}}),
        ("set_entity_state", {"entity": "red_cube", "set_pose": True, "state": {**cube_state, "position": [0.4, 0, -1]}}),
        ("set_entity_state", {"entity": "red_cube", "set_pose": True, "state": {**cube_state, "frame_id": "map"}}),
        ("set_entity_state", {"entity": "arm", "set_pose": True, "state": cube_state}),
        ("set_entity_state", {"entity": "red_cube", "set_twist": True, "state": {**cube_state, "angular": [0, "inf", 0]}}),
        ("get_entities", {"filters": {"filter": "("}}),
        ("get_entities", {"filters": {"bounds": [2, [[0, 0, 0], [1, 0, 0], [0, 1, 0]]]}}),
    )])
    codes = [(answer["result"], answer["message"]) for answer in bad]
    expected = [(NOT_FOUND, "no entity 'teapot'"), (NOT_FOUND, "no entity 'teapot'"), (NOT_FOUND, "no entity 'teapot'"),
                (INVALID_POSE, "NaN or inf"), (INVALID_POSE, "length 2"), (INVALID_POSE, "outside the world"),
                (FAILED, "world frame"), (FAILED, "fixed to the table"), (FAILED, "twist has NaN or inf"),
                (FAILED, "not a regular expression"), (UNSUPPORTED, "only TYPE_BOX and TYPE_SPHERE")]
    for (code, message), (want, words) in zip(codes, expected):
        assert code == want and words in message, (code, message, words)
