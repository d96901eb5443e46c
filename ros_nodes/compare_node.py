"""Learned simulator vs physics, side by side: one command stream drives both, every frame
pair is scored, and everything goes into a rosbag2.

  ~/arm_command     (sub) geometry_msgs/Twist  commands to forward (drive = topic)
  ~/psnr            (pub) std_msgs/Float32     PSNR (dB) of the learned frame vs the physics one
  ~/mask_iou        (pub) std_msgs/Float32     mean object IoU (see `mean_object_iou`)
  <learned>/prompt, <learned>/arm_command, <physics>/arm_command, <physics>/reset  (driven)
  <learned>/image, <physics>/image, <physics>/masks                                (heard)

Lockstep: a reset calls the physics node's ~/reset, sends its start frame to the learned
node's ~/prompt and waits for the learned start frame (pair 0); then each command goes to both
and the next waits until both answered. A frame is taken only if stamped after the request it
answers (both sims stamp frames when they publish them, on the same clock), so stale or
start-up frames are never paired. A pair that does not complete within `step_timeout_s`
restarts the episode. The compare node should be the only one driving the two simulators.

The bag (rosbag2, sqlite3, in a new folder under `bag_dir`) holds both image streams, the
physics masks, the commands and both metrics, in CDR, readable by `ros2 bag` and `rosbags`.
"""
from __future__ import annotations

import time
from collections import deque
from pathlib import Path

import numpy as np
from geometry_msgs.msg import Twist
from rclpy.node import Node
from rclpy.serialization import serialize_message
from sensor_msgs.msg import Image
from std_msgs.msg import Float32
from std_srvs.srv import Trigger

from genie_robot.errors import InputError
from genie_robot.eval.metrics import psnr
from genie_robot.eval.physics import TRACKED, ColourSegmenter, mask_iou
from ros_nodes.common import QOS_CHOICES, Param, declare_parameters, parameter_values, qos_profile, run
from ros_nodes.conversions import image_to_rgb, twist_to_command

PARAMETERS = [
    Param("learned", "/world_model", "the world model node (its topics are <learned>/image, ...)"),
    Param("physics", "/mujoco_sim", "the MuJoCo node"),
    Param("drive", "random", "command source: topic (~/arm_command) or random (sticky random behaviours)",
          choices=("topic", "random")),
    Param("seed", 0, "seed of the random drive", 0, 2**31 - 1),
    Param("episode_length", 32, "commands per episode before both are reset; 0 = never", 0, 100000),
    Param("queue_size", 16, "most forwarded commands waiting (drive = topic)", 1, 10000),
    Param("step_timeout_s", 30.0, "longest wait for a frame pair before the episode restarts", 0.1, 3600.0),
    Param("bag_dir", "out/ros_bags", "folder for a new rosbag2 per run; empty = no bag"),
    Param("qos", "reliable", "QoS of every topic (match the two simulators)", choices=QOS_CHOICES),
]
BAG_TYPES = {Image: "sensor_msgs/msg/Image", Twist: "geometry_msgs/msg/Twist", Float32: "std_msgs/msg/Float32"}


def mean_object_iou(learned: np.ndarray, physics: np.ndarray, truth_masks: np.ndarray) -> float:
    """Mean IoU over the scene's objects between the true MuJoCo masks and the learned frame
    segmented by genie_robot.eval.physics.ColourSegmenter, fit on this step's physics frame
    under its true masks (so lighting and shading of this very view are absorbed). Objects in
    neither mask are left out; NaN when no object is visible at all."""
    predicted = ColourSegmenter.fit(physics, truth_masks)(learned)
    ious = np.array([mask_iou(predicted[None], truth_masks[None], i)[0] for i in TRACKED])
    return float(np.nanmean(ious)) if np.isfinite(ious).any() else float("nan")


