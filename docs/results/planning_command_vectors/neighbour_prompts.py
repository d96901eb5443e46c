# Exploratory record, not part of the package; run from the repository root with MUJOCO_GL=egl.
# Does averaging each behaviour's imagined displacement over several nearby real frames (the current one and the
# one or two before it) pick better one-step moves than imagining from the current frame alone?
import sys

import numpy as np

sys.path.insert(0, 'docs/results/planning_dynamics_x2_and_calibration')
sys.path.insert(0, 'docs/results/planning_probe_and_codes')
sys.path.insert(0, 'docs/results/planning_command_vectors')
from action_effects import load  # noqa: E402
from estimators import MEDIAN, hand_paths  # noqa: E402
from oracle_codes import report  # noqa: E402

from genie_robot.data import EpisodeStore  # noqa: E402
from genie_robot.plan.execute import vocabulary_commands  # noqa: E402

S = 3


def main():
    wm, ad, probe, world, sim = load(sys.argv[1])
    cmds = vocabulary_commands('behaviours')
    acts = np.repeat(ad.to_latent(cmds)[:, None], S, 1)
    deltas, p0s, trues = [], [], []
    with EpisodeStore('out/quality/data/val32.h5') as store:
        for e in range(12):
            ep = store[e]
            st = {k: ep.read_state(k) for k in ep.state_keys}
            for t in (2, 10, 18):
                per_prompt = []
                for back in (0, 1, 2):
                    world.set_state({k: v[t - back] for k, v in st.items()})
                    frame = world.render(wm.image_size)
                    if back == 0:
                        start, p0 = world.snapshot(), probe.predict(frame)['hand'][0]
                    im = wm.imagine(frame, acts, None, 0, MEDIAN)
                    r = np.stack([probe.predict(im.frames[:, s])['hand'] for s in range(S)], 1)  # [9, S, 3]
                    per_prompt.append(r - r[0:1])
                deltas.append(per_prompt)
                p0s.append(p0)
                trues.append(hand_paths(sim, start, cmds))
    deltas, p0s, trues = np.array(deltas), np.array(p0s), np.stack(trues)  # [N, 3, 9, S, 3], [N, 3], [N, 9, S, 3]
    for label, d in (('current frame', deltas[:, 0]), ('mean over current + 1 before', deltas[:, :2].mean(1)),
                     ('mean over current + 2 before', deltas.mean(1))):
        report(label, d + p0s[:, None, None], trues, 30)


if __name__ == '__main__':
    main()
