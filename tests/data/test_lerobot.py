"""LeRobotDataset v2.1 / v3.0 folders -> episode store, and stores -> LeRobot v3.0 (pyarrow + PyAV)."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from genie_robot.cli import main
from genie_robot.data import EpisodeStore
from genie_robot.data.examples import write_lerobot
from genie_robot.data.lerobot import SOURCE_TASKS, LeRobotReader, export_lerobot, write_h264
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
    assert main(["data", "export-lerobot", "--data", str(data), "--out", str(out), "--task", "push the red cube"]) == 0
    printed = capsys.readouterr().out
    assert "LeRobotDataset v3.0, 2 episodes, 12 frames" in printed and "left out: ee_target (the controller's target" in printed
    info = json.loads((out / "meta" / "info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["splits"] == {"train": "0:2"}
    assert info["features"]["action"]["names"] == ["ee_vx", "ee_vy", "ee_vz", "gripper"]
    stats = json.loads((out / "meta" / "stats.json").read_text())
    assert np.array(stats["observation.images.main"]["mean"]).shape == (3, 1, 1)
    assert stats["action"]["count"] == [12] and len(stats["observation.state"]["mean"]) == info["features"]["observation.state"]["shape"][0]
    tasks = pq.read_table(out / "meta" / "tasks.parquet")
    assert json.loads(tasks.schema.metadata[b"pandas"])["index_columns"] == ["__index_level_0__"]
    assert tasks.column("__index_level_0__").to_pylist() == ["push the red cube"]
    episodes = pq.read_table(out / "meta" / "episodes" / "chunk-000" / "file-000.parquet").to_pylist()
    assert [(e["dataset_from_index"], e["dataset_to_index"]) for e in episodes] == [(0, 6), (6, 12)]
    back = tmp_path / "back.h5"
    assert main(["data", "lerobot", "--root", str(out), "--size", "32", "--out", str(back)]) == 0
    with EpisodeStore(data) as original, EpisodeStore(back) as store:
        for a, b in zip(original, store):
            close(b.frames, a.frames)
            np.testing.assert_allclose(b.read_actions(), a.read_actions())
            assert b.action_names == a.action_names and b.fps == a.fps
            np.testing.assert_array_equal(b.read_state("observation.state")[:, -1:], a.read_state("gripper"))
            np.testing.assert_array_equal(b.read_state("observation.environment_state")[:, 7:14], a.read_state("red_cube_pose"))
    with pytest.raises(InputError, match="already exists"):
        export_lerobot(data, out)
    with pytest.raises(InputError, match="--task is empty"):
        export_lerobot(data, tmp_path / "untasked", task=" ")


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
    exported = export_lerobot(tmp_path / "rates.h5", tmp_path / "ds", fps=12.5, progress=False)  # a given rate wins
    assert exported.info["fps"] == json.loads((tmp_path / "ds" / "meta" / "info.json").read_text())["fps"] == 12.5
    episodes = pq.read_table(tmp_path / "ds" / "meta" / "episodes" / "chunk-000" / "file-000.parquet")
    assert episodes.column("tasks").to_pylist() == [["Control the robot as recorded"]] * 2
    with EpisodeWriter(tmp_path / "odd.h5") as writer:
        writer.append(np.zeros((3, 9, 9, 3), np.uint8), np.zeros((2, 1), np.float32), ["a"], fps=10)
    with pytest.raises(StoreError, match="9x9.*even"):
        export_lerobot(tmp_path / "odd.h5", tmp_path / "odd")
    (tmp_path / "stale.partial").mkdir()
    with pytest.raises(InputError, match="stale.partial exists"):
        export_lerobot(tmp_path / "rates.h5", tmp_path / "stale", fps=10)


def test_the_state_is_what_the_robot_measures_and_constant_elements_are_named(tmp_path, capsys):
    from genie_robot.data.store import EpisodeWriter

    ramp = np.linspace(0, 1, 5, dtype=np.float32)[:, None]
    state = {"gripper": ramp, "joint_pos": np.concatenate([ramp, np.full_like(ramp, 0.5)], 1),  # joint 1 never moves
             "ee_target": ramp.repeat(3, 1), "joint_vel": ramp.repeat(2, 1), "red_cube_pose": ramp.repeat(7, 1)}
    with EpisodeWriter(tmp_path / "robot.h5") as writer:
        writer.append(np.zeros((5, 8, 8, 3), np.uint8), np.zeros((4, 1), np.float32), ["a"], state=state, fps=10,
                      source="teleop", robot="so100")
    assert main(["data", "export-lerobot", "--data", str(tmp_path / "robot.h5"), "--out", str(tmp_path / "ds")]) == 0
    printed = capsys.readouterr().out
    assert "observation.state: joint_pos_0, joint_pos_1, gripper\n" in printed
    assert "observation.environment_state: red_cube_x, red_cube_y, red_cube_z, red_cube_qw" in printed
    assert "left out: ee_target (the controller's target" in printed and "left out: joint_vel (a velocity" in printed
    assert "constant over this export (kept, so every export of this robot has one layout" in printed
    assert printed.rstrip().endswith("divide by eps where a range is 0): joint_pos_1")
    tasks = pq.read_table(tmp_path / "ds" / "meta" / "tasks.parquet").column("__index_level_0__").to_pylist()
    assert tasks == ["Control the so100 as in the teleop recordings"]


def test_an_export_that_fails_half_way_leaves_nothing(make_store, tmp_path, monkeypatch):
    import genie_robot.data.lerobot as lerobot

    def encoder_breaks(path, frames, fps):
        raise OSError("disk full")

    monkeypatch.setattr(lerobot, "write_h264", encoder_breaks)
    with pytest.raises(OSError, match="disk full"):
        export_lerobot(make_store(lengths=(4, 5), size=16), tmp_path / "ds", fps=10, progress=False)
    assert list(tmp_path.iterdir()) == [tmp_path / "store.h5"]


# ---------------------------------------------------------------------- an export of a real MuJoCo store
EPISODE_FRAMES = 50  # lerobot-doctor's gate asks ACT-length (50-frame) episodes
STATS = {"min", "max", "mean", "std", "q01", "q10", "q50", "q90", "q99", "count"}


@pytest.fixture(scope="module")
def mujoco_export(tmp_path_factory):
    """A MuJoCo store of two 50-frame episodes and its export (default task)."""
    root = tmp_path_factory.mktemp("mujoco_export")
    generate_dataset(root / "mujoco.h5", episodes=2, steps=EPISODE_FRAMES, size=32, progress=False)
    exported = export_lerobot(root / "mujoco.h5", root / "lerobot", progress=False)
    return root / "mujoco.h5", root / "lerobot", exported


def expected_stats(values: np.ndarray) -> dict:
    values = np.asarray(values, np.float64).reshape(len(values), -1)
    return {"min": values.min(0), "max": values.max(0), "mean": values.mean(0), "std": values.std(0),
            **{f"q{round(q * 100):02d}": np.quantile(values, q, axis=0) for q in (0.01, 0.1, 0.5, 0.9, 0.99)}}


def assert_stats(stats: dict, values: np.ndarray, count: int) -> None:
    assert set(stats) == STATS and stats["count"] == [count]
    for key, value in expected_stats(values).items():
        np.testing.assert_allclose(np.ravel(stats[key]), value, rtol=1e-6, atol=1e-7, err_msg=key)


def test_the_export_holds_robot_state_object_poses_and_lerobot_stats_with_quantiles(mujoco_export):
    data, out, exported = mujoco_export
    features = exported.info["features"]
    assert features["observation.state"]["names"] == [*(f"joint_pos_{i}" for i in range(6)), "ee_pos_x", "ee_pos_y",
                                                      "ee_pos_z", "gripper"]
    assert features["observation.environment_state"]["names"][:7] == ["blue_cylinder_x", "blue_cylinder_y", "blue_cylinder_z",
                                                                      "blue_cylinder_qw", "blue_cylinder_qx", "blue_cylinder_qy",
                                                                      "blue_cylinder_qz"]
    assert features["observation.environment_state"]["names"][-3:] == ["soft_cube_x", "soft_cube_y", "soft_cube_z"]
    assert "leak the action" in exported.left_out["ee_target"] and "velocity" in exported.left_out["joint_vel"]
    frames = pq.read_table(out / "data").to_pydict()
    with EpisodeStore(data) as store:
        state = np.concatenate([np.concatenate([e.read_state("joint_pos"), e.read_state("ee_pos"), e.read_state("gripper")], 1)
                                for e in store])
        video = np.concatenate([e.read_frames() for e in store])
        cube = np.concatenate([e.read_state("soft_cube_vertices").mean(1) for e in store])
    np.testing.assert_array_equal(frames["observation.state"], state)
    np.testing.assert_allclose(np.asarray(frames["observation.environment_state"])[:, -3:], cube, rtol=1e-6)

    stats = json.loads((out / "meta" / "stats.json").read_text())
    total = 2 * EPISODE_FRAMES
    for feature in ("action", "observation.state", "observation.environment_state", "timestamp", "frame_index", "index"):
        assert_stats(stats[feature], frames[feature], total)
    image = stats["observation.images.main"]  # per channel in [0, 1], shaped [3, 1, 1], counted by images
    assert np.array(image["q50"]).shape == (3, 1, 1)
    assert_stats(image, video.reshape(-1, 3) / 255, total)

    episodes = pq.read_table(out / "meta" / "episodes" / "chunk-000" / "file-000.parquet").to_pylist()
    stat_columns = {k for k in episodes[0] if k.startswith("stats/")}
    assert stat_columns == {f"stats/{f}/{s}" for f in stats for s in STATS}
    for episode in episodes:
        rows = slice(episode["dataset_from_index"], episode["dataset_to_index"])
        for feature in ("action", "observation.state", "observation.environment_state", "frame_index"):
            assert_stats({s: episode[f"stats/{feature}/{s}"] for s in STATS}, np.asarray(frames[feature])[rows], EPISODE_FRAMES)
        assert_stats({s: episode[f"stats/observation.images.main/{s}"] for s in STATS},
                     video[rows].reshape(-1, 3) / 255, EPISODE_FRAMES)
        assert episode["tasks"] == [SOURCE_TASKS["mujoco"]]


def test_lerobot_doctor_finds_nothing_to_fix_in_how_the_export_is_written(mujoco_export):
    """lerobot-doctor (an outside validator) on the export: no FAIL anywhere, and no WARN but
    those about the data itself (a held gripper command, held random moves, outliers of pushed
    objects, few or short episodes); `gate --policy act` with 50-step chunks finds no blocker."""
    _, out, _ = mujoco_export
    doctor = Path(sys.executable).with_name("lerobot-doctor")
    report = json.loads(subprocess.run([str(doctor), "check", str(out), "--json"], capture_output=True, text=True,
                                       check=True).stdout)
    about_the_data = {"Action Quality", "Data Distribution", "Episode Health", "Anomaly Detection", "Per-Episode Summary"}
    problems = [f"{check['name']}: {m['severity']} {m['message']}" for check in report["checks"] for m in check["messages"]
                if m["severity"] == "FAIL" or (m["severity"] == "WARN" and (check["name"] not in about_the_data
                                                                              or "stats.json" in m["message"]))]
    assert report["codebase_version"] == "v3.0" and problems == []
    gate = json.loads(subprocess.run([str(doctor), "gate", str(out), "--policy", "act", "--chunk-size", str(EPISODE_FRAMES),
                                      "--json"], capture_output=True, text=True).stdout)
    assert gate["passed"] and gate["blockers"] == [], gate


def test_lerobot_loading_steps_read_the_export(mujoco_export):
    """What LeRobotDataset does on load, step by step (LeRobot itself needs Python >= 3.12 here):
    info, tasks through pandas, the episodes table and the data files through Hugging Face
    `datasets` with the features info.json declares, stats cast to arrays, and each frame's
    video timestamp found within LeRobot's 1e-4 s tolerance."""
    datasets = pytest.importorskip("datasets")
    pandas = pytest.importorskip("pandas")
    av = pytest.importorskip("av")
    data, out, _ = mujoco_export
    info = json.loads((out / "meta" / "info.json").read_text())
    assert info["codebase_version"] == "v3.0"
    tasks = pandas.read_parquet(out / "meta" / "tasks.parquet")
    assert tasks.loc[SOURCE_TASKS["mujoco"], "task_index"] == 0
    episodes = datasets.Dataset.from_parquet(sorted(map(str, (out / "meta" / "episodes").glob("*/*.parquet"))))
    episodes = episodes.select_columns([c for c in episodes.column_names if not c.startswith("stats/")])
    stats = {feature: {k: np.atleast_1d(np.array(v)) for k, v in values.items()}
             for feature, values in json.loads((out / "meta" / "stats.json").read_text()).items()}
    for feature, ft in info["features"].items():
        assert {"q01", "q99", "q10", "q90"} <= set(stats[feature])
        if ft["dtype"] == "video":
            assert all(stats[feature][k].shape == (3, 1, 1) for k in stats[feature] if k != "count")
    hf_features = datasets.Features({
        key: datasets.Value(ft["dtype"]) if ft["shape"] == [1] else datasets.Sequence(datasets.Value(ft["dtype"]), length=ft["shape"][0])
        for key, ft in info["features"].items() if ft["dtype"] != "video"})
    files = sorted({info["data_path"].format(chunk_index=e["data/chunk_index"], file_index=e["data/file_index"]) for e in episodes})
    frames = datasets.Dataset.from_parquet([str(out / f) for f in files], features=hf_features).with_format("numpy")
    assert len(frames) == info["total_frames"] and frames[0]["observation.state"].shape == (10,)

    camera = "observation.images.main"
    with EpisodeStore(data) as store:
        for number, episode in enumerate(episodes):
            rows = frames[episode["dataset_from_index"]:episode["dataset_to_index"]]
            assert (rows["episode_index"] == number).all()
            path = out / info["video_path"].format(video_key=camera, chunk_index=episode[f"videos/{camera}/chunk_index"],
                                                   file_index=episode[f"videos/{camera}/file_index"])
            queries = episode[f"videos/{camera}/from_timestamp"] + rows["timestamp"].astype(np.float64)
            for k in (1, 17, EPISODE_FRAMES - 1):  # seek as LeRobot does: to the keyframe before, decode up to the query
                with av.open(str(path)) as container:
                    stream = container.streams.video[0]
                    container.seek(int(queries[k] / stream.time_base), stream=stream, backward=True)
                    decoded = []
                    for frame in container.decode(stream):
                        decoded.append((float(frame.pts * stream.time_base), frame.to_ndarray(format="rgb24")))
                        if decoded[-1][0] >= queries[k]:
                            break
                times = np.array([t for t, _ in decoded])
                nearest = int(np.abs(times - queries[k]).argmin())
                assert abs(times[nearest] - queries[k]) < 1e-4, (number, k, times, queries[k])
                close(decoded[nearest][1], store[number].read_frames()[k])


