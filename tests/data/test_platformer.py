"""Platformer games (ALE Atari, Procgen CoinRun) -> episode store, and mixtures with them."""
import numpy as np
import pytest

from genie_robot.cli import main
from genie_robot.data import ClipDataset, EpisodeStore, StoreError
from genie_robot.data.platformer import PlatformerReader
from genie_robot.data.transforms import resize_video
from genie_robot.errors import InputError


def replay_ale(game: str, actions: np.ndarray, frame_skip: int = 4) -> np.ndarray:
    """Screens of a fresh ALE driven by the stored one-hot actions."""
    from ale_py import Action, ALEInterface, roms

    ale = ALEInterface()
    ale.setFloat("repeat_action_probability", 0.0)
    ale.loadROM(roms.get_rom_path(game))
    screens = [ale.getScreenRGB()]
    for action in actions.argmax(axis=1):
        for _ in range(frame_skip):
            ale.act(Action(int(action)))
        screens.append(ale.getScreenRGB())
    return np.stack(screens)


@pytest.mark.parametrize("game", ["pitfall", "montezuma_revenge"])
def test_atari_episodes_replay_frame_by_frame(game, tmp_path):
    out = tmp_path / f"{game}.h5"
    assert main(["data", "platformer", "--game", game, "--episodes", "2", "--steps", "24", "--size", "48",
                 "--out", str(out)]) == 0
    with EpisodeStore(out) as store:
        assert len(store) == 2
        for ep in store:
            assert ep.num_frames == 24 and ep.actions.shape == (23, 18)
            assert ep.action_names[:4] == ["NOOP", "FIRE", "UP", "RIGHT"]
            assert set(np.unique(ep.actions)) <= {0.0, 1.0} and (ep.actions.sum(axis=1) == 1).all()
            # actions[t] moved frame t to t+1: replaying them reproduces every stored frame
            np.testing.assert_array_equal(ep.frames, resize_video(replay_ale(game, ep.actions), 48))
            assert (ep.source, ep.fps) == (f"ale:{game}", 15)
        assert store[0].origin != store[1].origin
        assert not np.array_equal(store[0].actions, store[1].actions)


def test_coinrun(tmp_path):
    reader = PlatformerReader("coinrun", episodes=2, steps=16, size=64, policy="random", seed=3)
    first, again = list(reader.episodes(set())), list(reader.episodes(set()))
    for episode, repeat in zip(first, again):  # episode k is a pure function of (seed, k)
        np.testing.assert_array_equal(episode.frames, repeat.frames)
        np.testing.assert_array_equal(episode.actions, repeat.actions)
    episode = first[0]
    assert episode.frames.shape[1:] == (64, 64, 3) and 2 <= len(episode.frames) <= 16
    assert episode.actions.shape == (len(episode.frames) - 1, 15)
    assert "NOOP" in episode.action_names and "RIGHT+UP" in episode.action_names
    assert episode.attrs["source"] == "procgen:coinrun"
    assert len({f.tobytes() for f in episode.frames}) > 1  # the game moved


def test_resume_mixture_and_bad_input(tmp_path, capsys):
    atari, coinrun = tmp_path / "pitfall.h5", tmp_path / "coinrun.h5"
    args = ["data", "platformer", "--steps", "12", "--size", "32"]
    assert main(args + ["--game", "pitfall", "--episodes", "1", "--out", str(atari)]) == 0
    assert main(args + ["--game", "pitfall", "--episodes", "3", "--out", str(atari)]) == 0
    assert "wrote 2 new episodes" in capsys.readouterr().out
    assert main(args + ["--game", "coinrun", "--episodes", "2", "--out", str(coinrun)]) == 0
    with EpisodeStore(atari) as store:
        assert [e.origin.rsplit("/", 1)[1] for e in store] == ["0", "1", "2"]
    # 18 Atari actions vs 15 Procgen ones: one action vector cannot cover both
    with pytest.raises(StoreError, match="actions differ across the mixture"):
        ClipDataset([f"{atari}:3", f"{coinrun}:1"], clip_len=2, with_actions=True)
    mixture = ClipDataset([f"{atari}:3", f"{coinrun}:1"], clip_len=2, length=2000)
    assert mixture.action_names is None  # latent-action training needs none
    share = np.mean([mixture.locate(i)[0] == 0 for i in range(2000)])
    assert abs(share - 0.75) < 0.04
    with pytest.raises(SystemExit):  # the CLI lists the games
        main(args + ["--game", "mario_kart", "--out", str(tmp_path / "x.h5")])
    assert "argument --game: invalid choice: 'mario_kart' (choose from 'pitfall'," in capsys.readouterr().err
    with pytest.raises(InputError, match="unknown game 'mario_kart'; platformers: pitfall"):
        PlatformerReader("mario_kart", 1, 8)
    with pytest.raises(InputError, match="unknown policy"):
        PlatformerReader("pitfall", 1, 8, policy="greedy")
