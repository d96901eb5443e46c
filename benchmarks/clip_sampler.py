"""Clip sampler throughput for 16x64x64 clips (warm chunk cache) and store size per
1,000 frames for each compression choice. `--quick`: 2 short episodes, a few hundred clips (CI)."""
import argparse
import tempfile
import time
from pathlib import Path

import h5py
import hdf5plugin
import numpy as np

from genie_robot.data import ClipDataset
from genie_robot.sim.generate import generate_dataset


def size_per_1000_frames(frames: np.ndarray, tmp: Path) -> dict[str, float]:
    options = {
        "none": {},
        "blosc-lz4 (used)": hdf5plugin.Blosc(cname="lz4", clevel=5, shuffle=hdf5plugin.Blosc.NOSHUFFLE),
        "zstd": hdf5plugin.Zstd(),
        "gzip-1": {"compression": "gzip", "compression_opts": 1},
        "lzf": {"compression": "lzf"},
    }
    out = {}
    for name, opts in options.items():
        path = tmp / f"{name.split()[0]}.h5"
        with h5py.File(path, "w") as h5:
            h5.create_dataset("f", data=frames, chunks=(16, *frames.shape[1:]), **opts)
        out[name] = path.stat().st_size / 1e6 * 1000 / len(frames)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="2 episodes of 32 frames, 500 clips (CI)")
    quick = parser.parse_args().quick
    episodes, steps, n = (2, 32, 500) if quick else (12, 64, 20000)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        store = tmp / "bench.h5"
        print(f"generating {episodes} MuJoCo episodes x {steps} frames at 64x64 ...")
        generate_dataset(store, episodes=episodes, steps=steps, size=64, seed=0, progress=False)
        ds = ClipDataset(store, clip_len=16, size=64, seed=0)
        for i in range(n // 10):  # warm the chunk cache
            ds[i]
        t0 = time.perf_counter()
        for i in range(n):
            ds[i]
        rate = n / (time.perf_counter() - t0)
        print(f"clip sampler: {rate:,.0f} clips/s (16x64x64 uint8 + actions, warm cache, 1 process; target >= 5,000)")
        ds_skip = ClipDataset(store, clip_len=16, frame_skip=2, size=48, seed=0)
        for i in range(n // 40):
            ds_skip[i]
        t0 = time.perf_counter()
        for i in range(n // 4):
            ds_skip[i]
        print(f"clip sampler with frame_skip 2 and resize 64->48: {n / 4 / (time.perf_counter() - t0):,.0f} clips/s")
        frames = np.concatenate([e.frames for e in ds.stores[0]])
        mb = store.stat().st_size / 1e6
        print(f"store on disk: {1000 * mb / len(frames):.2f} MB per 1,000 frames (frames + masks + state + actions)")
        for name, size in size_per_1000_frames(frames, tmp).items():
            print(f"  frames only, {name:18s} {size:6.2f} MB per 1,000 frames")


if __name__ == "__main__":
    main()
