"""robomimic / LIBERO / MimicGen HDF5 demos -> episode store (fixtures in the published layout)."""
import h5py
import numpy as np
import pytest

from genie_robot.cli import main
from genie_robot.data import EpisodeStore
from genie_robot.data.examples import write_robomimic
from genie_robot.data.robomimic import OSC_POSE_NAMES, RobomimicReader
from genie_robot.errors import InputError, StoreError


def red_on_top(frame) -> bool:
    top, bottom = frame[: len(frame) // 2].mean((0, 1)), frame[len(frame) // 2:].mean((0, 1))
    return top[0] > top[2] + 100 and bottom[2] > bottom[0] + 100


def test_robomimic_demos_become_episodes_with_actions_state_and_splits(tmp_path, capsys):
    source = tmp_path / "lift.hdf5"
    actions = write_robomimic(source)
    out = tmp_path / "lift.h5"
    assert main(["data", "robomimic", "--file", str(source), "--camera", "agentview", "--size", "16", "--out", str(out)]) == 0
    with EpisodeStore(out) as store:
        assert [e.origin for e in store] == ["lift.hdf5:demo_0", "lift.hdf5:demo_1", "lift.hdf5:demo_10"]
        for episode, recorded in zip(store, actions.values()):
            assert episode.num_frames == len(recorded) and episode.frames.shape[1:] == (16, 16, 3)
            np.testing.assert_array_equal(episode.read_actions(), recorded[:-1])  # actions[t]: frame t -> t+1
            assert episode.action_names == OSC_POSE_NAMES and episode.fps == 20 and episode.robot == "Lift"
            assert set(episode.state_keys) == {"robot0_eef_pos", "robot0_gripper_qpos", "sim_state"}
            assert episode.read_state("sim_state").shape == (len(recorded), 10)
            assert all(red_on_top(f) for f in episode.frames)  # robomimic stores images upright
    assert main(["data", "robomimic", "--file", str(source), "--out", str(out), "--size", "16"]) == 0
    assert "wrote 0 new episodes" in capsys.readouterr().out  # a re-run resumes
    valid = list(RobomimicReader(source, "agentview", 16, filter_key="valid").episodes(set()))
    assert [e.attrs["origin"] for e in valid] == ["lift.hdf5:demo_10"] and valid[0].attrs["split"] == "valid"


def test_libero_images_are_turned_upright_and_keep_their_instruction(tmp_path):
    source = tmp_path / "libero.hdf5"
    write_robomimic(source, lengths=(4, 4), libero=True)
    (episode,) = list(RobomimicReader(source, "agentview", 16).episodes({"libero.hdf5:demo_1"}))
    assert all(red_on_top(f) for f in episode.frames)
    assert episode.attrs["language"] == "open the top drawer of the cabinet"
    kept = next(RobomimicReader(source, "agentview", 16, flip="none").episodes(set()))
    assert not any(red_on_top(f) for f in kept.frames)
    rotated = next(RobomimicReader(source, "eye_in_hand", 16, flip="rotate180").episodes(set()))
    assert not any(red_on_top(f) for f in rotated.frames)  # the wrist camera here was stored upright


def test_bad_files_are_refused_with_the_fix_and_nothing_written(tmp_path):
    good = tmp_path / "good.hdf5"
    write_robomimic(good)
    with pytest.raises(InputError, match="no camera 'frontview'.*cameras there: agentview_image, robot0_eye_in_hand_image"):
        RobomimicReader(good, "frontview")
    with pytest.raises(InputError, match="no filter key 'test'.*train"):
        RobomimicReader(good, "agentview", filter_key="test")
    with pytest.raises(InputError, match="--flip must be one of"):
        RobomimicReader(good, "agentview", flip="sideways")
    empty = tmp_path / "empty.hdf5"
    with h5py.File(empty, "w") as f:
        f.create_group("data")
    with pytest.raises(StoreError, match="holds no demos"):
        RobomimicReader(empty, "agentview")
    with h5py.File(tmp_path / "other.hdf5", "w") as f:
        f.create_dataset("images", data=np.zeros((2, 8, 8, 3), np.uint8))
    with pytest.raises(StoreError, match="no 'data' group"):
        RobomimicReader(tmp_path / "other.hdf5", "agentview")
    truncated = tmp_path / "truncated.hdf5"
    truncated.write_bytes(good.read_bytes()[:2000])
    with pytest.raises(StoreError, match="not a readable HDF5 file"):
        RobomimicReader(truncated, "agentview")
    with h5py.File(good, "a") as f:
        del f["data/demo_1/actions"]
        f.create_dataset("data/demo_1/actions", data=np.zeros((3, 7)))
    out = tmp_path / "out.h5"
    assert main(["data", "robomimic", "--file", str(good), "--out", str(out), "--size", "16"]) == 2
    with EpisodeStore(out) as store:  # the demo before the bad one is kept, complete
        assert [e.origin for e in store] == ["good.hdf5:demo_0"]
    assert main(["data", "robomimic", "--file", str(tmp_path / "missing.hdf5"), "--out", str(out)]) == 2
