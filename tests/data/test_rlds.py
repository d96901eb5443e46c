"""RLDS -> episode store, on datasets written with tensorflow-datasets in the RT-1 schema."""
import numpy as np
import pytest

from genie_robot.cli import main
from genie_robot.data import EpisodeStore
from genie_robot.data.examples import RT1_ACTIONS, rt1_episode, video, write_rlds, write_rt1
from genie_robot.data.rlds import RLDSReader
from genie_robot.data.transforms import resize_video
from genie_robot.errors import InputError

# TensorFlow and MuJoCo EGL rendering segfault in one process: these run in their own
# pytest process (see conftest.py; `make test` does both).
pytestmark = pytest.mark.tensorflow

RT1_NAMES = (["world_vector_0", "world_vector_1", "world_vector_2", "rotation_delta_0", "rotation_delta_1",
              "rotation_delta_2", "gripper_closedness_action", "terminate_episode_0", "terminate_episode_1",
              "terminate_episode_2", "base_displacement_vector_0", "base_displacement_vector_1",
              "base_displacement_vertical_rotation"])


@pytest.fixture(scope="module")
def rt1(tmp_path_factory):
    """(dataset folder, episodes written): 3 episodes of 256x320 PNG frames, RT-1 schema."""
    return write_rt1(tmp_path_factory.mktemp("tfds"), lengths=(6, 9, 5))


def frames_of(episode):
    return np.stack([s["observation"]["image"] for s in episode["steps"]])


def actions_of(episode):
    """RT-1's action fields flattened in the store's order, one row per step."""
    return np.stack([np.concatenate([np.asarray(s["action"][k], np.float32).ravel() for k in RT1_ACTIONS])
                     for s in episode["steps"]])


def test_rt1_converts_frame_by_frame(rt1, tmp_path, capsys):
    folder, written = rt1
    out = tmp_path / "rt1.h5"
    assert main(["data", "rlds", "--dir", str(folder), "--out", str(out), "--size", "64"]) == 0
    assert "wrote 3 new episodes (20 frames" in capsys.readouterr().out
    store = EpisodeStore(out)
    assert len(store) == 3
    for i, (ep, src) in enumerate(zip(store, written)):
        # centre crop 256x320 -> 256x256, area resize -> 64x64; PNG is lossless so exact
        np.testing.assert_array_equal(ep.frames, resize_video(frames_of(src), 64))
        # step t's action moves frame t to t+1; the last step's action is dropped
        np.testing.assert_array_equal(ep.actions, actions_of(src)[:-1])
        assert ep.action_names == RT1_NAMES
        assert ep.language == f"pick object {i} from the drawer"
        assert (ep.source, ep.robot, ep.fps, ep.split) == ("fractal20220817_data", "google_robot", 3, "train")
        assert ep.origin == f"fractal20220817_data/0.1.0/train/{i}"


def test_episode_and_step_limits(rt1, tmp_path):
    folder, written = rt1
    out = tmp_path / "few.h5"
    assert main(["data", "rlds", "--dir", str(folder), "--out", str(out), "--size", "32",
                 "--max-episodes", "2", "--max-steps", "4"]) == 0
    store = EpisodeStore(out)
    assert [e.num_frames for e in store] == [4, 4]
    np.testing.assert_array_equal(store[1].frames, resize_video(frames_of(written[1])[:4], 32))
    np.testing.assert_array_equal(store[1].actions, actions_of(written[1])[:3])


def test_interrupted_conversion_resumes(rt1, tmp_path, monkeypatch, capsys):
    folder, _ = rt1
    out, fresh = tmp_path / "resumed.h5", tmp_path / "fresh.h5"
    original = RLDSReader.episodes

    def interrupted(self, done):
        for episode in original(self, done):
            yield episode
            raise KeyboardInterrupt  # Ctrl-C after the first episode was handed to the writer

    monkeypatch.setattr(RLDSReader, "episodes", interrupted)
    args = ["data", "rlds", "--dir", str(folder), "--size", "32"]
    assert main(args + ["--out", str(out)]) == 130
    with EpisodeStore(out) as store:
        assert len(store) == 1  # a valid store of the finished episode
    monkeypatch.setattr(RLDSReader, "episodes", original)
    assert main(args + ["--out", str(out)]) == 0
    assert "already held 1 episodes" in capsys.readouterr().out
    assert main(args + ["--out", str(fresh)]) == 0
    with EpisodeStore(out) as resumed, EpisodeStore(fresh) as reference:
        assert [e.origin for e in resumed] == [e.origin for e in reference]
        for a, b in zip(resumed, reference):
            np.testing.assert_array_equal(a.frames, b.frames)
            np.testing.assert_array_equal(a.actions, b.actions)
    assert main(args + ["--out", str(out)]) == 0  # everything there: nothing new
    assert len(EpisodeStore(out)) == 3


