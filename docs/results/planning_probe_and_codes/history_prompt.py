# Exploratory record, not part of the package; run from the repository root with MUJOCO_GL=egl.
# Mid-plan, the arm is moving: does prompting with the executed frames (not the last one alone)
# make the imagined hand land nearer where MuJoCo puts it?
import sys

import numpy as np

sys.path[:0] = ['docs/results/planning_dynamics_x2_and_calibration', 'docs/results/planning_probe_and_codes']
from action_effects import load, starts  # noqa: E402
from estimators import S, hand_paths, picks_within  # noqa: E402

from genie_robot.plan.execute import vocabulary_commands  # noqa: E402
from genie_robot.sampling import SamplingConfig  # noqa: E402

HISTORY = 3
MEDIAN = SamplingConfig(steps=2, draw='median', order='confidence')


def main():
    wm, ad, probe, world, sim = load(sys.argv[1])
    cmds = vocabulary_commands('behaviours')
    acts = np.repeat(ad.to_latent(cmds)[:, None], S, 1)
    rng = np.random.default_rng(0)
    prompts = {'last frame': 1, f'last {HISTORY + 1} frames': HISTORY + 1}
    est = {k: [] for k in prompts}
    trues = []
    for _frame, start, _p0, _true0 in starts('out/quality/data/val32.h5', range(12), world, wm, probe):
        sim.restore(start)
        frames = [sim.render(wm.image_size)]
        for b in rng.choice(7, HISTORY):  # moves and stay: the arm is in motion when the plan is made
            sim.step(cmds[b])
            frames.append(sim.render(wm.image_size))
        mid = sim.snapshot()
        p0 = probe.predict(frames[-1])['hand'][0]
        for name, n in prompts.items():
            im = wm.imagine(np.stack(frames[-n:]), acts, None, 0, MEDIAN)
            reads = np.stack([probe.predict(im.frames[:, s])['hand'] for s in range(S)], 1)
            est[name].append((reads, reads - reads[0:1] + p0))
        trues.append(hand_paths(sim, mid, cmds))
    trues = np.stack(trues)
    for name in prompts:
        for k, label in ((0, ''), (1, ' anchored')):
            e = np.stack([x[k] for x in est[name]])
            err = np.linalg.norm(e - trues, axis=-1) * 100
            ok = picks_within(e, trues)
            print(f'{name + label:>26}: hand error after 1/2/3 actions {np.round(err.mean((0, 1)), 2)} cm; '
                  f'picks within 3 cm 1/2/3: {np.round(np.mean(ok, axis=(0, 2)), 2)}', flush=True)


if __name__ == '__main__':
    main()
