"""The change-token world model behind the simulator interface: sessions, their window, the
reading of prompts, and the run and commands that serve it (untrained tiny models)."""
import numpy as np
import pytest

from genie_robot.errors import CheckpointError, ConfigError, InputError
from genie_robot.models.run import Run
from genie_robot.sampling import SamplingConfig

FAST = SamplingConfig(steps=2, temperature=1.0, draw="sample")


@pytest.fixture(scope="module")
def wm(change_run):
    return Run.load(change_run).world_model("change")


def frames(count: int, size: int = 16) -> np.ndarray:
    rng = np.random.default_rng(count)
    return rng.integers(0, 256, (count, size, size, 3), dtype=np.uint8)


def test_a_run_serves_either_world_model_and_names_what_is_missing(change_run, tiny_run):
    run = Run.load(change_run)
    assert run.world_model("video").kind == "video" and run.world_model("change").kind == "change"
    with pytest.raises(ConfigError, match="unknown world model 'delta'; choose video or change"):
        run.world_model("delta")
    with pytest.raises(CheckpointError, match="change world model needs a trained change_tokenizer.*train change_tokenizer"):
        Run.load(tiny_run).world_model("change")


def test_rows_are_independent_and_the_prompt_comes_back_as_the_tokenizer_reads_it(wm):
    prompts = [frames(3), frames(4)[1:]]
    actions = [np.array([1, 2]), np.array([3, 4])]
    both = wm.start_rows(prompts, actions, seed=[5, 6], sampling=FAST)
    together = both.rollout(np.array([[0, 1, 2], [7, 6, 5]]))
    alone = wm.start_rows(prompts[1:], actions[1:], seed=[6], sampling=FAST).rollout(np.array([[7, 6, 5]]))
    assert together.shape == (2, 3, 16, 16, 3) and together.dtype == np.uint8
    np.testing.assert_array_equal(together[1], alone[0])
    np.testing.assert_array_equal(both.row_prompt_frames[:, 0], np.stack([p[0] for p in prompts]))
    np.testing.assert_array_equal(both.row_prompt_frames[0], wm.read(prompts[0], actions[0]))
    imagined = wm.imagine(prompts[0], np.array([[0, 1, 2], [7, 6, 5]]), actions[0], seed=5, sampling=FAST)
    np.testing.assert_array_equal(imagined.frames[0], together[0])  # one shared prompt, read once, gives the same rows


def test_a_session_slides_its_window_past_the_memory(wm):
    session = wm.start(frames(2), prompt_actions=[1], seed=0, sampling=FAST, memory=3)
    video = session.rollout([0, 1, 2, 3, 4])
    assert video.shape == (5, 16, 16, 3) and session.history == 3 and session.steps_taken == 5
    none_id = wm.dynamics.config.none_id
    assert (session.changes_in_BTgg[:, 0] == none_id).all() and (session.changes_in_BTgg[:, 1:] < none_id).all()
    assert session.actions_BT.shape == (1, 2)  # out of every remembered frame but the newest
    with pytest.raises(InputError, match="memory must be 2..17"):
        wm.start(frames(2), prompt_actions=[1], memory=18)


def test_reading_needs_one_action_per_transition(wm):
    video = frames(4)
    np.testing.assert_array_equal(wm.reconstruct(video), wm.read(video, wm.infer_actions(video)))
    with pytest.raises(InputError, match="reading 4 frames needs 3 actions, got 2"):
        wm.read(video, [0, 1])
    with pytest.raises(InputError, match="latent action out of range"):
        wm.read(video, [0, 9, 1])
    with pytest.raises(InputError, match="latent action out of range"):
        wm.start(frames(2), prompt_actions=[9])


def test_eval_play_and_plan_run_on_the_change_world_model(change_run, mujoco_store, tmp_path, capsys):
    from genie_robot.cli import main

    common = ["--run", str(change_run), "--world-model", "change", "--maskgit-steps", "2"]
    assert not main(["eval", *common, "--data", str(mujoco_store), "--horizons", "1", "4", "--episodes", "2", "--no-fvd",
                     "--out", str(tmp_path / "report")])
    out = capsys.readouterr().out
    assert "skipped token stability: the change-token world model has no tokens of whole frames" in out
    assert "PSNR reconstruction" in out and "(change world model)" in (tmp_path / "report" / "index.html").read_text()
    assert not main(["play", *common, "--data", str(mujoco_store), "--headless", "--actions", "0,1,2",
                     "--out", str(tmp_path / "play.gif")])
    assert (tmp_path / "play.gif").is_file()
    settings = ("maskgit_steps=1", "horizon=2", "replan_every=2", "population=4", "iterations=1", "elites=2")
    fast = [word for pair in settings for word in ("--set", pair)]
    assert not main(["plan", "--task", "push", "--run", str(change_run), "--world-model", "change", "--start",
                     f"{mujoco_store}:0:2", "--goal", f"{mujoco_store}:1:8", "--steps", "2", *fast, "--out", str(tmp_path / "plan")])
    assert (tmp_path / "plan" / "plan.json").is_file()
