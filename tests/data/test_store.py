import json
import os
import signal
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest

from genie_robot.data import EpisodeStore, EpisodeWriter, StoreError
from genie_robot.data.store import FORMAT, VERSION


def test_round_trip_everything(tmp_path):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (12, 16, 20, 3), dtype=np.uint8)
    actions = rng.normal(size=(11, 4)).astype(np.float32)
    state = {"ee_pos": rng.normal(size=(12, 3)), "verts": rng.normal(size=(12, 8, 3))}
    masks = rng.integers(0, 5, (12, 16, 20), dtype=np.uint8)
    path = tmp_path / "s.h5"
    with EpisodeWriter(path) as w:
        assert w.append(frames, actions, ["a", "b", "c", "d"], state, masks, source="x", robot="r",
                        fps=10, language="push it", split="test") == 0
        assert w.append(frames[:5]) == 1
    store = EpisodeStore(path)
    assert len(store) == 2
    ep = store[0]
    np.testing.assert_array_equal(ep.frames, frames)
    np.testing.assert_array_equal(ep.actions, actions)
    np.testing.assert_array_equal(ep.masks, masks)
    np.testing.assert_allclose(ep.state["verts"], state["verts"].astype(np.float32))
    assert ep.action_names == ["a", "b", "c", "d"]
    assert (ep.source, ep.robot, ep.fps, ep.language, ep.split) == ("x", "r", 10, "push it", "test")
    assert ep.num_frames == 12 and ep.frame_shape == (16, 20, 3)
    np.testing.assert_array_equal(ep.read_frames(2, 10, 3), frames[2:10:3])
    assert store[1].actions is None and store[1].masks is None
    assert [e.key for e in store] == ["000000", "000001"]
    with pytest.raises(IndexError, match="has 2 episodes"):
        store[5]
    with h5py.File(path) as h5:
        assert h5.attrs["format"] == FORMAT and h5.attrs["version"] == VERSION
        assert h5["episodes/000000/frames"].chunks[0] == 12  # chunked by frame groups
        assert json.loads(h5["episodes/000000/actions"].attrs["action_names"]) == ["a", "b", "c", "d"]


def test_append_to_existing_store(make_store):
    path = make_store(lengths=(10,))
    with EpisodeWriter(path) as w:
        w.append(np.zeros((4, 8, 8, 3), np.uint8))
    assert [e.num_frames for e in EpisodeStore(path)] == [10, 4]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(frames=np.zeros((5, 8, 8, 3), np.float32)), "uint8"),
        (dict(frames=np.zeros((5, 8, 8), np.uint8)), r"\[T, H, W, 3\]"),
        (dict(frames=np.zeros((1, 8, 8, 3), np.uint8)), "at least 2 frames"),
        (dict(frames=np.zeros((5, 8, 8, 3), np.uint8), actions=np.zeros((5, 2)), action_names=["a", "b"]), "T-1"),
        (dict(frames=np.zeros((5, 8, 8, 3), np.uint8), actions=np.zeros((4, 2)), action_names=["a"]), "name each"),
        (dict(frames=np.zeros((5, 8, 8, 3), np.uint8), state={"p": np.zeros((4, 3))}), "one per frame"),
        (dict(frames=np.zeros((5, 8, 8, 3), np.uint8), masks=np.zeros((5, 8, 8), np.int32)), "masks"),
        (dict(frames=np.zeros((5, 8, 8, 3), np.uint8), colour="red"), "unknown episode attributes"),
    ],
)
def test_bad_episodes_are_refused_and_nothing_is_lost(make_store, kwargs, message):
    path = make_store(lengths=(10,))
    with EpisodeWriter(path) as w:
        with pytest.raises(StoreError, match=message):
            w.append(**kwargs)
    store = EpisodeStore(path)
    assert len(store) == 1 and store[0].num_frames == 10


