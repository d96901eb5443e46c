# Exploratory record, not part of the package: x3's LAM recipe (6000 steps) with 16 latent actions instead of 8.
import sys

from genie_robot.models import MODELS
from genie_robot.train.trainer import TrainConfig, Trainer

run, codes = sys.argv[1], int(sys.argv[2])
config = MODELS['lam'][0].preset('small', num_actions=codes)
cfg = TrainConfig(steps=6000, batch_size=16, clip_len=2, lr=1e-3, warmup=50, ckpt_every=1500, sample_every=0)
trainer = Trainer('lam', config, ['out/quality/data/mujoco.h5:2', 'out/quality/data/explore.h5:1'], run, cfg)
print(trainer.train())
