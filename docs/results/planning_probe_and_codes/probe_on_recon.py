# Exploratory record, not part of the package: how far the state probe reads the hand on real validation
# frames, on the tokenizer's reconstructions of them, and on the world model's one-step "stay" imagination.
import sys

import numpy as np
import torch

from genie_robot.data import EpisodeStore
from genie_robot.models.run import Run

run = Run.load(sys.argv[1])
wm, probe = run.world_model(), run.probe
errs = {'real': [], 'reconstruction': []}
with torch.no_grad(), EpisodeStore('out/quality/data/val32.h5') as store:
    for e in range(12):
        ep = store[e]
        frames, hand = ep.read_frames(), ep.read_state('ee_pos')[:, :3]
        for name, fr in (('real', frames), ('reconstruction', wm.reconstruct(frames))):
            errs[name].append(np.linalg.norm(probe.predict(fr)['hand'] - hand, axis=-1))
for name, e in errs.items():
    e = np.concatenate(e) * 100
    print(f'{name:>15}: hand read {e.mean():.2f} cm from the recorded one (median {np.median(e):.2f})')
