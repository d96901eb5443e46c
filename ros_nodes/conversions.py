"""ROS message <-> numpy conversions as pure functions.

They touch message *fields* only (duck typing) and import nothing from ROS, so they run and
are tested without rclpy or a running graph: any object with the fields works, the real
sensor_msgs/Image and geometry_msgs/Twist included. Bad input raises InputError naming the
problem; the nodes log it, drop the message and keep serving.

Images (sensor_msgs/Image): rgb8, bgr8 and mono8 are read (grey is repeated to RGB), plus
mono16, the one supported encoding where `is_bigendian` matters (8-bit encodings have no byte
order, so the flag is ignored for them). Rows may be padded: `step` >= width * pixel bytes,
and `data` must hold exactly step * height bytes, as the message definition says.

Arm commands (geometry_msgs/Twist): (linear.x, linear.y, linear.z, angular.z) =
(vx, vy, vz, grip) of genie_robot.sim.world.ArmWorld, normalised to [-1, 1] (1 = the arm's
top speed, 0.2 m/s; +grip closes) in the arm base frame. The hand's orientation is held
fixed, so angular.x/y are unused; angular.z is where teleop tools put their turn key.
Clamp policy: finite values up to TWIST_LIMIT in magnitude are clipped to [-1, 1] (a
saturating controller, so teleop tools that send e.g. 1.5 still work); NaN, inf or anything
beyond TWIST_LIMIT is a malformed message and is refused.
"""
from __future__ import annotations

import math

import numpy as np

from genie_robot.errors import InputError

# encoding -> (channels, dtype of one channel)
ENCODINGS = {
    "rgb8": (3, np.uint8),
    "bgr8": (3, np.uint8),
    "mono8": (1, np.uint8),
    "mono16": (1, np.uint16),
}
TWIST_LIMIT = 10.0


def image_to_rgb(msg) -> np.ndarray:
    """A sensor_msgs/Image -> uint8 [H, W, 3] RGB (a copy; the message is not kept)."""
    encoding = str(msg.encoding).lower()
    if encoding not in ENCODINGS:
        raise InputError(f"image encoding {msg.encoding!r} is not supported; send one of {', '.join(ENCODINGS)}")
    channels, dtype = ENCODINGS[encoding]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    row_bytes = width * channels * np.dtype(dtype).itemsize
    if height <= 0 or width <= 0:
        raise InputError(f"image is {height}x{width}; height and width must be positive")
    if step < row_bytes:
        raise InputError(f"image step {step} is shorter than a {width}-pixel {encoding} row ({row_bytes} bytes)")
    data = np.frombuffer(msg.data, dtype=np.uint8)  # bytes, bytearray or array('B'): no copy
    if data.size != step * height:
        raise InputError(f"image data has {data.size} bytes but step * height = {step} * {height} = {step * height}")
    rows = data.reshape(height, step)[:, :row_bytes]
    if encoding == "mono16":
        big = bool(msg.is_bigendian)
        pixels = rows.copy().view(">u2" if big else "<u2")  # copy: the view needs contiguous rows
        return np.repeat((pixels >> 8).astype(np.uint8)[..., None], 3, axis=-1)
    pixels = rows.reshape(height, width, channels)
    if encoding == "bgr8":
        pixels = pixels[..., ::-1]
    elif encoding == "mono8":
        pixels = np.repeat(pixels, 3, axis=-1)
    return np.ascontiguousarray(pixels)


def to_image_fields(pixels, encoding: str = "rgb8", step: int | None = None) -> dict:
    """uint8 pixels -> the fields of a sensor_msgs/Image (all but the header), for
    `Image(header=..., **fields)`: [H, W, 3] RGB as rgb8 or bgr8, or [H, W] as mono8 (e.g.
    object ids). `step` longer than a row pads each row with zeros."""
    pixels = np.asarray(pixels)
    if encoding not in ("rgb8", "bgr8", "mono8"):
        raise InputError(f"images are written as rgb8, bgr8 or mono8, not {encoding!r}")
    shape = "[H, W]" if encoding == "mono8" else "[H, W, 3]"
    if pixels.dtype != np.uint8 or pixels.ndim != (2 if encoding == "mono8" else 3) or (
            encoding != "mono8" and pixels.shape[-1] != 3):
        raise InputError(f"{encoding} images need uint8 {shape} pixels, got {pixels.dtype} {list(pixels.shape)}")
    height, width = pixels.shape[:2]
    row_bytes = pixels[0].size
    step = row_bytes if step is None else step
    if step < row_bytes:
        raise InputError(f"step {step} is shorter than a {width}-pixel {encoding} row ({row_bytes} bytes)")
    if encoding == "bgr8":
        pixels = pixels[..., ::-1]
    rows = np.zeros((height, step), dtype=np.uint8)
    rows[:, :row_bytes] = pixels.reshape(height, row_bytes)
    return {"height": height, "width": width, "encoding": encoding, "is_bigendian": 0, "step": step,
            "data": rows.tobytes()}


def twist_to_command(msg, limit: float = TWIST_LIMIT) -> np.ndarray:
    """A geometry_msgs/Twist -> arm command float32 [vx, vy, vz, grip] in [-1, 1] (see the
    module docstring for the axes and the clamp policy)."""
    values = [msg.linear.x, msg.linear.y, msg.linear.z, msg.angular.z]
    if not all(math.isfinite(v) for v in values):
        raise InputError(f"arm command has NaN or inf: (linear.x, linear.y, linear.z, angular.z) = {values}")
    if max(abs(v) for v in values) > limit:
        raise InputError(f"arm command {values} exceeds {limit:g} in magnitude; commands are normalised "
                         "to [-1, 1] (1 = full speed), scale them before sending")
    return np.clip(np.array(values, dtype=np.float32), -1.0, 1.0)
