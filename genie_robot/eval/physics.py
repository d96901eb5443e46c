"""Imagined rollouts vs MuJoCo physics: where do the objects end up, and how does the soft one deform?

Imagined frames have no segmentation, so they are segmented by a colour classifier trained on
the simulator's own masks: a lookup table over RGB quantised to 16 levels per channel holding
the most frequent mask id of each colour cell (cells never seen fall back to the nearest class
mean colour). Its IoU on the true MuJoCo frames is reported beside every figure as the ceiling
the imagined frames are measured against.

Per step: PSNR, per-object mask IoU, object centroid error (pixels), and for the soft object
its mask area change and shape change (1 - IoU with its first-frame mask after aligning the
centroids) next to the simulator's vertex deformation (RMS, rigid motion removed). Per rollout:
how far each imagined object follows the real one where that one moved (`motion_followed`):
an object that stays put scores well on IoU while the real one is pushed a few pixels, so the
per-step figures alone cannot tell a model that imagines pushes from one that ignores them.
One step ahead (`object_moves`, `motion_shown`): for every transition where MuJoCo moves an
object, how much of that step the next frame shows, the object found by its colour near where it
was; 1 = as MuJoCo, 0 = it stayed."""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from genie_robot.errors import InputError
from genie_robot.eval.metrics import psnr
from genie_robot.sim.scene import OBJECTS

LEVELS = 16
TRACKED = {o.mask_id: o.name for o in OBJECTS}
MOVABLE = {o.mask_id: o.name for o in OBJECTS if o.kind != "arm"}
SOFT_ID = next(o.mask_id for o in OBJECTS if o.kind == "soft")
# Centroid travel from the first frame below this is segmentation jitter, not motion.
MIN_MOTION_PX = 1.0


def nanmean(values, axis: int = 0) -> np.ndarray:
    """Mean ignoring NaN; all-NaN entries (an object never visible) stay NaN without a warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(np.asarray(values, dtype=np.float64), axis=axis)


def _colour_cells(frames_HWC: np.ndarray) -> np.ndarray:
    q = frames_HWC.astype(np.int64) * LEVELS // 256
    return (q[..., 0] * LEVELS + q[..., 1]) * LEVELS + q[..., 2]


class ColourSegmenter:
    def __init__(self, table: np.ndarray):
        self.table = table  # uint8 [LEVELS**3]: mask id per colour cell

    @classmethod
    def fit(cls, frames, masks) -> ColourSegmenter:
        frames, masks = np.asarray(frames), np.asarray(masks)
        if frames.dtype != np.uint8 or frames.shape[:-1] != masks.shape or frames.shape[-1] != 3:
            raise InputError(f"the segmenter needs uint8 frames [..., H, W, 3] with masks [..., H, W], "
                             f"got {frames.dtype} {list(frames.shape)} and {list(masks.shape)}")
        ids = masks.reshape(-1).astype(np.int64)
        cells = _colour_cells(frames).reshape(-1)
        counts = np.zeros((LEVELS**3, ids.max() + 1), np.int64)
        np.add.at(counts, (cells, ids), 1)
        colours = frames.reshape(-1, 3).astype(np.float64)
        present = np.flatnonzero(np.bincount(ids))
        means = np.stack([colours[ids == k].mean(0) for k in present])
        centres = (np.stack(np.unravel_index(np.arange(LEVELS**3), (LEVELS,) * 3), -1) + 0.5) * (256 / LEVELS)
        nearest = present[((centres[:, None] - means[None]) ** 2).sum(-1).argmin(1)]
        seen = counts.sum(1) > 0
        return cls(np.where(seen, counts.argmax(1), nearest).astype(np.uint8))

    def __call__(self, frames) -> np.ndarray:
        return self.table[_colour_cells(np.asarray(frames))]


def mask_iou(pred_THW: np.ndarray, true_THW: np.ndarray, mask_id: int) -> np.ndarray:
    """Per-frame IoU of one object's pixels; NaN where it is in neither mask."""
    a, b = pred_THW == mask_id, true_THW == mask_id
    union = (a | b).sum((-2, -1))
    return np.where(union > 0, (a & b).sum((-2, -1)) / np.maximum(union, 1), np.nan)


def centroids(masks_THW: np.ndarray, mask_id: int) -> np.ndarray:
    """[T, 2] (row, col) centroid of one object's pixels; NaN where it is not visible."""
    hit = masks_THW == mask_id
    area = hit.sum((-2, -1)).astype(np.float64)
    rows, cols = np.indices(masks_THW.shape[-2:])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.stack([(hit * rows).sum((-2, -1)) / area, (hit * cols).sum((-2, -1)) / area], -1)


