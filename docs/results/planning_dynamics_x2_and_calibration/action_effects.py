# Exploratory record (README: "Where the imagined hand goes"), not part of the package;
# run from the repository root with MUJOCO_GL=egl.
import sys

import numpy as np

from genie_robot.data import EpisodeStore
from genie_robot.models.run import Run
from genie_robot.plan.execute import vocabulary_commands
from genie_robot.sampling import SamplingConfig
from genie_robot.sim.controllers import BEHAVIOURS
from genie_robot.sim.world import ArmWorld

S = 3  # actions imagined and simulated per start
SAMPLING = SamplingConfig(steps=2, draw='median', order='confidence')


def load(run_path):
    """world model, adapter, probe and two arm worlds (one to restore starts into)."""
    run = Run.load(run_path)
    return run.world_model(), run.require('adapter', 'calibration'), run.probe, ArmWorld(), ArmWorld()


def starts(store_path, episodes, world, wm, probe):
    """Per start (frames 2, 10, 18 of each episode): its frame, snapshot, the probe's and the true hand."""
    with EpisodeStore(store_path) as store:
        for e in episodes:
            ep = store[e]
            st = {k: ep.read_state(k) for k in ep.state_keys}
            for t in (2, 10, 18):
                world.set_state({k: v[t] for k, v in st.items()})
                frame = world.render(wm.image_size)
                yield frame, world.snapshot(), probe.predict(frame)['hand'][0], world.state()['ee_pos'][:3].copy()


def main():
    wm, ad, probe, world, sim = load(sys.argv[1])
    codes = np.arange(8)
    code_cmds = ad.to_commands(codes)
    beh_cmds = vocabulary_commands('behaviours')
    beh_lat = ad.to_latent(beh_cmds)
    res = {'code': [], 'beh': []}
    for frame, start, p0, true0 in starts('out/quality/data/val32.h5', range(12), world, wm, probe):
        for name, cmds, lats in (('code', code_cmds, codes), ('beh', beh_cmds, beh_lat)):
            im = wm.imagine(frame, np.repeat(lats[:, None], S, 1), None, 0, SAMPLING)
            reads = np.stack([probe.predict(im.frames[:, s])['hand'] for s in range(S)], 1)  # [R, S, 3]
            for r, c in enumerate(cmds):
                sim.restore(start)
                trues = []
                for _s in range(S):
                    sim.step(c)
                    trues.append(sim.state()['ee_pos'][:3].copy())
                res[name].append((r, reads[r] - p0, np.stack(trues) - true0))
    for name, labels in (('code', [f'code {i}' for i in codes]), ('beh', [f'{b}->{code}' for b, code in zip(BEHAVIOURS, beh_lat)])):
        print(f'\n{name}: imagined vs MuJoCo hand displacement (cm), after 1 and {S} steps')
        for r, lab in enumerate(labels):
            rows = [(im, tr) for rr, im, tr in res[name] if rr == r]
            im = np.stack([x[0] for x in rows]) * 100
            tr = np.stack([x[1] for x in rows]) * 100
            err1 = np.linalg.norm(im[:, 0] - tr[:, 0], axis=1).mean()
            errS = np.linalg.norm(im[:, -1] - tr[:, -1], axis=1).mean()
            bias = np.linalg.norm(im[:, -1].mean(0) - tr[:, -1].mean(0))
            print(f'{lab:>10}: imagined {np.round(im[:, -1].mean(0), 1)} true {np.round(tr[:, -1].mean(0), 1)}  '
                  f'err1 {err1:.1f} err{S} {errS:.1f} (bias {bias:.1f})')


if __name__ == '__main__':
    main()