def stamp_ns(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


class CompareNode(Node):
    def __init__(self, **kwargs):
        super().__init__("sim_compare", **kwargs)
        declare_parameters(self, PARAMETERS)
        p = self.p = parameter_values(self, PARAMETERS)
        from genie_robot.sim.controllers import RandomExplorer

        self.explorer = RandomExplorer(np.random.default_rng(p.seed))
        qos = qos_profile(p.qos)
        self.prompt_pub = self.create_publisher(Image, f"{p.learned}/prompt", qos)
        self.command_pubs = [self.create_publisher(Twist, f"{name}/arm_command", qos) for name in (p.learned, p.physics)]
        self.psnr_pub = self.create_publisher(Float32, "~/psnr", qos)
        self.iou_pub = self.create_publisher(Float32, "~/mask_iou", qos)
        self.reset_client = self.create_client(Trigger, f"{p.physics}/reset")
        self.create_subscription(Image, f"{p.learned}/image", lambda m: self._on_frame("learned", m), qos)
        self.create_subscription(Image, f"{p.physics}/image", lambda m: self._on_frame("physics", m), qos)
        self.create_subscription(Image, f"{p.physics}/masks", lambda m: self._on_frame("masks", m), qos)
        self.create_subscription(Twist, "~/arm_command", self._on_arm_command, qos)
        self.bag = self._open_bag(Path(p.bag_dir)) if p.bag_dir else None
        self.commands: deque[Twist] = deque()
        self.frames: dict[str, Image] = {}
        self.state, self.sent_ns, self.steps, self.pairs = "waiting_for_nodes", 0, 0, 0
        self.create_timer(0.01, self._on_tick)

    # ------------------------------------------------------------------ the lockstep
    def _on_tick(self) -> None:
        now = self.get_clock().now().nanoseconds
        if self.state == "waiting_for_nodes":
            if self.reset_client.service_is_ready() and self.prompt_pub.get_subscription_count() and all(
                    pub.get_subscription_count() for pub in self.command_pubs):
                self._reset()
        elif self.state != "ready":
            if now - self.sent_ns > self.p.step_timeout_s * 1e9:
                self.get_logger().warning(f"no frame pair within {self.p.step_timeout_s} s ({self.state}); "
                                          "restarting the episode")
                self._reset()
        elif self.p.episode_length and self.steps >= self.p.episode_length:
            self._reset()
        elif self.p.drive == "random" or self.commands:
            self._send(self._next_command())

    def _next_command(self) -> Twist:
        if self.p.drive == "topic":
            return self.commands.popleft()
        vx, vy, vz, grip = (float(v) for v in self.explorer(None))  # RandomExplorer ignores its world argument
        msg = Twist()
        msg.linear.x, msg.linear.y, msg.linear.z, msg.angular.z = vx, vy, vz, grip
        return msg

    def _await(self, state: str) -> None:
        self.state, self.sent_ns, self.frames = state, self.get_clock().now().nanoseconds, {}

    def _reset(self) -> None:
        self._await("physics_start")
        self.reset_client.call_async(Trigger.Request())

    def _send(self, command: Twist) -> None:
        self._await("step")
        for pub in self.command_pubs:
            pub.publish(command)
        self._write(f"{self.p.physics}/arm_command", command, self.sent_ns)

    def _on_frame(self, kind: str, msg: Image) -> None:
        if self.state not in ("physics_start", "learned_start", "step") or stamp_ns(msg) < self.sent_ns:
            return  # a stale or start-up frame that answers no request of ours
        if kind == "learned" and self.state == "physics_start":
            return
        self.frames[kind] = msg
        if self.state == "physics_start" and {"physics", "masks"} <= self.frames.keys():
            physics, masks = self.frames["physics"], self.frames["masks"]
            self._await("learned_start")
            self.frames = {"physics": physics, "masks": masks}
            self.prompt_pub.publish(physics)
        elif self.state in ("learned_start", "step") and len(self.frames) == 3:
            self._score(self.frames)
            self.steps = 0 if self.state == "learned_start" else self.steps + 1
            self.state = "ready"

    def _on_arm_command(self, msg: Twist) -> None:
        try:
            twist_to_command(msg)  # refuse what the simulators would refuse, before it is forwarded
        except InputError as exc:
            self.get_logger().warning(f"arm command dropped: {exc}", throttle_duration_sec=1.0)
            return
        if len(self.commands) >= self.p.queue_size:
            self.get_logger().warning(f"arm command dropped: {self.p.queue_size} commands already wait",
                                      throttle_duration_sec=1.0)
            return
        self.commands.append(msg)

    # ------------------------------------------------------------------ scoring and the bag
    def _score(self, frames: dict[str, Image]) -> None:
        learned, physics = image_to_rgb(frames["learned"]), image_to_rgb(frames["physics"])
        truth_masks = image_to_rgb(frames["masks"])[..., 0]
        if learned.shape != physics.shape:
            self.get_logger().warning(f"frame sizes differ (learned {learned.shape[:2]}, physics {physics.shape[:2]}): "
                                      "not scored; set the MuJoCo node's image_size to the model's",
                                      throttle_duration_sec=10.0)
            return
        metrics = {"psnr": float(psnr(learned, physics)),
                   "mask_iou": mean_object_iou(learned, physics, truth_masks)}
        now = self.get_clock().now().nanoseconds
        for (_name, value), pub in zip(metrics.items(), (self.psnr_pub, self.iou_pub)):
            msg = Float32(data=value)
            pub.publish(msg)
            self._write(pub.topic_name, msg, now)
        for topic, msg in ((f"{self.p.learned}/image", frames["learned"]), (f"{self.p.physics}/image", frames["physics"]),
                           (f"{self.p.physics}/masks", frames["masks"])):
            self._write(topic, msg, stamp_ns(msg))
        self.pairs += 1
        if self.pairs % 50 == 1:
            self.get_logger().info(f"pair {self.pairs}: PSNR {metrics['psnr']:.1f} dB, mask IoU {metrics['mask_iou']:.2f}")

    def _open_bag(self, bag_dir: Path):
        from rosbags.rosbag2 import Writer
        from rosbags.typesys import Stores, get_typestore

        path = bag_dir / time.strftime("compare_%Y%m%d_%H%M%S")
        path.parent.mkdir(parents=True, exist_ok=True)
        bag = Writer(path, version=9)
        bag.open()
        self.bag_path, self.connections = path, {}
        self.typestore = get_typestore(Stores.ROS2_KILTED)
        self.get_logger().info(f"recording to {path}")
        return bag

    def _write(self, topic: str, msg, stamp: int) -> None:
        if self.bag is None:
            return
        if topic not in self.connections:
            self.connections[topic] = self.bag.add_connection(topic, BAG_TYPES[type(msg)], typestore=self.typestore)
        self.bag.write(self.connections[topic], stamp, serialize_message(msg))

    def destroy_node(self):
        if self.bag is not None:
            self.bag.close()  # writes metadata.yaml: without it the bag is unreadable
            self.bag = None
        return super().destroy_node()


def main(args=None) -> int:
    return run(CompareNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
