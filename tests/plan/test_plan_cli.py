"""`genie-robot plan` end to end on the tiny run and a tiny MuJoCo store, and the MuJoCo restore it relies on."""
import json
from dataclasses import asdict

import numpy as np
import pytest

from genie_robot.cli import main
from genie_robot.data.store import EpisodeStore
from genie_robot.eval.metrics import psnr
from genie_robot.media import write_image
from genie_robot.models.run import Run
from genie_robot.plan.presets import task_settings
from genie_robot.sim.controllers import behaviour_commands


def settings(**values) -> list[str]:
    return [word for key, value in values.items() for word in ("--set", f"{key}={value}")]


FAST = settings(maskgit_steps=1, horizon=3, population=4, iterations=2, elites=2)


def test_push_plans_closed_loop_and_writes_videos_and_distances(planning_run, mujoco_store, tmp_path, capsys):
    """The push preset: the object cost toward a stored goal frame (it has masks), replanning every 2 here."""
    out = tmp_path / "plan"
    code = main(["plan", "--task", "push", "--run", str(planning_run), "--start", f"{mujoco_store}:0:2",
                 "--goal", f"{mujoco_store}:1:8", "--out", str(out), "--steps", "3", *FAST, *settings(replan_every=2)])
    assert code == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "object distance to goal" in printed and "red_cube" in printed
    assert "frames of 32x32 are centre-cropped and downscaled to the model's 16x16" in printed  # says what it did
    result = json.loads((out / "plan.json").read_text())
    assert result["plans"] == 2 and len(result["latents"]) == 3 and np.shape(result["commands"]) == (3, 4)
    assert set(result["final_distance"]) == {"start", "imagined", "mujoco"}
    assert result["settings"] == {**asdict(task_settings("push")), "maskgit_steps": 1, "horizon": 3, "population": 4,
                                  "iterations": 2, "elites": 2, "replan_every": 2}
    assert (out / "plan.gif").stat().st_size > 0
    assert set(result["distance_m"]) == {"hand", "red_cube", "blue_cylinder", "soft_cube"}


@pytest.mark.parametrize("target", ["all", "scene", "arm"])
def test_plan_toward_an_object_position(planning_run, mujoco_store, tmp_path, capsys, target):
    out = tmp_path / "object"
    code = main(["plan", "--task", "push", "--run", str(planning_run), "--start", f"{mujoco_store}:0:0",
                 "--goal", f"{mujoco_store}:0:9", "--out", str(out), "--steps", "3", *FAST,
                 *settings(target=target, method="shooting", vocabulary="behaviours")])
    assert code == 0, capsys.readouterr().err
    result = json.loads((out / "plan.json").read_text())
    assert result["settings"]["target"] == target and result["settings"]["vocabulary"] == "behaviours"
    # The arm's own behaviours are executed, each imagined as the latent action the adapter gives it.
    executed = np.array(result["commands"], np.float32)
    assert all((row == behaviour_commands()).all(-1).any() for row in executed)
    adapter = Run.load(planning_run).require("adapter", "test")
    assert result["latents"] == adapter.to_latent(executed).tolist()


def test_object_goal_targets_name_their_objects(planning_run, mujoco_store):
    """all = the movable objects, scene = those and the arm, at the goal mask's centroids; hand = the arm's far end."""
    from genie_robot.eval.physics import centroids
    from genie_robot.plan.execute import object_goal, read_stored_frame
    from genie_robot.sim.scene import OBJECTS

    wm = Run.load(planning_run).world_model()
    start, goal = (read_stored_frame(str(mujoco_store), 0, step, wm.image_size) for step in (0, 9))
    visible = {o.mask_id for o in OBJECTS if (goal.mask == o.mask_id).any()}
    goals = {name: object_goal(start, goal, name, wm) for name in ("all", "scene", "arm", "hand")}
    targets = {name: g.targets_rc for name, g in goals.items()}
    arm = next(o.mask_id for o in OBJECTS if o.name == "arm")
    assert set(targets["scene"]) == visible and set(targets["all"]) == visible - {arm} and set(targets["arm"]) == {arm}
    assert targets["scene"][arm] == tuple(centroids(goal.mask[None], arm)[0])
    # hand: the arm's far end from its mount (arm pixels that never move), farther from the mount than the centroid
    mount = np.array(goals["hand"].far_end_from[arm])
    assert (start.episode_masks[:, int(mount[0] + 0.5), int(mount[1] + 0.5)] == arm).mean() > 0.5
    assert np.linalg.norm(np.subtract(targets["hand"][arm], mount)) > np.linalg.norm(np.subtract(targets["arm"][arm], mount))


