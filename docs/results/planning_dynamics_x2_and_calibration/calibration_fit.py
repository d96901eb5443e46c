# Exploratory record (README: "Where the imagined hand goes"), not part of the package;
# run from the repository root with MUJOCO_GL=egl and PYTHONPATH=docs/results/planning_dynamics_x2_and_calibration.
# Calibrated commands per latent code from TRAINING starts (mujoco.h5): the command whose MuJoCo
# hand displacement over 3 steps matches the code's imagined one (linear gains from full-strength moves).
import json
import sys

import numpy as np
from action_effects import SAMPLING, S, load, starts

wm, ad, probe, world, sim = load(sys.argv[1])
codes = np.arange(8)
cmds = ad.to_commands(codes)
unit = np.concatenate([np.eye(3), -np.eye(3)])
unit_cmds = np.concatenate([unit, np.zeros((6, 1))], 1).astype(np.float32)
im_d, gain_d = [], []
for frame, start, p0, true0 in starts('out/quality/data/mujoco.h5', range(0, 48, 4), world, wm, probe):
    im = wm.imagine(frame, np.repeat(codes[:, None], S, 1), None, 0, SAMPLING)
    im_d.append(probe.predict(im.frames[:, -1])['hand'] - p0)
    g = []
    for c in unit_cmds:
        sim.restore(start)
        for _s in range(S):
            sim.step(c)
        g.append(sim.state()['ee_pos'][:3] - true0)
    gain_d.append(np.stack(g))
im_d = np.mean(im_d, 0)
gain = np.mean(gain_d, 0)  # [8,3], [6,3]
pos, neg = np.diag(gain[:3]), -np.diag(gain[3:])
out = cmds.copy()
for a in codes:
    d = im_d[a]
    out[a, :3] = np.clip(np.where(d >= 0, d / pos, d / neg), -1, 1)
print('gains cm +', np.round(pos * 100, 1), '-', np.round(neg * 100, 1))
for a in codes:
    print(a, 'imagined cm', np.round(im_d[a] * 100, 1), 'adapter', np.round(cmds[a, :3], 2),
          'calibrated', np.round(out[a, :3], 2))
json.dump(out.tolist(), open(sys.argv[2], 'w'))
