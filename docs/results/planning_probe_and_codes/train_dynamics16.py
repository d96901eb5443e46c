# Exploratory record, not part of the package: x3's dynamics recipe (10200 steps) on a LAM of 16 latent actions.
import sys

from genie_robot.models import MODELS
from genie_robot.train.trainer import TrainConfig, Trainer

run, codes = sys.argv[1], int(sys.argv[2])
config = MODELS['dynamics'][0].preset('small', num_actions=codes)
cfg = TrainConfig(steps=10200, batch_size=1, clip_len=16, lr=1e-3, warmup=50, ckpt_every=2550, sample_every=0,
                  compile=True, ema=0.999)
trainer = Trainer('dynamics', config, ['out/quality/data/mujoco.h5:2', 'out/quality/data/explore.h5:1'], run, cfg)
print(trainer.train())