def test_not_a_store_wrong_version_missing_truncated(tmp_path, make_store):
    with pytest.raises(StoreError, match="no such episode store"):
        EpisodeStore(tmp_path / "missing.h5")
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as h5:
        h5["x"] = 1
    with pytest.raises(StoreError, match="not a genie-robot episode store"):
        EpisodeStore(other)
    with pytest.raises(StoreError, match="not a genie-robot episode store"):
        EpisodeWriter(other)  # appending to a foreign file must not touch it
    path = make_store()
    with h5py.File(path, "r+") as h5:
        h5.attrs["version"] = 99
    with pytest.raises(StoreError, match="version 99"):
        EpisodeStore(path)
    good = make_store("good.h5")
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(StoreError, match="truncated or corrupt"):
        EpisodeStore(truncated)
    text = tmp_path / "notes.h5"
    text.write_text("hello")
    with pytest.raises(StoreError, match="not a readable HDF5 file"):
        EpisodeStore(text)


_CRASHING_WRITER = textwrap.dedent(
    """
    import os, signal, sys
    import numpy as np
    from genie_robot.data import EpisodeWriter
    from genie_robot.data.store import FRAME_CHUNK
    path = sys.argv[1]
    w = EpisodeWriter(path)
    for i in range(2):
        w.append(np.full((20, 16, 16, 3), i, np.uint8), source="ok")
    # Start a third episode the way append does, then die before it is marked complete.
    g = w._file["episodes"].create_group("000002")
    g.create_dataset("frames", data=np.full((20, 16, 16, 3), 7, np.uint8))
    w._file.flush()
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_crash_mid_episode_keeps_earlier_episodes(tmp_path):
    path = tmp_path / "crash.h5"
    proc = subprocess.run([sys.executable, "-c", _CRASHING_WRITER, str(path)], timeout=120)
    assert proc.returncode == -signal.SIGKILL
    store = EpisodeStore(path)
    assert len(store) == 2  # the half-written episode is invisible
    assert [int(e.frames[0, 0, 0, 0]) for e in store] == [0, 1]
    store.close()
    with EpisodeWriter(path) as w:  # the next writer removes it and appends after the good ones
        assert len(w) == 2
        w.append(np.full((5, 16, 16, 3), 9, np.uint8))
    assert [e.num_frames for e in EpisodeStore(path)] == [20, 20, 5]


def test_writer_killed_at_an_arbitrary_moment_leaves_a_readable_store(tmp_path):
    path = tmp_path / "killed.h5"
    script = textwrap.dedent(
        """
        import sys, numpy as np
        from genie_robot.data import EpisodeWriter
        w = EpisodeWriter(sys.argv[1])
        rng = np.random.default_rng(0)
        for i in range(10_000):
            w.append(rng.integers(0, 256, (64, 64, 64, 3), dtype=np.uint8), source="ok")
            print(i, flush=True)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        for _ in range(3):  # wait until a few episodes are durable, then kill mid-stream
            assert proc.stdout.readline(), "writer died early"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    store = EpisodeStore(path)
    assert len(store) >= 3
    for episode in store:
        assert episode.frames.shape == (64, 64, 64, 3)


def test_store_survives_pickling_for_dataloader_workers(make_store):
    import pickle

    store = EpisodeStore(make_store())
    clone = pickle.loads(pickle.dumps(store))
    np.testing.assert_array_equal(clone[1].frames, store[1].frames)
    assert os.getpid() == clone._pid


def test_recorded_state_gives_named_positions(mujoco_store):
    """The hand (ee_pos), rigid bodies (pose xyz) and the soft cube (its nodes' mean), in metres:
    what planning tasks score and the state probe learns."""
    from genie_robot.data.store import state_positions
    from genie_robot.sim.world import ArmWorld

    with EpisodeStore(mujoco_store) as store:
        episode = store[0]
        assert episode.position_names == ["hand", "blue_cylinder", "red_cube", "soft_cube"]
        positions = episode.read_positions()
        assert positions.shape == (episode.num_frames, 4, 3) and positions.dtype == np.float32
        np.testing.assert_allclose(positions[:, 0], episode.read_state("ee_pos"))
        np.testing.assert_allclose(positions[:, 2], episode.read_state("red_cube_pose")[:, :3])
        np.testing.assert_allclose(positions[:, 3], episode.read_state("soft_cube_vertices").mean(1), rtol=1e-6)
        one_frame = state_positions({key: value[4] for key, value in episode.state.items()})
    assert list(one_frame) == episode.position_names
    np.testing.assert_allclose(np.stack(list(one_frame.values())), positions[4], rtol=1e-6)
    world = ArmWorld()
    try:
        assert list(state_positions(world.state())) == episode.position_names  # live state reads the same
    finally:
        world.close()