def far_ends(masks_THW: np.ndarray, mask_id: int, base_rc, share: float = 0.1) -> np.ndarray:
    """[T, 2] (row, col) mean of the `share` of one object's pixels farthest from `base_rc`: the
    hand of an arm mounted at `base_rc`; NaN where the object is not visible."""
    out = np.full((len(masks_THW), 2), np.nan)
    for t, mask_HW in enumerate(masks_THW):
        points_N2 = np.argwhere(mask_HW == mask_id).astype(np.float64)
        if len(points_N2):
            distance_N = np.linalg.norm(points_N2 - np.asarray(base_rc, np.float64), axis=-1)
            out[t] = points_N2[distance_N >= np.quantile(distance_N, 1 - share)].mean(0)
    return out


def shape_change(masks_THW: np.ndarray, mask_id: int) -> np.ndarray:
    """1 - IoU of each frame's object mask with the first frame's, centroids aligned: zero
    for pure translation, growing as the silhouette changes shape."""
    hit = masks_THW == mask_id
    centre = centroids(masks_THW, mask_id)
    out = np.full(len(hit), np.nan)
    if not hit[0].any():
        return out
    first = np.argwhere(hit[0]) - centre[0]
    for t in range(len(hit)):
        if not hit[t].any():
            continue
        moved = np.round(first + centre[t]).astype(int)
        inside = ((moved >= 0) & (moved < hit.shape[-2:])).all(1)
        shifted = np.zeros_like(hit[0])
        shifted[moved[inside, 0], moved[inside, 1]] = True
        out[t] = 1 - (shifted & hit[t]).sum() / (shifted | hit[t]).sum()
    return out


def motion_followed(pred_T2: np.ndarray, true_T2: np.ndarray) -> tuple[float, float]:
    """From one object's imagined and true centroids [T, 2] (NaN where not visible): (imagined
    travel along the true one, true travel), summed over the steps where the true centroid is
    >= MIN_MOTION_PX from where it started; travel is measured from the rollout's first frame.
    Their ratio is 1 when the imagined object moves as far the same way, 0 when it stays put,
    negative when it goes the other way; kept as two sums so episodes pool by motion."""
    true_travel_T2, pred_travel_T2 = true_T2 - true_T2[:1], np.nan_to_num(pred_T2 - pred_T2[:1])  # unseen: no travel
    length_T = np.linalg.norm(true_travel_T2, axis=-1)
    moved = np.nan_to_num(length_T) >= MIN_MOTION_PX
    along = (pred_travel_T2[moved] * true_travel_T2[moved]).sum(-1) / length_T[moved]
    return float(along.sum()), float(length_T[moved].sum())


def compare_rollout(imagined_THWC, truth_THWC, truth_masks_THW, segmenter: ColourSegmenter,
                    sim_deformation_T=None) -> dict:
    """Per-step comparison of an imagined rollout with the MuJoCo rollout it should match."""
    imagined, truth, true_masks = np.asarray(imagined_THWC), np.asarray(truth_THWC), np.asarray(truth_masks_THW)
    if imagined.shape != truth.shape or truth.shape[:-1] != true_masks.shape:
        raise InputError(f"imagined {list(imagined.shape)}, MuJoCo {list(truth.shape)} and masks "
                         f"{list(true_masks.shape)} must cover the same frames")
    pred_masks = segmenter(imagined)
    ceiling = segmenter(truth)
    result = {"psnr": psnr(truth, imagined), "iou": {}, "segmenter_iou": {}, "centroid_error_px": {}, "motion_followed": {}}
    for mask_id, name in TRACKED.items():
        result["iou"][name] = mask_iou(pred_masks, true_masks, mask_id)
        result["segmenter_iou"][name] = mask_iou(ceiling, true_masks, mask_id)
        pred_T2, true_T2 = centroids(pred_masks, mask_id), centroids(true_masks, mask_id)
        result["centroid_error_px"][name] = np.linalg.norm(pred_T2 - true_T2, axis=-1)
        result["motion_followed"][name] = motion_followed(pred_T2, true_T2)
    area = lambda m: (m == SOFT_ID).sum((-2, -1)).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        result["soft_area_change"] = {"imagined": area(pred_masks) / area(pred_masks[:1]) - 1,
                                      "mujoco": area(true_masks) / area(true_masks[:1]) - 1}
    result["soft_shape_change"] = {"imagined": shape_change(pred_masks, SOFT_ID),
                                   "mujoco": shape_change(true_masks, SOFT_ID)}
    if sim_deformation_T is not None:
        result["sim_deformation_mm"] = np.asarray(sim_deformation_T, np.float64) * 1000
    return result


