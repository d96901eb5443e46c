# Exploratory record, not part of the package: what a run's LAM codes say about the hand's motion on the
# validation store (val32.h5, seed 3): NMI with the behaviour, hand motion explained per axis, each code's mean move.
import sys
import types

import numpy as np
import torch

from genie_robot.data import EpisodeStore
from genie_robot.eval.actions import collect_transitions, confusion, displacement_explained, normalized_mutual_information
from genie_robot.models.run import Run

run = Run.load(sys.argv[1], stages=('lam',))
lam = run.require('lam', 'reading codes')
n = lam.config.num_actions
reader = types.SimpleNamespace(infer_actions=lambda video: lam.infer_actions_windows(
    torch.from_numpy(np.ascontiguousarray(video))[None])[0].cpu().numpy())  # what collect_transitions asks of a world model
with torch.no_grad(), EpisodeStore('out/quality/data/val32.h5') as store:
    t = collect_transitions(reader, [store[e] for e in range(len(store))])
print(f'{sys.argv[1]}: {n} codes, NMI {normalized_mutual_information(confusion(t.latents, t.labels, n)):.2f}, '
      f'hand motion explained x/y/z {np.round(displacement_explained(t, n), 2)}')
for code in range(n):
    picked = t.latents == code
    if picked.any():
        print(f'code {code:2d}: {picked.mean():5.1%} of transitions, mean hand move {np.round(t.ee_delta[picked].mean(0) * 100, 1)} cm')