def test_is_first_and_is_last_split_episodes(tmp_path):
    """Steps after is_last are dropped; an is_first inside an element starts a new episode."""
    from genie_robot.data.examples import rt1_features

    rng = np.random.default_rng(1)
    episode = rt1_episode(rng, 9, "stack the blocks")
    steps = episode["steps"]
    steps[3]["is_last"] = True  # episode A: steps 0..3
    steps[4]["observation"]["natural_language_instruction"] = "dropped"  # 4 is after is_last: dropped
    steps[5]["is_first"] = True  # episode B: steps 5..8
    folder = write_rlds(tmp_path / "tfds", "fractal20220817_data", rt1_features(), [episode])
    reader = RLDSReader(folder, size=16)
    parts = list(reader.episodes(set()))
    assert [len(p.frames) for p in parts] == [4, 4]
    assert [p.attrs["origin"] for p in parts] == ["fractal20220817_data/0.1.0/train/0",
                                                  "fractal20220817_data/0.1.0/train/0.1"]
    frames = frames_of(episode)
    np.testing.assert_array_equal(parts[0].frames, resize_video(frames[:4], 16))
    np.testing.assert_array_equal(parts[1].frames, resize_video(frames[5:], 16))
    np.testing.assert_array_equal(parts[1].actions, actions_of(episode)[5:8])
    assert parts[1].attrs["language"] == "stack the blocks"


def test_other_open_x_dataset_by_naming_keys(tmp_path):
    """A dataset outside the table: two cameras, a flat action, a step-level instruction."""
    import tensorflow_datasets as tfds

    F = tfds.features
    features = F.FeaturesDict({"steps": F.Dataset({
        "observation": F.FeaturesDict({
            "rgb_static": F.Image(shape=(48, 64, 3), encoding_format="png"),
            "rgb_gripper": F.Image(shape=(32, 32, 3), encoding_format="png"),
        }),
        "action": F.Tensor(shape=(7,), dtype=np.float32),
        "language_instruction": F.Text(),
        "is_first": np.bool_, "is_last": np.bool_,
    })})
    rng = np.random.default_rng(2)
    frames = video(rng, 5, 48, 64)
    actions = rng.normal(size=(5, 7)).astype(np.float32)
    steps = [{"observation": {"rgb_static": frames[t], "rgb_gripper": np.zeros((32, 32, 3), np.uint8)},
              "action": actions[t], "language_instruction": "open the door", "is_first": t == 0, "is_last": t == 4}
             for t in range(5)]
    folder = write_rlds(tmp_path / "tfds", "my_lab_dataset", features, [{"steps": steps}])
    with pytest.raises(InputError, match="not in oxe_datasets.json.*action.*observation/rgb_static"):
        RLDSReader(folder)
    out = tmp_path / "lab.h5"
    assert main(["data", "rlds", "--dir", str(folder), "--out", str(out), "--size", "32",
                 "--image-key", "observation/rgb_static", "--action-keys", "action",
                 "--language-key", "language_instruction"]) == 0
    ep = EpisodeStore(out)[0]
    np.testing.assert_array_equal(ep.frames, resize_video(frames, 32))
    np.testing.assert_array_equal(ep.actions, actions[:-1])
    assert ep.action_names == [f"action_{i}" for i in range(7)]
    assert (ep.language, ep.source) == ("open the door", "my_lab_dataset")


def test_bad_input(rt1, tmp_path, capsys):
    folder, _ = rt1
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "notes.txt").write_text("not a dataset")
    out = tmp_path / "never.h5"
    assert main(["data", "rlds", "--dir", str(tmp_path / "plain"), "--out", str(out)]) == 2
    assert "not a TFDS dataset directory (no dataset_info.json)" in capsys.readouterr().err
    assert main(["data", "rlds", "--dir", str(folder.parent), "--out", str(out)]) == 2
    assert f"pass one of them, e.g. --dir {folder}" in capsys.readouterr().err
    assert main(["data", "rlds", "--dir", str(folder), "--out", str(out), "--image-key", "observation/wrist"]) == 2
    err = capsys.readouterr().err
    assert "no image key 'observation/wrist'" in err and "'observation/image'" in err and "'action/world_vector'" in err
    assert main(["data", "rlds", "--dir", str(folder), "--out", str(out), "--action-keys", "action/velocity"]) == 2
    assert "no action key 'action/velocity' in its steps; step keys are" in capsys.readouterr().err
    assert main(["data", "rlds", "--dir", str(folder), "--out", str(out), "--split", "test"]) == 2
    assert "no split 'test'; it has ['train']" in capsys.readouterr().err
    assert not out.exists()  # bad input fails before the store is created
