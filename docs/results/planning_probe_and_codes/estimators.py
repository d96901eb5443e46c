# Exploratory record, not part of the package; run from the repository root with MUJOCO_GL=egl.
# How well do readings of imagined frames predict where MuJoCo puts the hand, per estimator?
import sys

import numpy as np

sys.path.insert(0, 'docs/results/planning_dynamics_x2_and_calibration')
from action_effects import load, starts  # noqa: E402

from genie_robot.plan.execute import vocabulary_commands  # noqa: E402
from genie_robot.sampling import SamplingConfig  # noqa: E402

S, K = 3, 4
MEDIAN = SamplingConfig(steps=2, draw='median', order='confidence')
SAMPLE = SamplingConfig(steps=2, draw='sample', order='confidence')


def hand_paths(sim, start, cmds):
    """[9, S, 3] where MuJoCo puts the hand over S steps of each behaviour from the snapshot `start`."""
    paths = []
    for c in cmds:
        sim.restore(start)
        path = []
        for _ in range(S):
            sim.step(c)
            path.append(sim.state()['ee_pos'][:3].copy())
        paths.append(path)
    return np.array(paths)


def picks_within(estimates, trues, radius=0.03):
    """[N, S, 9]: with the goal where MuJoCo put the hand after behaviour g, does the behaviour whose estimate
    is nearest it end within `radius` of it in MuJoCo?"""
    ok = [[[np.linalg.norm(trues[n, np.argmin(np.linalg.norm(estimates[n, :, s] - trues[n, g, s], axis=-1)), s] - trues[n, g, s]) < radius
            for g in range(trues.shape[1])] for s in range(S)] for n in range(len(estimates))]
    return np.array(ok)


def main():
    wm, ad, probe, world, sim = load(sys.argv[1])
    cmds = vocabulary_commands('behaviours')
    lats = ad.to_latent(cmds)
    acts = np.repeat(lats[:, None], S, 1)
    est = {k: [] for k in ('median', 'median anchored', f'mean of {K} samples', f'mean of {K} samples anchored')}
    trues = []
    for frame, start, p0, _true0 in starts('out/quality/data/val32.h5', range(12), world, wm, probe):
        def reads(sampling, seed, frame=frame):
            im = wm.imagine(frame, acts, None, seed, sampling)
            return np.stack([probe.predict(im.frames[:, s])['hand'] for s in range(S)], 1)  # [9, S, 3]
        med = reads(MEDIAN, 0)
        smp = np.mean([reads(SAMPLE, 100 * k) for k in range(K)], 0)
        for name, r in (('median', med), (f'mean of {K} samples', smp)):
            est[name].append(r)
            est[name + ' anchored'].append(r - r[0:1] + p0)  # row 0 is "stay": the shift imagination puts in the reading
        trues.append(hand_paths(sim, start, cmds))
    trues = np.stack(trues)  # [N, 9, S, 3]
    for name, e in est.items():
        e = np.stack(e)
        err = np.linalg.norm(e - trues, axis=-1) * 100  # [N, 9, S]
        ok = picks_within(e, trues)
        print(f'{name:>28}: hand error after 1/2/3 actions {np.round(err.mean((0, 1)), 2)} cm; '
              f'picks a behaviour ending within 3 cm of the goal 1/2/3: {np.round(ok.mean((0, 2)), 2)}')


if __name__ == '__main__':
    main()
