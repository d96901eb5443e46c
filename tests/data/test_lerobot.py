"""LeRobotDataset v2.1 / v3.0 folders -> episode store, and stores -> LeRobot v3.0 (pyarrow + PyAV)."""
import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from genie_robot.cli import main
from genie_robot.data import EpisodeStore
from genie_robot.data.examples import write_lerobot
from genie_robot.data.lerobot import LeRobotReader, export_lerobot, write_h264
from genie_robot.data.transforms import resize_video
from genie_robot.errors import InputError, StoreError
from genie_robot.sim.generate import generate_dataset


def close(actual, expected):
    """H.264 yuv420p at crf 15: a few levels off on average."""
    diff = np.abs(actual.astype(int) - expected.astype(int))
    assert diff.mean() < 4, diff.mean()


@pytest.mark.parametrize("version", ["v2.1", "v3.0"])
def test_both_versions_convert_with_episode_boundaries_actions_state_and_tasks(version, tmp_path, capsys):
    root = tmp_path / "koch_push"
    written = write_lerobot(root, version)
    out = tmp_path / "koch.h5"
    assert main(["data", "lerobot", "--root", str(root), "--size", "16", "--out", str(out)]) == 0
    assert f"LeRobotDataset {version}, 3 episodes at 10 fps, camera observation.images.top" in capsys.readouterr().out
    with EpisodeStore(out) as store:
        assert [e.num_frames for e in store] == [6, 4, 5]
        for i, episode in enumerate(store):
            close(episode.frames, resize_video(written["frames"][i], 16))
            np.testing.assert_array_equal(episode.read_actions(), written["actions"][i][:-1])  # action[t]: t -> t+1
            np.testing.assert_allclose(episode.read_state("observation.state"), written["actions"][i] * 0.5)
            assert episode.action_names == ["vx", "vy"] and episode.language == written["tasks"][i]
            assert (episode.fps, episode.robot, episode.origin) == (10, "koch", f"koch_push:episode_{i:06d}")
    assert main(["data", "lerobot", "--root", str(root), "--size", "16", "--out", str(out)]) == 0
    assert "wrote 0 new episodes" in capsys.readouterr().out  # a re-run resumes


def test_bad_dataset_roots_are_refused_with_the_fix(tmp_path):
    root = tmp_path / "ds"
    write_lerobot(root, "v2.1")
    with pytest.raises(InputError, match="no camera 'observation.images.wrist'; cameras: observation.images.top"):
        LeRobotReader(root, camera="observation.images.wrist")
    with pytest.raises(InputError, match="no action feature 'actions'.*action"):
        LeRobotReader(root, action_key="actions")
    with pytest.raises(InputError, match="no meta/info.json"):
        LeRobotReader(tmp_path)
    info = json.loads((root / "meta" / "info.json").read_text())
    (root / "meta" / "info.json").write_text(json.dumps({**info, "codebase_version": "v1.6"}))
    with pytest.raises(InputError, match="version 'v1.6' is not one this reader knows"):
        LeRobotReader(root)
    (root / "meta" / "info.json").write_text(json.dumps(info))
    short = write_lerobot(tmp_path / "other", "v2.1")["frames"][1][:2]  # episode 1's video cut to 2 of its 4 frames
    write_h264(root / "videos" / "chunk-000" / "observation.images.top" / "episode_000001.mp4", short, 10)
    out = tmp_path / "out.h5"
    assert main(["data", "lerobot", "--root", str(root), "--size", "16", "--out", str(out)]) == 2
    with EpisodeStore(out) as store:  # the episode before the truncated one is complete; nothing after it
        assert [e.origin for e in store] == ["ds:episode_000000"]
    with pytest.raises(StoreError, match="4 frames in its parquet but only 2 in the video"):
        list(LeRobotReader(root, 16).episodes({"ds:episode_000000"}))