@dataclass(frozen=True)
class Move:
    """One object's motion from frame t to a later frame (t + 1 in `object_moves`) in the true masks, in pixels."""

    t: int
    mask_id: int
    start_rc: np.ndarray  # centroid at t
    step_rc: np.ndarray  # centroid at the later frame minus at t
    radius: float  # where the object is looked for in a frame: around start_rc
    previous_rc: np.ndarray  # centroid at t minus at t-1 (NaN at t = 0 or where it was not visible)

    @classmethod
    def over(cls, masks_THW: np.ndarray, mask_id: int, t: int, steps: int = 1) -> Move:
        """The object's motion from frame t to t + steps."""
        first = max(t - 1, 0)
        centre_K2 = centroids(masks_THW[first : t + steps + 1], mask_id)
        start_rc = centre_K2[t - first]
        step_rc = centre_K2[-1] - start_rc
        previous_rc = start_rc - centre_K2[0] if t else np.full(2, np.nan)
        area = (masks_THW[t] == mask_id).sum()
        # Wide enough for the object's own extent plus its move, narrow enough to miss its twins.
        radius = 1.5 * np.sqrt(area / np.pi) + np.linalg.norm(step_rc) + 2.0
        return cls(t, mask_id, start_rc, step_rc, float(radius), previous_rc)


def object_moves(masks_THW: np.ndarray) -> list[Move]:
    """Every transition where a movable object's centroid moves >= MIN_MOTION_PX."""
    moves = []
    for mask_id in MOVABLE:
        length_T = np.linalg.norm(np.diff(centroids(masks_THW, mask_id), axis=0), axis=-1)
        moved = np.flatnonzero(np.nan_to_num(length_T, nan=0.0) >= MIN_MOTION_PX)
        moves += [Move.over(masks_THW, mask_id, int(t)) for t in moved]
    return moves


def local_centroid(masks_HW: np.ndarray, move: Move) -> np.ndarray:
    """(row, col) centroid of the move's object's pixels within its radius of where it was;
    NaN where none is there."""
    rows, cols = np.indices(masks_HW.shape)
    near = (masks_HW == move.mask_id) & (np.hypot(rows - move.start_rc[0], cols - move.start_rc[1]) <= move.radius)
    if not near.any():
        return np.full(2, np.nan)
    return np.array([rows[near].mean(), cols[near].mean()])


def shown_steps(moves: list[Move], before_NHW: np.ndarray, after_NHW: np.ndarray) -> np.ndarray:
    """[N, 2] the step each move's object shows, frame n of before / after being segmented frame
    t / t+1 of move n; no step where the object is not found."""
    return np.array([np.nan_to_num(local_centroid(after_HW, move) - local_centroid(before_HW, move))
                     for move, before_HW, after_HW in zip(moves, before_NHW, after_NHW)]).reshape(-1, 2)


def motion_shown(moves: list[Move], shown_N2: np.ndarray) -> tuple[float, float]:
    """(shown step along the true one, true step length), summed over moves (`shown_steps`). Kept
    as two sums so episodes pool by motion; their ratio is the share of MuJoCo's motion shown."""
    along = sum(float(s @ m.step_rc / np.linalg.norm(m.step_rc)) for m, s in zip(moves, shown_N2))
    return along, float(sum(np.linalg.norm(m.step_rc) for m in moves))


def largest_push(masks_THW: np.ndarray, steps: int, first: int = 0) -> tuple[int, int, float] | None:
    """(mask_id, t, travel in px) of the movable object whose centroid travels furthest from
    frame t to t + steps, t >= first; None where no object travels MIN_MOTION_PX."""
    best = None
    for mask_id in MOVABLE:
        centre_T2 = centroids(masks_THW, mask_id)
        travel_T = np.linalg.norm(centre_T2[first + steps :] - centre_T2[first : len(centre_T2) - steps], axis=-1)
        if not np.isfinite(travel_T).any():
            continue
        t = int(np.nanargmax(travel_T))
        if travel_T[t] >= MIN_MOTION_PX and (best is None or travel_T[t] > best[2]):
            best = (mask_id, first + t, float(travel_T[t]))
    return best


def lag_fit(moves: list[Move], shown_N2: np.ndarray) -> dict | None:
    """Least squares shown = a * step(t -> t+1) + b * step(t-1 -> t) over the moves whose previous
    step is known: a next frame that moves the object on has a near 1 and b near 0; one that falls
    back to frame t-1 has b near -1. None with fewer than 2 such moves."""
    known = [i for i, m in enumerate(moves) if np.isfinite(m.previous_rc).all()]
    if len(known) < 2:
        return None
    steps_K2x2 = np.stack([np.stack([moves[i].step_rc, moves[i].previous_rc], -1) for i in known])
    (a, b), *_ = np.linalg.lstsq(steps_K2x2.reshape(-1, 2), shown_N2[known].reshape(-1), rcond=None)
    return {"step": round(float(a), 3), "previous_step": round(float(b), 3), "moves": len(known)}
