import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

from genie_robot.data import ClipDataset, EpisodeStore
from genie_robot.data.store import EpisodeWriter
from genie_robot.errors import GenieRobotError, InputError
from genie_robot.sim.generate import _episode_of, generate_dataset
from genie_robot.sim.world import COMMAND_NAMES


def test_generated_store_is_complete_and_resumable(tmp_path):
    path = tmp_path / "mj.h5"
    generate_dataset(path, episodes=2, steps=6, size=32, seed=1, progress=False)
    store = EpisodeStore(path)
    assert len(store) == 2
    ep = store[0]
    assert ep.frames.shape == (6, 32, 32, 3) and ep.actions.shape == (5, 4)
    assert ep.action_names == list(COMMAND_NAMES)
    assert ep.masks.shape == (6, 32, 32) and set(np.unique(ep.masks)) >= {0, 1}
    state = ep.state
    for key in ["ee_pos", "gripper", "joint_pos", "red_cube_pose", "blue_cylinder_pose",
                "soft_cube_vertices", "contact", "soft_deformation"]:
        assert state[key].shape[0] == 6, key
    assert (ep.source, ep.robot, ep.fps) == ("mujoco", "kinova_jaco", 5)
    assert np.abs(ep.actions).max() <= 1.0
    first_frames = ep.frames
    store.close()
    # Same command with more episodes resumes: earlier episodes are untouched, new ones appended.
    result = generate_dataset(path, episodes=3, steps=6, size=32, seed=1, progress=False)
    assert result["written"] == 1
    store = EpisodeStore(path)
    assert len(store) == 3
    np.testing.assert_array_equal(store[0].frames, first_frames)
    assert ClipDataset(path, clip_len=4)[0]["actions"].shape == (3, 4)


def test_parallel_generation_writes_the_same_store(tmp_path):
    generate_dataset(tmp_path / "one.h5", episodes=3, steps=4, size=16, seed=5, progress=False)
    generate_dataset(tmp_path / "two.h5", episodes=3, steps=4, size=16, seed=5, progress=False, workers=2)
    one, two = EpisodeStore(tmp_path / "one.h5"), EpisodeStore(tmp_path / "two.h5")
    for a, b in zip(one, two, strict=True):
        np.testing.assert_array_equal(a.frames, b.frames)
        np.testing.assert_array_equal(a.actions, b.actions)


def test_appending_to_a_store_of_another_frame_rate_is_refused(tmp_path):
    path = tmp_path / "old.h5"
    with EpisodeWriter(path) as writer:  # a store written when the arm world ran at 10 fps
        writer.append(np.zeros((3, 32, 32, 3), np.uint8), source="mujoco", fps=10)
    with pytest.raises(InputError, match=r"recorded at \[10\] fps.*--overwrite"):
        generate_dataset(path, episodes=2, steps=4, size=32, progress=False)
    assert len(EpisodeStore(path)) == 1  # untouched
    assert generate_dataset(path, episodes=1, steps=4, size=32, progress=False, overwrite=True)["written"] == 1


def test_a_dead_simulation_worker_is_reported_with_the_resume_fix():
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        dying = pool.submit(os._exit, 1)  # a worker that dies as a crashing GL driver would take it
        with pytest.raises(GenieRobotError, match="worker process died.*run the same command again to resume"):
            _episode_of(dying)
