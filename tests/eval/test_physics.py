"""Physics comparison pieces on masks and frames with known answers."""
import numpy as np
import pytest

from genie_robot.errors import InputError
from genie_robot.eval.physics import (
    ColourSegmenter,
    Move,
    centroids,
    compare_rollout,
    far_ends,
    lag_fit,
    largest_push,
    mask_iou,
    motion_followed,
    motion_shown,
    object_moves,
    shape_change,
    shown_steps,
)
from genie_robot.sim.scene import OBJECTS

COLOURS = {0: (120, 110, 95), **{o.mask_id: tuple(int(255 * c) for c in o.rgba[:3]) for o in OBJECTS}}


def _scene(masks_THW):
    """Frames painted from masks with each object's colour plus a little noise."""
    rng = np.random.default_rng(0)
    frames = np.zeros((*masks_THW.shape, 3), np.int64)
    for mask_id, colour in COLOURS.items():
        frames[masks_THW == mask_id] = colour
    return np.clip(frames + rng.integers(-6, 7, frames.shape), 0, 255).astype(np.uint8)


def _moving_square(t=5, size=32, side=6):
    masks = np.zeros((t, size, size), np.uint8)
    for i in range(t):
        masks[i, 10:10 + side, 4 + 2 * i:4 + 2 * i + side] = 2  # red cube sliding right
    masks[:, 20:26, 20:26] = 4  # soft cube at rest
    masks[:, 0:4, :] = 1  # arm along the top
    return masks


def test_segmenter_recovers_the_masks_it_was_fit_on_and_unseen_frames():
    masks = _moving_square()
    segmenter = ColourSegmenter.fit(_scene(masks), masks)
    np.testing.assert_array_equal(segmenter(_scene(masks)), masks)
    shifted = np.roll(masks, 3, axis=-2)
    np.testing.assert_array_equal(segmenter(_scene(shifted)), shifted)
    with pytest.raises(InputError, match="uint8 frames"):
        ColourSegmenter.fit(_scene(masks).astype(np.float32), masks)


def test_iou_centroid_and_shape_change_known_values():
    a = np.zeros((1, 10, 10), np.uint8)
    b = np.zeros((1, 10, 10), np.uint8)
    a[0, 0:4, 0:4] = 2
    b[0, 2:6, 0:4] = 2  # overlap 2x4 = 8, union 24
    assert mask_iou(a, b, 2)[0] == pytest.approx(8 / 24)
    assert np.isnan(mask_iou(a, b, 3)[0])  # in neither mask
    np.testing.assert_allclose(centroids(a, 2)[0], [1.5, 1.5])
    assert np.isnan(centroids(a, 3)).all()
    masks = _moving_square()
    np.testing.assert_allclose(shape_change(masks, 2), 0, atol=1e-12)  # pure translation
    squashed = masks.copy()
    squashed[-1][squashed[-1] == 4] = 0
    squashed[-1, 22:25, 18:28] = 4  # flattened: same place, another shape
    assert shape_change(squashed, 4)[-1] > 0.4


def test_far_ends_find_the_hand_of_an_arm_from_its_mount():
    """An L-shaped arm mounted at the top-left corner: its far end is the tip of the L, not its centroid."""
    masks_THW = np.zeros((2, 20, 20), np.uint8)
    masks_THW[0, 0:10, 0] = 1    # down from the mount ...
    masks_THW[0, 9, 0:10] = 1    # ... then right, ending at (9, 9)
    ends = far_ends(masks_THW, 1, base_rc=(0, 0), share=0.05)
    assert np.allclose(ends[0], (9, 9)) and np.isnan(ends[1]).all()  # the second frame has no arm
    assert not np.allclose(centroids(masks_THW, 1)[0], ends[0])


def test_compare_rollout_of_the_truth_itself_is_perfect():
    masks = _moving_square()
    frames = _scene(masks)
    segmenter = ColourSegmenter.fit(frames, masks)
    result = compare_rollout(frames, frames, masks, segmenter, sim_deformation_T=np.zeros(len(frames)))
    for name in ("arm", "red_cube", "soft_cube"):
        np.testing.assert_allclose(result["iou"][name], 1.0)
        np.testing.assert_allclose(result["centroid_error_px"][name], 0.0)
    assert np.isnan(result["iou"]["blue_cylinder"]).all()  # not in the scene
    np.testing.assert_allclose(result["soft_area_change"]["imagined"], 0.0)
    # A rollout that never moves the cube: IoU falls, centroid error grows 2 px per step.
    still = np.repeat(frames[:1], len(frames), axis=0)
    stale = compare_rollout(still, frames, masks, segmenter)
    np.testing.assert_allclose(stale["centroid_error_px"]["red_cube"], 2.0 * np.arange(len(frames)))
    assert stale["iou"]["red_cube"][-1] == 0.0
    with pytest.raises(InputError, match="same frames"):
        compare_rollout(frames[:2], frames, masks, segmenter)