# ---------------------------------------------------------------------- reading other datasets' cameras and names
def edit_info(root, change) -> None:
    path = root / "meta" / "info.json"
    info = json.loads(path.read_text())
    change(info["features"])
    path.write_text(json.dumps(info))


def test_the_default_camera_is_a_colour_one_and_a_depth_map_only_on_request(tmp_path):
    root = tmp_path / "ds"
    write_lerobot(root, "v3.0")
    depth = {"dtype": "video", "shape": [32, 32, 1], "names": ["height", "width", "channels"],
             "info": {"video.is_depth_map": True}}
    edit_info(root, lambda features: features.update({"observation.images.depth": depth,
                                                      **{k: features.pop(k) for k in list(features)}}))
    assert LeRobotReader(root).camera == "observation.images.top"  # declared after the depth map
    edit_info(root, lambda features: features["observation.images.top"].update(info={"is_depth_map": True}))
    with pytest.raises(InputError, match="cameras are all depth maps.*pass --camera"):
        LeRobotReader(root)
    assert LeRobotReader(root, camera="observation.images.top").camera == "observation.images.top"


def test_nested_names_are_flattened_and_names_that_do_not_fit_are_refused(tmp_path):
    root = tmp_path / "ds"
    write_lerobot(root, "v3.0")
    edit_info(root, lambda features: features["action"].update(names=[["x", "y"]]))  # as lerobot/pusht has them
    assert LeRobotReader(root).action_names == ["x", "y"]
    edit_info(root, lambda features: features["action"].update(names={"motors": ["left", "right"]}))
    assert LeRobotReader(root).action_names == ["left", "right"]
    edit_info(root, lambda features: features["action"].update(names=[["x", "y", "z"]]))
    with pytest.raises(StoreError, match=r"'action' holds 2 values but its names \[\['x', 'y', 'z'\]\] name 3"):
        LeRobotReader(root)
