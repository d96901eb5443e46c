"""rosbag2 (sqlite3 and MCAP, written with rosbags) -> episode store."""
import numpy as np
import pytest

from genie_robot.cli import main
from genie_robot.data import EpisodeStore
from genie_robot.data.examples import video, write_rosbag
from genie_robot.data.rosbag import TWIST_NAMES, RosbagReader
from genie_robot.data.transforms import resize_video
from genie_robot.errors import InputError

SECOND = 10**9


@pytest.fixture(scope="module")
def recording():
    """12 frames at 10 Hz and Twist commands at 30 Hz starting 50 ms after the first frame."""
    rng = np.random.default_rng(0)
    frames = video(rng, 12, 48, 64)
    frame_ns = 5 * SECOND + np.arange(12) * SECOND // 10
    actions = rng.normal(size=(36, 6)).astype(np.float32)
    action_ns = frame_ns[0] + SECOND // 20 + np.arange(36) * SECOND // 30
    return frames, frame_ns, actions, action_ns


def expected_actions(frame_ns, actions, action_ns):
    """The latest action at or before each frame; frames before the first action dropped."""
    latest = np.searchsorted(action_ns, frame_ns, side="right") - 1
    return latest[latest >= 0]


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "mono8", "png", "jpeg"])
def test_bag_converts_frame_by_frame(recording, tmp_path, storage, encoding):
    frames, frame_ns, actions, action_ns = recording
    bag = write_rosbag(tmp_path / "bag", frames, frame_ns, actions, action_ns, storage=storage, encoding=encoding)
    out = tmp_path / "bag.h5"
    assert main(["data", "rosbag", "--bag", str(bag), "--image-topic", "/camera/image",
                 "--action-topic", "/cmd_vel", "--size", "32", "--out", str(out)]) == 0
    with EpisodeStore(out) as store:
        ep = store[0]
        latest = expected_actions(frame_ns, actions, action_ns)
        kept = frames[len(frames) - len(latest):]  # the first frame precedes every command
        source = kept[..., :1].repeat(3, -1) if encoding == "mono8" else kept
        expected = resize_video(source, 32)
        if encoding == "jpeg":
            assert np.abs(ep.frames.astype(int) - expected).mean() < 3
        else:
            np.testing.assert_array_equal(ep.frames, expected)
        np.testing.assert_array_equal(ep.actions, actions[latest[:-1]])
        assert ep.action_names == TWIST_NAMES
        assert ep.fps == 10 and ep.origin == str(bag.resolve())


def test_resampling_clips_and_joint_states(tmp_path):
    rng = np.random.default_rng(1)
    frames = video(rng, 30, 24, 24)
    frame_ns = np.arange(30) * SECOND // 30  # 30 Hz
    positions = rng.normal(size=(30, 3))
    bag = write_rosbag(tmp_path / "arm", frames, frame_ns, positions, frame_ns, storage="mcap",
                       action_topic="/joint_states", action_type="sensor_msgs/msg/JointState")
    reader = RosbagReader([bag], "/camera/image", "/joint_states", fps=10, size=24, clip_frames=4)
    clips = list(reader.episodes(set()))
    # 10 Hz ticks take every third frame: 10 frames -> clips of 4, 4 and 2
    assert [len(c.frames) for c in clips] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate([c.frames for c in clips]), frames[::3])
    np.testing.assert_allclose(clips[1].actions, positions[[12, 15, 18]].astype(np.float32))
    assert clips[0].action_names == ["joint_0", "joint_1", "joint_2"]
    assert [c.attrs["origin"][-2:] for c in clips] == ["#0", "#1", "#2"]
    assert clips[0].attrs["fps"] == 10


def test_missing_topic_lists_topics(recording, tmp_path, capsys):
    frames, frame_ns, actions, action_ns = recording
    bag = write_rosbag(tmp_path / "bag", frames[:3], frame_ns[:3], actions[:3], action_ns[:3])
    out = tmp_path / "never.h5"
    assert main(["data", "rosbag", "--bag", str(bag), "--image-topic", "/front/image_raw", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "no topic '/front/image_raw'; topics in this bag:" in err
    assert "/camera/image (sensor_msgs/msg/Image, 3 msgs), /cmd_vel (geometry_msgs/msg/Twist, 3 msgs)" in err
    with pytest.raises(InputError, match="/cmd_vel carries geometry_msgs/msg/Twist; the image topic must be one of"):
        RosbagReader([bag], "/cmd_vel")
    with pytest.raises(InputError, match="the action topic must be one of"):
        RosbagReader([bag], "/camera/image", action_topic="/camera/image")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="not a readable rosbag"):
        RosbagReader([tmp_path / "empty"], "/camera/image")
    assert not out.exists()


def test_image_only_bag_and_resume(recording, tmp_path, capsys):
    frames, frame_ns, _, _ = recording
    first = write_rosbag(tmp_path / "a", frames[:6], frame_ns[:6])
    second = write_rosbag(tmp_path / "b", frames[6:], frame_ns[6:], storage="mcap")
    out = tmp_path / "bags.h5"
    args = ["data", "rosbag", "--image-topic", "/camera/image", "--size", "16", "--out", str(out), "--bag"]
    assert main(args + [str(first)]) == 0
    assert main(args + [str(first), str(second)]) == 0  # the first bag is already there
    assert "wrote 1 new episodes (6 frames" in capsys.readouterr().out
    with EpisodeStore(out) as store:
        assert len(store) == 2 and store[0].actions is None
        np.testing.assert_array_equal(np.concatenate([e.frames for e in store]), resize_video(frames, 16))