def test_a_store_exports_as_lerobot_v3_that_reads_back(tmp_path, capsys):
    data = tmp_path / "mujoco.h5"
    generate_dataset(data, episodes=2, steps=6, size=32, progress=False)
    out = tmp_path / "lerobot"
    assert main(["data", "export-lerobot", "--data", str(data), "--out", str(out)]) == 0
    assert "LeRobotDataset v3.0, 2 episodes, 12 frames" in capsys.readouterr().out
    info = json.loads((out / "meta" / "info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["splits"] == {"train": "0:2"}
    assert info["features"]["action"]["names"] == ["ee_vx", "ee_vy", "ee_vz", "gripper"]
    stats = json.loads((out / "meta" / "stats.json").read_text())
    assert np.array(stats["observation.images.main"]["mean"]).shape == (3, 1, 1)
    assert stats["action"]["count"] == [12] and len(stats["observation.state"]["mean"]) == info["features"]["observation.state"]["shape"][0]
    tasks = pq.read_table(out / "meta" / "tasks.parquet")
    assert json.loads(tasks.schema.metadata[b"pandas"])["index_columns"] == ["__index_level_0__"]
    episodes = pq.read_table(out / "meta" / "episodes" / "chunk-000" / "file-000.parquet").to_pylist()
    assert [(e["dataset_from_index"], e["dataset_to_index"]) for e in episodes] == [(0, 6), (6, 12)]
    back = tmp_path / "back.h5"
    assert main(["data", "lerobot", "--root", str(out), "--size", "32", "--out", str(back)]) == 0
    with EpisodeStore(data) as original, EpisodeStore(back) as store:
        for a, b in zip(original, store):
            close(b.frames, a.frames)
            np.testing.assert_allclose(b.read_actions(), a.read_actions())
            assert b.action_names == a.action_names and b.fps == a.fps
    with pytest.raises(InputError, match="already exists"):
        export_lerobot(data, out)


def test_stores_that_cannot_export_are_refused_and_leave_nothing(make_store, tmp_path):
    with pytest.raises(StoreError, match="needs actions"):
        export_lerobot(make_store(lengths=(4,), size=16, with_actions=False), tmp_path / "ds", fps=10)
    from genie_robot.data.store import EpisodeWriter

    with EpisodeWriter(tmp_path / "rates.h5") as writer:
        for fps in (10, 15):
            writer.append(np.zeros((3, 8, 8, 3), np.uint8), np.zeros((2, 1), np.float32), ["a"], fps=fps)
    with pytest.raises(InputError, match=r"frame rates \[10.0, 15.0\].*pass --fps"):
        export_lerobot(tmp_path / "rates.h5", tmp_path / "ds")
    assert not (tmp_path / "ds").exists() and not (tmp_path / "ds.partial").exists()
    export_lerobot(tmp_path / "rates.h5", tmp_path / "ds", fps=12.5, progress=False)  # a given rate wins
    assert json.loads((tmp_path / "ds" / "meta" / "info.json").read_text())["fps"] == 12.5
    with EpisodeWriter(tmp_path / "odd.h5") as writer:
        writer.append(np.zeros((3, 9, 9, 3), np.uint8), np.zeros((2, 1), np.float32), ["a"], fps=10)
    with pytest.raises(StoreError, match="9x9.*even"):
        export_lerobot(tmp_path / "odd.h5", tmp_path / "odd")
    (tmp_path / "stale.partial").mkdir()
    with pytest.raises(InputError, match="stale.partial exists"):
        export_lerobot(tmp_path / "rates.h5", tmp_path / "stale", fps=10)


def test_an_export_that_fails_half_way_leaves_nothing(make_store, tmp_path, monkeypatch):
    import genie_robot.data.lerobot as lerobot

    def encoder_breaks(path, frames, fps):
        raise OSError("disk full")

    monkeypatch.setattr(lerobot, "write_h264", encoder_breaks)
    with pytest.raises(OSError, match="disk full"):
        export_lerobot(make_store(lengths=(4, 5), size=16), tmp_path / "ds", fps=10, progress=False)
    assert list(tmp_path.iterdir()) == [tmp_path / "store.h5"]