def test_motion_followed_measures_how_far_the_imagined_object_goes_along_the_real_path():
    truth = _moving_square()  # the red cube slides 2 px a step to the right
    half = np.zeros_like(truth)
    for i in range(len(truth)):
        half[i, 10:16, 4 + i:4 + i + 6] = 2
    cases = {"same": (truth, 1.0), "half as far": (half, 0.5), "stays put": (np.repeat(truth[:1], 5, 0), 0.0),
             "backwards": (truth[:, :, ::-1], None)}
    for name, (imagined, expected) in cases.items():
        along, travelled = motion_followed(centroids(imagined, 2), centroids(truth, 2))
        assert travelled == pytest.approx(2 + 4 + 6 + 8), name  # every step after the first moved
        if expected is None:
            assert along < 0, name
        else:
            assert along / travelled == pytest.approx(expected), name
    # Nothing moved (the soft cube): nothing to follow; an object never imagined travels nowhere.
    assert motion_followed(centroids(truth, 4), centroids(truth, 4)) == (0.0, 0.0)
    assert motion_followed(centroids(np.zeros_like(truth), 2), centroids(truth, 2))[0] == 0.0
    assert compare_rollout(_scene(truth), _scene(truth), truth, ColourSegmenter.fit(_scene(truth), truth)
                           )["motion_followed"]["red_cube"] == pytest.approx((20.0, 20.0))


def test_one_step_motion_shown_is_one_for_the_truth_zero_for_a_copy_and_negative_backwards():
    masks = _moving_square()  # the red cube moves 2 px right each step; nothing else moves
    moves = object_moves(masks)
    assert [(m.t, m.mask_id) for m in moves] == [(t, 2) for t in range(4)]
    np.testing.assert_allclose(moves[0].step_rc, [0, 2])
    segmenter = ColourSegmenter.fit(_scene(masks), masks)
    before, after = segmenter(_scene(masks[:-1])), segmenter(_scene(masks[1:]))
    along, travel = motion_shown(moves, shown_steps(moves, before, after))
    assert travel == pytest.approx(8.0) and along / travel == pytest.approx(1.0)
    assert motion_shown(moves, shown_steps(moves, before, before))[0] == 0.0  # an imagined frame that copies frame t
    along, _ = motion_shown(moves, shown_steps(moves, after, before))  # the object goes the other way
    assert along / travel == pytest.approx(-1.0)
    # A same-coloured blob far from where the object was is not taken for it: it shows no motion.
    elsewhere = before.copy()
    elsewhere[elsewhere == 2] = 0
    elsewhere[:, 26:32, 26:32] = 2
    assert motion_shown(moves, shown_steps(moves, before, elsewhere))[0] == 0.0


def test_lag_fit_tells_a_next_frame_that_moves_on_from_one_that_falls_back():
    """A square that speeds up (1, 2, 3, 4 px a step), so each step differs from the one before."""
    masks = np.zeros((6, 32, 32), np.uint8)
    for t, col in enumerate([2, 3, 5, 8, 12, 17]):
        masks[t, 10:16, col:col + 6] = 2
    moves = object_moves(masks)
    segmenter = ColourSegmenter.fit(_scene(masks), masks)
    frames = segmenter(_scene(masks))
    at = [m.t for m in moves]
    forward = lag_fit(moves, shown_steps(moves, frames[at], frames[[t + 1 for t in at]]))
    assert forward["step"] == pytest.approx(1.0, abs=0.05) and forward["previous_step"] == pytest.approx(0.0, abs=0.05)
    back = lag_fit(moves, shown_steps(moves, frames[at], frames[[t - 1 for t in at]]))  # frame t-1 shown as t+1
    assert back["step"] == pytest.approx(0.0, abs=0.05) and back["previous_step"] == pytest.approx(-1.0, abs=0.05)
    assert lag_fit(moves[:1], np.zeros((1, 2))) is None


def test_largest_push_finds_the_object_that_travels_furthest_over_the_window():
    masks = np.zeros((6, 32, 32), np.uint8)
    for t, col in enumerate([2, 3, 5, 8, 12, 17]):  # the red cube speeds up
        masks[t, 10:16, col:col + 6] = 2
    masks[:, 20:26, 20:26] = 4  # the soft cube stays
    assert largest_push(masks, steps=2) == (2, 3, pytest.approx(9.0))  # cols 8 -> 17
    assert largest_push(masks, steps=2, first=4) is None  # no window of 2 steps starts at frame 4 or later
    assert largest_push(np.zeros((6, 32, 32), np.uint8), steps=1) is None
    move = Move.over(masks, 2, t=1, steps=3)
    np.testing.assert_allclose(move.step_rc, [0, 9])
    np.testing.assert_allclose(move.previous_rc, [0, 1])
    assert move.radius > 9