def test_bad_plan_requests_fail_with_one_line(planning_run, tiny_run, mujoco_store, tmp_path, capsys):
    image = write_image(tmp_path / "goal.png", np.zeros((16, 16, 3), np.uint8))
    start, goal = f"{mujoco_store}:0:0", f"{mujoco_store}:0:1"
    cases = [
        (["--run", str(planning_run), "--start", str(image), "--goal", goal], "must be a stored MuJoCo frame"),
        (["--run", str(tiny_run), "--start", start, "--goal", goal], "needs a trained adapter"),
        (["--run", str(planning_run), "--start", start, "--goal", goal, "--steps", "20", *settings(horizon=20)],
         "longer than the model's memory"),
        (["--run", str(planning_run), "--start", f"{mujoco_store}:5:0", "--goal", goal], "episode 5 out of range"),
        (["--run", str(planning_run), "--start", start, "--goal", goal, *settings(target="table")],
         "unknown object 'table'; choose from all, scene, hand, arm, red_cube, blue_cylinder, soft_cube"),
        (["--run", str(planning_run), "--start", start, "--goal", goal, *settings(vocabulary="joints")],
         "unknown planning vocabulary 'joints'; choose from latent, behaviours"),
        (["--run", str(planning_run), "--start", start, "--goal", str(image)], "object cost reads the goal's positions from "
                                                                                "its stored masks"),
        (["--run", str(planning_run), "--start", start, "--goal", goal, *settings(anchor="true")], "anchor shifts the state "
                                                                                                     "cost's readings"),
    ]
    for args, message in cases:
        assert main(["plan", "--task", "push", *args, "--out", str(tmp_path / "x"), *settings(maskgit_steps=1)]) == 2, message
        assert message in capsys.readouterr().err


@pytest.mark.parametrize("argument, message", [
    ("horizon", "'horizon': give a planning setting as KEY=VALUE with KEY one of method, horizon,"),
    ("colour=red", "'colour=red': give a planning setting as KEY=VALUE with KEY one of method, horizon,"),
    ("horizon=two", "horizon=two: horizon takes an integer"),
    ("anchor=maybe", "anchor=maybe: anchor is true or false"),
])
def test_settings_are_checked_while_parsing(argument, message, capsys):
    with pytest.raises(SystemExit):
        main(["plan", "--task", "reach", "--run", "RUN", "--start", "S.h5:0:0", "--goal", "S.h5:0:1", "--out", "OUT",
              "--set", argument])
    assert message in capsys.readouterr().err


def test_the_world_restores_a_stored_instant(mujoco_store):
    from genie_robot.sim.world import ArmWorld

    with EpisodeStore(mujoco_store) as store:
        episode = store[1]
        frames, commands = episode.read_frames(), episode.read_actions()
        state = {key: episode.read_state(key)[5] for key in episode.state_keys}
    world = ArmWorld()
    try:
        world.set_state(state)
        assert psnr(frames[5:6], world.render(32)[None])[0] > 30
        positions = world.object_positions()
        np.testing.assert_allclose(positions["red_cube"], state["red_cube_pose"][:3], atol=1e-6)
        np.testing.assert_allclose(positions["soft_cube"], state["soft_cube_vertices"].mean(0), atol=1e-6)
        snapshot = world.snapshot()
        world.step(commands[5])
        after = world.object_positions(), world.render(16)
        world.restore(snapshot)
        world.step(commands[5])
        np.testing.assert_array_equal(world.render(16), after[1])
        assert all(np.array_equal(after[0][k], v) for k, v in world.object_positions().items())
    finally:
        world.close()


def test_reach_plans_with_the_state_probe(planning_run, mujoco_store, tmp_path, capsys):
    """The reach preset: the hand to where the goal has it, as the run's state probe reads both (a goal image
    will do), anchored; a run without a probe is told how to train one."""
    from genie_robot.models import ProbeConfig
    from genie_robot.train.trainer import TrainConfig, Trainer

    run = tmp_path / "run"
    run.mkdir()
    for kind in ("tokenizer", "lam", "dynamics", "adapter"):
        (run / kind).symlink_to(planning_run / kind)
    with EpisodeStore(mujoco_store) as store:
        image = str(write_image(tmp_path / "goal.png", store.episode(0).read_frames(8, 9)[0]))
    reach = ["plan", "--task", "reach", "--run", str(run), "--start", f"{mujoco_store}:0:2", "--steps", "2", *FAST]
    assert main([*reach, "--goal", image, "--out", str(tmp_path / "none")]) == 2
    assert "state cost reads positions with the run's state probe" in capsys.readouterr().err
    config = TrainConfig(steps=4, batch_size=4, clip_len=1, warmup=1, ckpt_every=4, sample_every=0)
    Trainer("probe", ProbeConfig.preset("tiny"), [mujoco_store], run, config, progress=False).train()
    for kind, goal in (("image", image), ("stored", f"{mujoco_store}:0:8")):
        out = tmp_path / kind
        assert main([*reach, "--goal", goal, "--out", str(out)]) == 0, capsys.readouterr().err
        result = json.loads((out / "plan.json").read_text())
        assert result["settings"]["cost"] == "state" and result["settings"]["anchor"] is True
        assert len(result["commands"]) == 2 and all((row == behaviour_commands()).all(-1).any() for row in result["commands"])
    assert "state distance to goal" in capsys.readouterr().out
    assert main([*reach, "--goal", image, "--out", str(tmp_path / "x"), *settings(target="arm")]) == 2
    assert "the run's state probe reads no 'arm'; choose from all, scene, hand" in capsys.readouterr().err
