# Exploratory record, not part of the package; run from the repository root with MUJOCO_GL=egl.
# Is the imagined hand's error per action the codes' ambiguity or the dynamics' precision? Imagine each behaviour
# with the adapter's code, and with the codes the LAM reads from MuJoCo's own frames of that behaviour (the best
# latent actions there are), and compare where the probe puts the hand with where MuJoCo put it.
import sys

import numpy as np

sys.path.insert(0, 'docs/results/planning_dynamics_x2_and_calibration')
sys.path.insert(0, 'docs/results/planning_probe_and_codes')
from action_effects import load, starts  # noqa: E402
from estimators import MEDIAN, picks_within  # noqa: E402

from genie_robot.plan.execute import vocabulary_commands  # noqa: E402

S = 3


def main():
    wm, ad, probe, world, sim = load(sys.argv[1])
    cmds = vocabulary_commands('behaviours')
    lats = np.repeat(ad.to_latent(cmds)[:, None], S, 1)
    est = {'adapter codes': [], "LAM's codes of MuJoCo's frames": [], "MuJoCo's frames": []}
    trues, agree = [], []
    for frame, start, p0, _ in starts('out/quality/data/val32.h5', range(12), world, wm, probe):
        paths, videos = [], []
        for c in cmds:
            sim.restore(start)
            path, video = [], [frame]
            for _ in range(S):
                sim.step(c)
                path.append(sim.state()['ee_pos'][:3].copy())
                video.append(sim.render(wm.image_size))
            paths.append(path)
            videos.append(np.stack(video))
        trues.append(np.array(paths))
        oracle = np.stack([wm.infer_actions(v) for v in videos])  # [9, S]
        agree.append(oracle == lats)
        for name, acts in (('adapter codes', lats), ("LAM's codes of MuJoCo's frames", oracle)):
            im = wm.imagine(frame, acts, None, 0, MEDIAN)
            r = np.stack([probe.predict(im.frames[:, s])['hand'] for s in range(S)], 1)
            est[name].append(r - r[0:1] + p0)
        r = np.stack([probe.predict(np.stack([v[s + 1] for v in videos]))['hand'] for s in range(S)], 1)
        est["MuJoCo's frames"].append(r - r[0:1] + p0)
    trues = np.stack(trues)
    print(f"the adapter's code is the LAM's code of MuJoCo's frames in {np.mean(agree):.0%} of actions")
    for name, e in est.items():
        report(name, np.stack(e), trues, 32)


def report(label, estimates, trues, width):
    """One line: mean hand error of the estimates [N, 9, S, 3] against MuJoCo's, and the one-step picks' success."""
    err = np.linalg.norm(estimates - trues, axis=-1) * 100
    ok = picks_within(estimates, trues)
    print(f'{label:>{width}}: anchored hand error after 1/2/3 actions {np.round(err.mean((0, 1)), 2)} cm; '
          f'picks within 3 cm 1/2/3: {np.round(ok.mean((0, 2)), 2)}', flush=True)


if __name__ == '__main__':
    main()
