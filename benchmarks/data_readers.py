"""Conversion throughput (frames/s written to the store, 64x64) per reader, on inputs written
here with the real libraries: RT-1-schema RLDS (JPEG 256x320, as the real dataset), rosbag2
(raw rgb8 and JPEG CompressedImage, 256x320, with Twist actions), H.264 mp4 (256x320), a
LeRobot v3.0 dataset (H.264 256x256, parquet), robomimic HDF5 (84x84, as its image datasets)
and platformer games. Times cover reading, decoding, resizing and writing; not library start-up
(the TensorFlow import, Procgen's first environment). `--quick`: a few frames per reader (CI)."""
import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from genie_robot.data.convert import convert
from genie_robot.data.examples import (
    rt1_episode,
    rt1_features,
    video,
    write_lerobot,
    write_mp4,
    write_rlds,
    write_robomimic,
    write_rosbag,
)

SIZE = 64


def timed(name: str, reader, out: Path) -> None:
    result = convert(out, reader, name, progress=False)
    print(f"{name:<34} {result['frames']:>5} frames  {result['frames'] / result['seconds']:>7.0f} frames/s")


def main(quick: bool = False) -> None:
    rng = np.random.default_rng(0)
    frames = video(rng, 20 if quick else 300, 256, 320)
    episodes, steps, game_steps = (1, 5, 10) if quick else (6, 40, 200)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        print(f"converting to {SIZE}x{SIZE} episode stores ...")

        from genie_robot.data.rlds import RLDSReader

        episodes = [rt1_episode(rng, steps, "pick up the can") for _ in range(episodes)]
        folder = write_rlds(tmp / "tfds", "fractal20220817_data", rt1_features("jpeg"), episodes)
        timed("rlds (RT-1 schema, jpeg 256x320)", RLDSReader(folder, size=SIZE), tmp / "rlds.h5")

        from genie_robot.data.rosbag import RosbagReader

        stamps = np.arange(len(frames)) * 10**8
        twists = rng.normal(size=(len(frames), 6))
        for storage, encoding in (("sqlite3", "rgb8"), ("mcap", "rgb8"), ("mcap", "jpeg")):
            bag = write_rosbag(tmp / f"{storage}_{encoding}", frames, stamps, twists, stamps, storage, encoding)
            timed(f"rosbag ({storage}, {encoding} 256x320)", RosbagReader([bag], "/camera/image", "/cmd_vel", size=SIZE),
                  tmp / f"{storage}_{encoding}.h5")

        from genie_robot.data.video import VideoReader

        mp4 = write_mp4(tmp / "clip.mp4", frames, fps=30)
        timed("video (h264 mp4 256x320)", VideoReader([mp4], size=SIZE), tmp / "video.h5")

        from genie_robot.data.lerobot import LeRobotReader

        lengths = (steps,) * len(episodes)
        write_lerobot(tmp / "lerobot", "v3.0", lengths, size=256)
        timed("lerobot v3.0 (h264 256x256)", LeRobotReader(tmp / "lerobot", size=SIZE), tmp / "lerobot.h5")

        from genie_robot.data.robomimic import RobomimicReader

        write_robomimic(tmp / "demos.hdf5", lengths, size=84)
        timed("robomimic hdf5 (84x84)", RobomimicReader(tmp / "demos.hdf5", "agentview", SIZE), tmp / "robomimic.h5")

        from genie_robot.data.platformer import PlatformerReader

        for game in ("pitfall",) if quick else ("pitfall", "montezuma_revenge", "coinrun"):
            if game == "coinrun":
                list(PlatformerReader(game, 1, 2).episodes(set()))  # Procgen's first environment takes seconds
            timed(f"platformer ({game})", PlatformerReader(game, 4, game_steps, size=SIZE), tmp / f"{game}.h5")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="a few frames per reader (CI)")
    start = time.perf_counter()
    main(parser.parse_args().quick)
    print(f"total {time.perf_counter() - start:.0f} s")
