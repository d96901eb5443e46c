"""`genie-robot play` and `rollout` end to end on an untrained tiny run."""

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from PIL import Image, ImageSequence

from genie_robot.cli import main
from genie_robot.data import EpisodeStore
from genie_robot.errors import InputError
from genie_robot.models.run import Run
from genie_robot.play import play_window
from genie_robot.sampling import SamplingConfig


@pytest.fixture
def store32(make_store):
    """Episodes at 32 px for the tiny run's 16 px: read as training reads them (downscaled)."""
    return make_store("s.h5", lengths=(20,), size=32)


def test_play_headless_writes_video(tiny_run, store32, tmp_path):
    out = tmp_path / "play.gif"
    args = ["play", "--run", str(tiny_run), "--data", str(store32), "--headless", "--actions", "0,3,3,5",
            "--maskgit-steps", "2", "--out", str(out)]
    assert main(args) == 0
    # prompt + 4 generated frames at 10 fps; GIF writers merge identical neighbours (a model that
    # holds still) into one longer frame, so count playing time, not frames
    with Image.open(out) as gif:
        assert sum(gif.info["duration"] for _ in ImageSequence.Iterator(gif)) == 500
    mp4 = tmp_path / "play.mp4"
    assert main(args[:-1] + [str(mp4)]) == 0 and iio.imread(mp4).shape[0] == 5


def test_play_from_prompt_image(tiny_run, tmp_path):
    image = tmp_path / "prompt.png"
    iio.imwrite(image, np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8))
    out = tmp_path / "p.gif"
    assert main(["play", "--run", str(tiny_run), "--prompt", str(image), "--headless", "--actions", "1,2",
                 "--maskgit-steps", "1", "--out", str(out)]) == 0


def test_rollout_side_by_side(tiny_run, store32, tmp_path, capsys):
    out = tmp_path / "rollout.gif"
    assert main(["rollout", "--run", str(tiny_run), "--data", str(store32), "--frames", "6", "--prompt-frames", "2",
                 "--maskgit-steps", "2", "--out", str(out)]) == 0
    frames = iio.imread(out)
    assert frames.shape[0] == 6 and frames.shape[2] == 4 * (frames.shape[1] - 14)  # 4 columns under a label row
    printed = capsys.readouterr().out
    assert "LAM actions" in printed and "note: " in printed and "downscaled to the model's 16x16" in printed


def test_an_imagined_rollout_is_stored_and_exports_as_lerobot(tiny_run, store32, tmp_path, capsys):
    imagined = tmp_path / "imagined.h5"
    for seed in ("0", "1"):
        assert main(["rollout", "--run", str(tiny_run), "--data", str(store32), "--frames", "6", "--maskgit-steps", "2",
                     "--seed", seed, "--out", str(tmp_path / "r.gif"), "--store", str(imagined)]) == 0
    assert "as episode 1" in capsys.readouterr().out
    assert main(["rollout", "--run", str(tiny_run), "--data", str(store32), "--frames", "6", "--maskgit-steps", "2",
                 "--seed", "1", "--out", str(tmp_path / "r.gif"), "--store", str(imagined)]) == 0
    assert "already holds this rollout" in capsys.readouterr().out
    with EpisodeStore(store32) as source, EpisodeStore(imagined) as store:
        episode = store[0]
        assert len(store) == 2 and episode.frames.shape == (6, 16, 16, 3) and episode.source == "imagined"
        np.testing.assert_array_equal(episode.read_actions(), source[0].read_actions(0, 5))  # the source's own actions
        assert episode.action_names == source[0].action_names
    assert main(["data", "export-lerobot", "--data", str(imagined), "--out", str(tmp_path / "lerobot"), "--fps", "10"]) == 0


