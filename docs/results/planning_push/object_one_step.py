# Exploratory record, not part of the package; run from the repository root:
#   python docs/results/planning_push/object_one_step.py RUN [STORE [EPISODES]]   (default: out/quality/data/val32.h5, all)
# Do imagined objects move when pushed, one step from real frames? On validation transitions (val32.h5) where
# an object moved >= 1 cm (recorded state), imagine frame t+1 from the real frames t-2..t and the LAM's code of
# the real transition t -> t+1 (and a random code), segment the object by colour and measure how much of its
# true image motion (centroid, pixels) the imagined frame shows: the projection of the imagined displacement
# on the true one, over the true one's squared length (1 = moved as far as in MuJoCo, 0 = stayed).
import argparse

import numpy as np

from genie_robot.data.store import EpisodeStore
from genie_robot.eval.physics import ColourSegmenter, centroids
from genie_robot.models.run import Run
from genie_robot.sampling import SamplingConfig
from genie_robot.sim.scene import MOVABLE_OBJECTS

SAMPLINGS = {"median, confidence order (planning's)": SamplingConfig(steps=8, order="confidence", draw="median"),
             "median, random order (eval's)": SamplingConfig(steps=8, order="random", draw="median"),
             "sample, random order, temperature 1": SamplingConfig(steps=8, order="random", draw="sample", temperature=1.0)}
MIN_MOVE = 0.01  # metres, xy


def followed(before, after, imagined):
    true, seen = after - before, imagined - before
    return float(seen @ true / (true @ true))


def main():
    parser = argparse.ArgumentParser(description="Do imagined objects move when pushed, one step from real frames?")
    parser.add_argument("run")
    parser.add_argument("store", nargs="?", default="out/quality/data/val32.h5")
    parser.add_argument("episodes", nargs="?", type=int, help="read the store's first EPISODES (default: all)")
    args = parser.parse_args()
    if args.episodes is not None and args.episodes < 1:
        parser.error(f"EPISODES must be >= 1, got {args.episodes}")
    wm = Run.load(args.run).world_model()
    rng = np.random.default_rng(0)
    rows = {"real frame t+1": [], "its reconstruction": []}
    rows |= {f"{code}, {sampling}": [] for sampling in SAMPLINGS for code in ("LAM's code", "random code")}
    moved_px, names = [], []
    with EpisodeStore(args.store) as store:
        episodes = list(store)[:args.episodes]
        frames = [e.frames for e in episodes]
        masks = [e.masks for e in episodes]
        segmenter = ColourSegmenter.fit(np.concatenate(frames + [wm.reconstruct(f) for f in frames]), np.concatenate(masks + masks))
        for ep, video in zip(episodes, frames):
            positions, position_names = ep.read_positions(), ep.position_names
            latents = wm.infer_actions(video)
            for t in range(2, len(video) - 1):
                for obj in MOVABLE_OBJECTS:
                    xy = positions[:, position_names.index(obj.name), :2]
                    if np.linalg.norm(xy[t + 1] - xy[t]) < MIN_MOVE:
                        continue
                    truth = centroids(segmenter(video[t:t + 2]), obj.mask_id)
                    if np.isnan(truth).any() or np.linalg.norm(truth[1] - truth[0]) < 0.5:
                        continue  # hidden, or moved under half a pixel in the image
                    recon = wm.reconstruct(video[t + 1:t + 2])
                    actions = np.array([[latents[t]], [rng.integers(wm.num_actions)]])
                    imagined = np.concatenate([wm.imagine(video[t - 2:t + 1], actions, latents[t - 2:t], 0, sampling).frames[:, 0]
                                               for sampling in SAMPLINGS.values()])
                    seen = centroids(segmenter(np.concatenate([video[t + 1:t + 2], recon, imagined])), obj.mask_id)
                    if np.isnan(seen).any():
                        continue
                    for name, point in zip(rows, seen):
                        rows[name].append(followed(truth[0], truth[1], point))
                    moved_px.append(np.linalg.norm(truth[1] - truth[0]))
                    names.append(obj.name)
    names = np.array(names)
    print(f"{len(names)} transitions where an object moved >= {MIN_MOVE * 100:.0f} cm and >= 0.5 px "
          f"({', '.join(f'{n} {np.sum(names == n)}' for n in np.unique(names))}); true image motion {np.mean(moved_px):.2f} px on average")
    for name, values in rows.items():
        values = np.array(values)
        per_object = ", ".join(f"{n} {np.median(values[names == n]):.2f}" for n in np.unique(names))
        print(f"{name:>60}: motion shown, median {np.median(values):.2f} (mean {np.mean(values):.2f}); by object: {per_object}")


if __name__ == "__main__":
    main()
