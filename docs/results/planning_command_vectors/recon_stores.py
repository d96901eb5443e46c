# Exploratory record, not part of the package; run from the repository root.
# Copies of the training stores with every frame replaced by its tokenizer reconstruction (the decoder's output space,
# where imagined frames live, with the recorded states still true of them), for a probe trained on both.
import sys
import time

import numpy as np

from genie_robot.data import EpisodeStore
from genie_robot.data.store import EpisodeWriter
from genie_robot.models.run import Run


def main():
    wm = Run.load(sys.argv[1], stages=('tokenizer', 'dynamics')).world_model()
    for path in sys.argv[2:]:
        out = path.replace('.h5', '_recon.h5')
        t0 = time.time()
        with EpisodeStore(path) as store, EpisodeWriter(out, overwrite=True) as writer:
            for i, ep in enumerate(store):
                state = {k: ep.read_state(k) for k in ep.state_keys}
                masks = np.asarray(ep.masks) if ep.has_masks else None
                writer.append(wm.reconstruct(ep.read_frames()), ep.read_actions(), list(ep.action_names), state, masks,
                              **dict(ep.attrs))
                if i % 50 == 0:
                    print(f'{out} {i}/{len(store)} {time.time() - t0:.0f}s', flush=True)


if __name__ == '__main__':
    main()