def test_imagined_clips_keep_the_recorded_state_and_train_a_probe(tiny_run, mujoco_store, tmp_path, capsys):
    """`genie-robot imagine`: every whole 4-frame clip of the store (10-frame episodes: 2 each),
    imagined and stored with the source's commands and state for the same frames; a second call
    resumes with nothing to do; the state probe trains on the imagined store beside the real one."""
    imagined = tmp_path / "imagined.h5"
    argv = ["imagine", "--run", str(tiny_run), "--data", str(mujoco_store), "--out", str(imagined), "--frames", "4",
            "--rows", "3", "--maskgit-steps", "1"]
    assert main(argv) == 0 and "appended 4 imagined clips" in capsys.readouterr().out
    assert main(argv) == 0 and "nothing appended" in capsys.readouterr().out
    with EpisodeStore(mujoco_store) as source, EpisodeStore(imagined) as store:
        assert len(store) == 4
        episode, recorded = store[3], source[1]  # the second episode's clip at frames 4..7
        assert episode.frames.shape == (4, 16, 16, 3) and episode.source == "imagined"
        assert episode.origin.endswith(f"{mujoco_store}:1:4:seed0")
        np.testing.assert_array_equal(episode.read_actions(), recorded.read_actions(4, 7))
        assert episode.state_keys == recorded.state_keys
        np.testing.assert_array_equal(episode.read_state("ee_pos"), recorded.read_state("ee_pos")[4:8])
    assert main(["train", "probe", "--data", str(mujoco_store), str(imagined), "--preset", "tiny", "--steps", "2",
                 "--batch-size", "2", "--clip-len", "2", "--out", str(tmp_path / "run")]) == 0
    assert main(argv[:-4] + ["--frames", "17"]) == 2 and "2..16 frames" in capsys.readouterr().err
    assert main(argv[:6] + [str(mujoco_store)] + argv[7:]) == 2 and "also one of the stores" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--headless", "--actions", "0,9", "--out", "x.gif"], "out of range"),
    (["--headless", "--actions", "0,a", "--out", "x.gif"], "comma-separated"),
    (["--headless", "--actions", "0", "--out", "x.avi"], ".gif or .mp4"),
    (["--headless", "--out", "x.gif"], "needs --actions"),
    (["--prompt", "missing.png", "--headless", "--actions", "0", "--out", "x.gif"], "no such image"),
])
def test_play_user_errors(tiny_run, store32, tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    base = ["play", "--run", str(tiny_run), "--maskgit-steps", "1"]
    if "--prompt" not in argv:
        base += ["--data", str(store32)]
    assert main(base + argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_play_window_with_scripted_keys(tiny_run, monkeypatch):
    """The real pygame loop on SDL's dummy video driver, keys fed as events."""
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    import pygame

    wm = Run.load(tiny_run).world_model()
    prompt = np.zeros((16, 16, 3), np.uint8)
    keys = (pygame.K_3, pygame.K_SPACE, pygame.K_9, pygame.K_a, pygame.K_r, pygame.K_1)
    script = [[pygame.event.Event(pygame.KEYDOWN, key=k)] for k in keys]
    script.append([pygame.event.Event(pygame.KEYDOWN, key=pygame.K_q)])
    feed = iter(script)
    shown = play_window(lambda: wm.start(prompt, sampling=SamplingConfig(steps=1)), wm.num_actions, scale=2,
                        events=lambda: next(feed))
    # prompt, action 3, repeat, (9 and a = action 10 refused: 8 actions), restart shows the prompt, action 1
    assert len(shown) == 5 and all(f.shape == (16, 16, 3) for f in shown)


def test_play_window_without_display_says_headless(tiny_run, monkeypatch):
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(InputError, match="--headless"):
        play_window(lambda: None, 8)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown when CUDA is missing")
def test_play_on_missing_cuda_is_a_clear_error(tiny_run, store32, tmp_path, capsys):
    args = ["play", "--run", str(tiny_run), "--data", str(store32), "--headless", "--actions", "0",
            "--out", str(tmp_path / "x.gif"), "--device", "cuda"]
    assert main(args) == 2
    assert "no CUDA device" in capsys.readouterr().err
