import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from genie_robot.data import ClipDataset, EpisodeStore, Source, StoreError
from genie_robot.data.transforms import center_crop_box, resize_video


def test_clip_frames_and_actions_are_aligned(make_store):
    ds = ClipDataset(make_store(lengths=(20, 30)), clip_len=6, seed=3)
    for i in range(50):
        item = ds[i]
        start = item["start"]
        video, actions = item["video"].numpy(), item["actions"].numpy()
        assert video.shape == (6, 8, 8, 3) and video.dtype == np.uint8
        np.testing.assert_array_equal(video[:, 0, 0, 0], start + np.arange(6))
        # actions[t] moved frame t to t+1: in the indexed store it equals frame t's index
        np.testing.assert_array_equal(actions[:, 0], start + np.arange(5))


def test_frame_skip_keeps_every_kth_frame_and_averages_actions(make_store):
    ds = ClipDataset(make_store(lengths=(40,)), clip_len=4, frame_skip=3)
    item = ds[7]
    s = item["start"]
    np.testing.assert_array_equal(item["video"][:, 0, 0, 0].numpy(), s + 3 * np.arange(4))
    np.testing.assert_allclose(item["actions"][:, 0].numpy(), s + 3 * np.arange(3) + 1.0)  # mean of t, t+1, t+2
    assert s + 9 < 40


def test_deterministic_given_seed_and_worker_count(make_store):
    path = make_store(lengths=(20, 30, 25))
    a = ClipDataset(path, clip_len=5, seed=11, length=24)
    b = ClipDataset(path, clip_len=5, seed=11, length=24)
    c = ClipDataset(path, clip_len=5, seed=12, length=24)
    assert [a.locate(i) for i in range(24)] == [b.locate(i) for i in range(24)]
    assert [a.locate(i) for i in range(24)] != [c.locate(i) for i in range(24)]
    serial = torch.cat([x["video"] for x in DataLoader(a, batch_size=4)])
    parallel = torch.cat([x["video"] for x in DataLoader(b, batch_size=4, num_workers=2)])
    assert torch.equal(serial, parallel)


def test_windows_cover_every_valid_start(make_store):
    ds = ClipDataset(make_store(lengths=(10, 12)), clip_len=10, seed=0)
    seen = {ds.locate(i)[1:] for i in range(400)}
    assert seen == {(0, 0), (1, 0), (1, 1), (1, 2)}


def test_mixture_hits_stores_in_proportion(make_store):
    a, b = make_store("a.h5"), make_store("b.h5", offset=100)
    ds = ClipDataset([Source(a, 3.0), f"{b}:1"], clip_len=4, length=4000)
    counts = np.bincount([ds.locate(i)[0] for i in range(4000)], minlength=2)
    assert abs(counts[0] / 4000 - 0.75) < 0.03
    assert ds[0]["video"].shape == (4, 8, 8, 3)


def test_source_parsing():
    assert Source.parse("x.h5:2.5") == Source(__import__("pathlib").Path("x.h5"), 2.5)
    assert Source.parse("x.h5").weight == 1.0
    with pytest.raises(StoreError, match="weight must be > 0"):
        Source.parse("x.h5:0")


def test_resize_and_crop_policy():
    video = np.zeros((2, 256, 320, 3), np.uint8)
    video[:, :, :32] = 255  # a band that the centre crop removes
    out = resize_video(video, 64)
    assert out.shape == (2, 64, 64, 3) and out.max() == 0
    assert center_crop_box(256, 320, (64, 64)) == (slice(0, 256), slice(32, 288))
    assert resize_video(video, (256, 320)) is video


def test_clear_errors(make_store):
    short = make_store("short.h5", lengths=(5, 6))
    with pytest.raises(StoreError, match="longer than every episode"):
        ClipDataset(short, clip_len=16)
    with pytest.raises(StoreError, match="smaller than the model.s 64x64"):
        ClipDataset(short, clip_len=4, size=64)
    assert ClipDataset(short, clip_len=4, size=16, allow_upscale=True)[0]["video"].shape == (4, 16, 16, 3)
    no_actions = make_store("none.h5", with_actions=False)
    with pytest.raises(StoreError, match="actions differ across the mixture"):
        ClipDataset([short, no_actions], clip_len=4, with_actions=True)
    mixed = ClipDataset([short, no_actions], clip_len=4)
    assert "actions" not in mixed[0]
    empty = make_store("empty.h5", lengths=())
    with pytest.raises(StoreError, match="empty.h5 holds no episodes"):
        ClipDataset([short, empty], clip_len=4)
    with pytest.raises(StoreError, match="weight must be > 0"):
        ClipDataset([short, f"{no_actions}:-1"], clip_len=4)
    ds = ClipDataset([short, f"{no_actions}:3"], clip_len=4)
    summary = ds.mixture_summary(clips=100)
    assert "short.h5: weight 1 -> 25.0% of clips (2 episodes, 5 clip windows, each seen 5.00x on average)" in summary
    assert "none.h5: weight 3 -> 75.0% of clips" in summary
    wide = make_store("wide.h5", action_dim=3)
    with pytest.raises(StoreError, match="actions differ"):
        ClipDataset([short, wide], clip_len=4, with_actions=True)


def test_clips_carry_recorded_positions_on_request(mujoco_store, make_store):
    ds = ClipDataset(mujoco_store, clip_len=3, frame_skip=2, seed=0, with_positions=True)
    assert ds.position_names == ["hand", "blue_cylinder", "red_cube", "soft_cube"]
    for index in range(4):
        item, (_, episode, start) = ds[index], ds.locate(index)
        with EpisodeStore(mujoco_store) as store:
            expected = store[episode].read_positions()[start : start + 5 : 2]
        assert item["positions"].shape == (3, 4, 3)
        np.testing.assert_array_equal(item["positions"].numpy(), expected)
    assert "positions" not in ClipDataset(mujoco_store, clip_len=3)[0]
    stateless = make_store("stateless.h5", lengths=(10,), size=32)
    with pytest.raises(StoreError, match="recorded positions differ across the mixture.*genie-robot data mujoco"):
        ClipDataset([str(mujoco_store), str(stateless)], clip_len=2, with_positions=True)
