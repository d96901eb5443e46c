# Exploratory record (README: "Where the imagined hand goes"), not part of the package;
# run from the repository root with MUJOCO_GL=egl.
# planning.py with the adapter's latent -> command replaced by calibrated commands (JSON [8, 4])
import json
import sys

import numpy as np

sys.path.insert(0, 'benchmarks')
from genie_robot.models.adapter import ActionAdapter

table = np.array(json.load(open(sys.argv[1])), np.float32)
ActionAdapter.to_commands = lambda self, latents: table[np.asarray(latents)]
import planning  # noqa: E402  (after the patch it must see)

sys.argv = ['planning.py'] + sys.argv[2:]
planning.main()
