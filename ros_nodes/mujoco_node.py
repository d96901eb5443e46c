"""The MuJoCo arm world behind the world model node's interface, so a client can swap
physics for the learned model by changing a node name.

  ~/arm_command  (sub) geometry_msgs/Twist     hold this command for one 0.1 s frame
  ~/image        (pub) sensor_msgs/Image rgb8  the frame after each command (and each start)
  ~/masks        (pub) sensor_msgs/Image mono8 object ids of that frame (0 background,
                                               1 arm, 2 red cube, 3 blue cylinder, 4 soft cube),
                                               published just before the image, same stamp
  ~/reset        (srv) std_srvs/Trigger        restart from the layout of `seed`

One frame per command, made in the callback: a step and a render take milliseconds, and the
subscription's QoS depth bounds what waits. The start frame is published at start-up.
"""
from __future__ import annotations

from geometry_msgs.msg import Twist
from rclpy.node import Node
from sensor_msgs.msg import Image
from std_srvs.srv import Trigger

from genie_robot.errors import InputError
from ros_nodes.common import QOS_CHOICES, Param, declare_parameters, image_message, parameter_values, qos_profile, run
from ros_nodes.conversions import twist_to_command

PARAMETERS = [
    Param("seed", 0, "layout seed used by every reset (as the world model node's scene_seed)", 0, 2**31 - 1),
    Param("image_size", 64, "rendered frame size in pixels (square); match the world model's", 8, 512),
    Param("camera", "front", "MuJoCo camera", choices=("front", "top")),
    Param("qos", "reliable", "QoS of every topic", choices=QOS_CHOICES),
    Param("frame_id", "camera", "header.frame_id of published images"),
]


class MujocoNode(Node):
    def __init__(self, **kwargs):
        super().__init__("mujoco_sim", **kwargs)
        declare_parameters(self, PARAMETERS)
        self.p = parameter_values(self, PARAMETERS)
        from genie_robot.sim.world import ArmWorld

        self.world = ArmWorld()
        qos = qos_profile(self.p.qos)
        self.image_pub = self.create_publisher(Image, "~/image", qos)
        self.masks_pub = self.create_publisher(Image, "~/masks", qos)
        self.create_subscription(Twist, "~/arm_command", self._on_arm_command, qos)
        self.create_service(Trigger, "~/reset", self._on_reset)
        self.world.reset(self.p.seed)
        self._publish()

    def _publish(self) -> None:
        p, stamp = self.p, self.get_clock().now().to_msg()
        self.masks_pub.publish(image_message(self.world.masks(p.image_size, camera=p.camera), stamp, p.frame_id, "mono8"))
        self.image_pub.publish(image_message(self.world.render(p.image_size, camera=p.camera), stamp, p.frame_id))

    def _on_arm_command(self, msg: Twist) -> None:
        try:
            command = twist_to_command(msg)
        except InputError as exc:
            self.get_logger().warning(f"arm command dropped: {exc}", throttle_duration_sec=1.0)
            return
        self.world.step(command)
        self._publish()

    def _on_reset(self, request, response):
        self.world.reset(self.p.seed)
        self._publish()
        response.success, response.message = True, f"reset to the layout of seed {self.p.seed}"
        return response

    def destroy_node(self):
        self.world.close()
        return super().destroy_node()


def main(args=None) -> int:
    return run(MujocoNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
