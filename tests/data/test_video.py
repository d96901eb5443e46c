"""Video files (written with PyAV / imageio) -> episode store."""
import numpy as np
import pytest

from genie_robot.cli import main
from genie_robot.data import EpisodeStore
from genie_robot.data.examples import video, write_mp4
from genie_robot.data.transforms import resize_video
from genie_robot.data.video import VideoReader
from genie_robot.errors import InputError


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """(mp4 path, the 30 frames encoded at 30 fps)."""
    frames = video(np.random.default_rng(0), 30, 72, 96)
    return write_mp4(tmp_path_factory.mktemp("video") / "game.mp4", frames, fps=30), frames


def close(actual, expected):
    """H.264 at crf 10: within a few levels on average, no pixel far off."""
    diff = np.abs(actual.astype(int) - expected.astype(int))
    assert diff.mean() < 2.5 and diff.max() < 40, (diff.mean(), diff.max())


def test_mp4_converts_frame_by_frame(clip, tmp_path):
    path, frames = clip
    out = tmp_path / "v.h5"
    assert main(["data", "video", str(path), "--out", str(out), "--size", "48"]) == 0
    with EpisodeStore(out) as store:
        ep = store[0]
        assert len(store) == 1 and ep.num_frames == 30 and ep.actions is None
        close(ep.frames, resize_video(frames, 48))
        assert (ep.fps, ep.source, ep.origin) == (30, "video", str(path.resolve()))


def test_clips_and_frame_rate_resampling(clip, tmp_path):
    path, frames = clip
    episodes = list(VideoReader([path], size=32, fps=10, clip_frames=4).episodes(set()))
    assert [len(e.frames) for e in episodes] == [4, 4, 2]  # 10 frames at 10 fps
    close(np.concatenate([e.frames for e in episodes]), resize_video(frames[::3], 32))
    assert all(e.attrs["fps"] == 10 for e in episodes)
    cut = list(VideoReader([path], size=32, clip_frames=7).episodes(set()))
    assert [len(e.frames) for e in cut] == [7, 7, 7, 7, 2]
    assert [e.attrs["origin"].rsplit("#")[1] for e in cut] == ["0", "1", "2", "3", "4"]
    # a single left-over frame is no episode
    assert [len(e.frames) for e in VideoReader([path], size=32, clip_frames=29).episodes(set())] == [29]


def test_gif_and_webm(tmp_path):
    import imageio.v3 as iio

    frames = video(np.random.default_rng(1), 8, 40, 40)
    gif = tmp_path / "g.gif"
    iio.imwrite(gif, frames, extension=".gif", duration=100, loop=0)
    webm = write_mp4(tmp_path / "w.webm", frames, fps=10, codec="libvpx-vp9")
    for episode in VideoReader([gif, webm], size=40).episodes(set()):
        assert episode.frames.shape == (8, 40, 40, 3)
        diff = np.abs(episode.frames.astype(int) - frames)
        assert diff.mean() < 8  # GIF's 256-colour palette is the lossier of the two


def test_undecodable_video_names_the_file(tmp_path, capsys):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    out = tmp_path / "never.h5"
    assert main(["data", "video", str(bad), "--out", str(out)]) == 2
    assert f"{bad}: cannot decode as video" in capsys.readouterr().err
    assert not out.exists()
    with pytest.raises(InputError, match="no such video file"):
        VideoReader([tmp_path / "missing.mp4"])


def test_resume_skips_files_already_converted(clip, tmp_path, capsys):
    path, frames = clip
    other = write_mp4(tmp_path / "other.mp4", frames[:10], fps=30)
    out = tmp_path / "v.h5"
    assert main(["data", "video", str(path), "--out", str(out), "--size", "16", "--clip-frames", "10"]) == 0
    assert main(["data", "video", str(path), str(other), "--out", str(out), "--size", "16", "--clip-frames", "10"]) == 0
    assert "wrote 1 new episodes (10 frames" in capsys.readouterr().out
    with EpisodeStore(out) as store:
        assert [e.num_frames for e in store] == [10, 10, 10, 10]
