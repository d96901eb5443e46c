"""MuJoCo dataset generation throughput (frames/s, everything a stored frame needs:
physics, IK, RGB render, segmentation render, state) at 64x64 and 128x128, plus the
physics + IK cost alone. `--quick`: 8 frames at 64x64 only (CI)."""
import argparse
import time

import numpy as np

from genie_robot.sim.controllers import MixedPolicy
from genie_robot.sim.generate import rollout
from genie_robot.sim.world import ArmWorld


def main(frames: int = 96, sizes=(64, 128)) -> None:
    world = ArmWorld()
    world.reset(seed=0)
    t0 = time.perf_counter()
    policy = MixedPolicy(np.random.default_rng(0))
    for _ in range(frames):
        world.step(policy(world))
    physics = frames / (time.perf_counter() - t0)
    print(f"physics+IK only          {physics:7.1f} frames/s ({world.substeps} substeps of {world.model.opt.timestep * 1e3:.0f} ms)")
    for size in sizes:
        world.reset(seed=1)
        rollout(world, MixedPolicy(np.random.default_rng(1)), 4, size)  # warm the renderer
        world.reset(seed=2)
        t0 = time.perf_counter()
        rollout(world, MixedPolicy(np.random.default_rng(2)), frames, size)
        rate = frames / (time.perf_counter() - t0)
        print(f"generation at {size:3d}x{size:<3d}   {rate:7.1f} frames/s (rgb + masks + state)")
    world.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="8 frames at 64x64 only (CI)")
    main(*((8, (64,)) if parser.parse_args().quick else ()))
