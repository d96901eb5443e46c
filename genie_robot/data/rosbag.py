"""rosbag2 recordings (sqlite3 or MCAP, read with `rosbags`; ROS 1 .bag also works) -> episode store.

Each bag is one episode (or clips of --clip-frames). Frames come from one image topic
(sensor_msgs/Image in rgb8, bgr8, rgba8, bgra8, mono8, mono16, or sensor_msgs/CompressedImage
decoded with Pillow), sampled at --fps: each tick takes the latest image at or before it. The
optional action topic (geometry_msgs/Twist or TwistStamped -> 6 numbers, sensor_msgs/JointState ->
joint positions) is aligned to frames by timestamp: frame t gets the latest action at or
before it, and that action is actions[t], the command in force while frame t becomes t+1.
Frames before the first action are dropped (there is no command to pair them with).

Times are the bag's receive timestamps, the one clock every message has."""
from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from genie_robot.data.convert import Converted, check_size, cut, resample, resize_stream
from genie_robot.data.transforms import to_rgb
from genie_robot.errors import InputError
from genie_robot.extras import require

IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")
ACTION_TYPES = ("geometry_msgs/msg/Twist", "geometry_msgs/msg/TwistStamped", "sensor_msgs/msg/JointState")
TWIST_NAMES = ["linear_x", "linear_y", "linear_z", "angular_x", "angular_y", "angular_z"]
# raw Image encodings -> (channels, numpy dtype, channel order to get RGB / grey)
ENCODINGS = {
    "rgb8": (3, np.uint8, [0, 1, 2]), "bgr8": (3, np.uint8, [2, 1, 0]),
    "rgba8": (4, np.uint8, [0, 1, 2]), "bgra8": (4, np.uint8, [2, 1, 0]),
    "mono8": (1, np.uint8, [0]), "8UC1": (1, np.uint8, [0]), "8UC3": (3, np.uint8, [2, 1, 0]),  # OpenCV order
    "mono16": (1, np.uint16, [0]), "16UC1": (1, np.uint16, [0]),
}


def decode_image(msg: Any) -> np.ndarray:
    """sensor_msgs Image / CompressedImage -> uint8 RGB [H, W, 3]."""
    if hasattr(msg, "format"):  # CompressedImage
        from PIL import Image

        try:
            return np.asarray(Image.open(io.BytesIO(msg.data.tobytes())).convert("RGB"))
        except OSError as exc:
            raise InputError(f"CompressedImage ({msg.format!r}) that Pillow cannot decode: {exc}") from None
    if msg.encoding not in ENCODINGS:
        raise InputError(f"Image encoding {msg.encoding!r} is not supported; supported: {sorted(ENCODINGS)}")
    channels, dtype, order = ENCODINGS[msg.encoding]
    itemsize = np.dtype(dtype).itemsize
    rows = np.frombuffer(msg.data.tobytes(), np.uint8).reshape(msg.height, msg.step)
    # `step` may pad each row: keep width * channels values per row.
    pixels = rows[:, : msg.width * channels * itemsize].copy().view(dtype.newbyteorder(">" if msg.is_bigendian else "<")
                                                                   if itemsize > 1 else dtype)
    pixels = pixels.reshape(msg.height, msg.width, channels)[..., order]
    if itemsize > 1:
        pixels = (pixels >> 8).astype(np.uint8)  # 16-bit grey: keep the high byte
    return to_rgb(pixels)


def action_of(msg: Any, msgtype: str) -> tuple[np.ndarray, list[str]]:
    """(values, names) of one action message."""
    if msgtype in ("geometry_msgs/msg/Twist", "geometry_msgs/msg/TwistStamped"):
        tw = msg.twist if msgtype.endswith("Stamped") else msg
        return np.array([tw.linear.x, tw.linear.y, tw.linear.z, tw.angular.x, tw.angular.y, tw.angular.z],
                        np.float32), TWIST_NAMES
    if msgtype == "sensor_msgs/msg/JointState":
        positions = np.asarray(msg.position, np.float32)
        names = list(msg.name) if len(msg.name) == len(positions) else [f"position_{i}" for i in range(len(positions))]
        return positions, names
    raise InputError(f"action messages of type {msgtype} are not supported; use one of {ACTION_TYPES}")


@contextlib.contextmanager
def _open(bag: Path) -> Iterator[Any]:
    AnyReader = require("rosbags.highlevel").AnyReader
    from rosbags.typesys import Stores, get_typestore

    if not bag.exists():
        raise InputError(f"{bag}: no such bag; give a rosbag2 folder (with metadata.yaml), an .mcap/.db3 file or a ROS 1 .bag")
    try:
        reader = AnyReader([bag], default_typestore=get_typestore(Stores.LATEST))
        reader.open()
    except Exception as exc:  # rosbags raises its own error types per storage backend
        raise InputError(f"{bag}: not a readable rosbag ({type(exc).__name__}: {exc}); "
                         "give a rosbag2 folder (with metadata.yaml), an .mcap/.db3 file or a ROS 1 .bag") from None
    try:
        yield reader
    finally:
        reader.close()


