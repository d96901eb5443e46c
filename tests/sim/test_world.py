import numpy as np
import pytest

from genie_robot.errors import InputError
from genie_robot.sim.controllers import BEHAVIOURS, MixedPolicy, behaviour_command, behaviour_commands, behaviour_of
from genie_robot.sim.generate import record_episode
from genie_robot.sim.scene import OBJECTS
from genie_robot.sim.world import ArmWorld, rigid_residual

SOFT_AT = (0.42, 0.0)
LAYOUT = {
    "objects": {"red_cube": (0.36, -0.2, 0.0), "blue_cylinder": (0.52, 0.2, 0.0), "soft_cube": (*SOFT_AT, 0.0)},
    "ee": [0.42, 0.0, 0.16],
    "grip": 0.15,
}


@pytest.fixture(scope="module")
def world():
    w = ArmWorld()
    yield w
    w.close()


def test_same_seed_same_frames(world):
    def run(seed):
        world.reset(seed=seed)
        policy = MixedPolicy(np.random.default_rng(seed))
        frames = [world.render(32)]
        for _ in range(4):
            world.step(policy(world))
            frames.append(world.render(32))
        return np.stack(frames)

    a, b, c = run(5), run(5), run(6)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_renders_any_size(world):
    world.reset(seed=0)
    for h, w in [(64, 64), (48, 80), (128, 128)]:
        img = world.render(h, w)
        assert img.shape == (h, w, 3) and img.dtype == np.uint8 and img.std() > 5
    assert world.masks(40, 56).shape == (40, 56)


def test_masks_cover_each_object_in_its_colour(world):
    world.reset(layout=LAYOUT)
    rgb, masks = world.render(96), world.masks(96)
    for obj in OBJECTS:
        pixels = rgb[masks == obj.mask_id].astype(float)
        assert len(pixels) > 10, f"{obj.name} not visible in the mask"
        if obj.kind != "arm":
            dominant = int(np.argmax(obj.rgba[:3]))
            mean = pixels.mean(0)
            assert mean[dominant] == mean.max(), f"{obj.name} mask pixels are not {obj.name}-coloured: {mean}"
    assert (masks == 0).mean() > 0.5  # table and background


@pytest.mark.parametrize("behaviour", ["+x", "-x", "+y", "-y", "+z", "-z"])
def test_end_effector_moves_in_commanded_direction(world, behaviour):
    world.reset(layout={**LAYOUT, "ee": [0.4, 0.0, 0.15]})
    start = world.state()["ee_pos"].copy()
    command = behaviour_command(BEHAVIOURS.index(behaviour))
    for _ in range(4):
        world.step(command)
    moved = world.state()["ee_pos"] - start
    axis = "xyz".index(behaviour[1])
    sign = 1 if behaviour[0] == "+" else -1
    assert sign * moved[axis] > 0.05, moved  # 4 frames x 2 cm commanded
    assert np.abs(np.delete(moved, axis)).max() < 0.02, moved


def test_gripper_closes_and_opens(world):
    world.reset(seed=1)
    open_ = world.state()["gripper"][0]
    for _ in range(5):
        world.step(behaviour_command(BEHAVIOURS.index("close")))
    closed = world.state()["gripper"][0]
    for _ in range(5):
        world.step(behaviour_command(BEHAVIOURS.index("open")))
    assert closed > open_ + 0.4 and world.state()["gripper"][0] < closed - 0.4


def test_soft_cube_deforms_when_pressed(world):
    world.reset(layout=LAYOUT)
    rest = world.deformation()
    touched, deformation = False, []
    for _ in range(12):  # press straight down onto the soft cube
        world.step([0, 0, -1, 1])
        touched |= world.in_contact()
        deformation.append(world.deformation())
    assert touched
    assert max(deformation) > rest + 0.003, (rest, deformation)
    verts = world.state()["soft_cube_vertices"]
    assert verts.shape[1] == 3 and np.isfinite(verts).all()


def test_rigid_residual_ignores_rigid_motion():
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(20, 3))
    pts -= pts.mean(0)
    theta = 0.7
    rot = np.array([[np.cos(theta), -np.sin(theta), 0], [np.sin(theta), np.cos(theta), 0], [0, 0, 1]])
    assert rigid_residual(pts, pts @ rot.T) < 1e-9
    assert rigid_residual(pts, pts * np.array([1.2, 1, 1])) > 0.05


def test_bad_commands_are_refused_and_world_keeps_working(world):
    world.reset(seed=0)
    for bad, message in [([0, 0, 0], "shape"), ([np.nan, 0, 0, 0], "finite"), ([2, 0, 0, 0], r"\[-1, 1\]")]:
        with pytest.raises(InputError, match=message):
            world.step(bad)
    world.step([0, 0, 0, 0])
    with pytest.raises(InputError, match="out of range"):
        behaviour_command(9)


def test_behaviour_of_inverts_behaviour_command():
    commands = behaviour_commands()
    np.testing.assert_array_equal(commands, np.stack([behaviour_command(i) for i in range(len(BEHAVIOURS))]))
    np.testing.assert_array_equal(behaviour_of(commands), np.arange(len(BEHAVIOURS)))
    assert behaviour_of(np.array([0.1, -0.1, 0.05, 0.0])) == 0
    # A push holds the hand closed while it moves: the motion is the behaviour.
    assert BEHAVIOURS[behaviour_of(np.array([0.0, -0.6, 0.1, 1.0]))] == "-y"
    assert BEHAVIOURS[behaviour_of(np.array([0.1, 0.0, 0.0, -1.0]))] == "open"
    assert behaviour_of(np.array([0.3, -0.9, 0.5, 0.0])) == BEHAVIOURS.index("-y")


def test_replaying_from_a_recorded_state_follows_the_recording(world):
    """set_state restores the controller's target and the velocities: replaying the recorded
    commands retraces the hand and the objects; a state without them (an older store) starts at rest."""
    recorded = record_episode(world, seed=4, index=0, steps=15, size=8)
    states = [{key: v[t] for key, v in recorded["state"].items()} for t in range(15)]
    commands = recorded["actions"]
    assert {"ee_target", "joint_vel", "red_cube_vel", "blue_cylinder_vel"} <= set(states[0])

    def replay(state):
        world.set_state(state)
        for command in commands[6:]:
            world.step(command)
        return world.state()

    end = replay(states[6])
    for key in ("ee_pos", "red_cube_pose", "blue_cylinder_pose"):
        np.testing.assert_allclose(end[key][:3], states[-1][key][:3], atol=2e-3, err_msg=key)
    older = {k: v for k, v in states[6].items() if k != "ee_target" and not k.endswith("_vel")}
    world.set_state(older)
    np.testing.assert_array_equal(world.data.qvel, 0.0)
    np.testing.assert_allclose(world.ee_target, np.clip(older["ee_pos"], world.ws_low, world.ws_high))  # on the hand
    with pytest.raises(InputError, match="joint_vel has shape"):
        world.set_state({**states[6], "joint_vel": np.zeros(3)})


def test_layout_restores_the_same_start(world):
    world.reset(seed=9)
    layout, frame = world.layout(), world.render(32)
    world.reset(seed=10)
    world.reset(layout=layout)
    np.testing.assert_array_equal(world.render(32), frame)