def _topics(reader) -> str:
    return ", ".join(f"{t} ({i.msgtype}, {i.msgcount} msgs)" for t, i in sorted(reader.topics.items()))


class RosbagReader:
    """Validates every bag's topics on construction (before any output is created)."""

    def __init__(self, bags, image_topic: str, action_topic: str | None = None, fps: float | None = None,
                 size: int = 64, clip_frames: int | None = None):
        self.bags = [Path(b) for b in bags]
        self.image_topic, self.action_topic = image_topic, action_topic
        self.fps, self.size, self.clip_frames = fps, check_size(size), clip_frames
        for bag in self.bags:
            with _open(bag) as reader:
                self._connections(bag, reader)

    def _connections(self, bag: Path, reader) -> tuple[list, list]:
        found = {}
        for topic, allowed, role in ((self.image_topic, IMAGE_TYPES, "image"), (self.action_topic, ACTION_TYPES, "action")):
            if topic is None:
                continue
            conns = [c for c in reader.connections if c.topic == topic]
            if not conns:
                raise InputError(f"{bag}: no topic {topic!r}; topics in this bag: {_topics(reader)}")
            if conns[0].msgtype not in allowed:
                raise InputError(f"{bag}: {topic} carries {conns[0].msgtype}; the {role} topic must be one of {allowed}")
            found[topic] = conns
        return found[self.image_topic], found.get(self.action_topic, [])

    def count(self, done: set[str]) -> int | None:
        return None if self.clip_frames else sum(str(b.resolve()) not in done for b in self.bags)

    def episodes(self, done: set[str]) -> Iterator[Converted]:
        for bag in self.bags:
            origin = str(bag.resolve())
            if self.clip_frames is None and origin in done:
                continue
            with _open(bag) as reader:
                image_conns, action_conns = self._connections(bag, reader)
                stamped = resample(self._images(reader, image_conns, action_conns), self.fps)
                for index, clip in enumerate(cut(self._frames(bag, reader, stamped), self.clip_frames)):
                    clip_origin = origin if self.clip_frames is None else f"{origin}#{index}"
                    if clip_origin not in done:
                        yield self._episode(clip, clip_origin)

    def _images(self, reader, image_conns: list, action_conns: list):
        """(seconds, (raw image, its type, latest action or None)) in time order. An image
        waits until the clock moves past its stamp, so an action with the same stamp counts
        as "at or before" it whatever order the bag stored the two in."""
        latest = names = None
        pending: list = []  # images stamped at the current time

        def flush():
            for stamp_ns, raw, msgtype in pending:
                if latest is not None or not action_conns:
                    yield stamp_ns / 1e9, (raw, msgtype, latest)
            pending.clear()

        for conn, stamp_ns, raw in reader.messages(connections=image_conns + action_conns):
            if pending and stamp_ns > pending[0][0]:
                yield from flush()
            if conn in action_conns:
                values, new_names = action_of(reader.deserialize(raw, conn.msgtype), conn.msgtype)
                if names is not None and new_names != names:
                    raise InputError(f"{conn.topic}: action layout changed mid-bag ({names} -> {new_names})")
                names, latest = new_names, (values, new_names)
            else:
                pending.append((stamp_ns, raw, conn.msgtype))
        yield from flush()

    def _frames(self, bag: Path, reader, stamped) -> Iterator[tuple]:
        """(resized frame, (seconds, action)) for the images the resampling kept."""
        def decoded():
            for time_s, (raw, msgtype, action) in stamped:
                try:
                    yield decode_image(reader.deserialize(raw, msgtype)), (time_s, action)
                except InputError as exc:
                    raise InputError(f"{bag}: {exc}") from None

        return resize_stream(decoded(), self.size)

    def _episode(self, clip: list, origin: str) -> Converted:
        frames, stamped = zip(*clip)
        times, latest = zip(*stamped)
        actions = names = None
        if self.action_topic is not None:
            # frame t's action moves it to t+1; the last frame's leads out of the clip
            actions = np.stack([values for values, _ in latest[:-1]])
            names = latest[0][1]
        interval = float(np.median(np.diff(times)))
        fps = self.fps or (round(1 / interval, 3) if interval > 0 else None)  # without --fps: the image rate
        return Converted(np.stack(frames), actions, names,
                         attrs={"source": "rosbag", "fps": fps, "language": "", "origin": origin})
