"""The MuJoCo arm world behind the world model node's interface, so a client can swap
physics for the learned model by changing a node name.

  ~/arm_command  (sub) geometry_msgs/Twist     hold this command for one 0.2 s frame
  ~/image        (pub) sensor_msgs/Image rgb8  the frame after each command (and each start)
  ~/masks        (pub) sensor_msgs/Image mono8 object ids of that frame (0 background,
                                               1 arm, 2 red cube, 3 blue cylinder, 4 soft cube),
                                               published just before the image, same stamp
  ~/reset        (srv) std_srvs/Trigger        restart from the layout of `seed` (and time 0)
  /clock         (pub) rosgraph_msgs/Clock     simulation time: 0.2 s per frame since the last
                                               time reset; with use_sim_time:=true images, masks
                                               and entity states are stamped with it (else with
                                               wall time, as the comparison node pairs frames)
  ~/reset_simulation, ~/step_simulation, ... and ~/simulate_steps: ROS 2 simulation_interfaces
                                               (ros_nodes/simulation.py); paused, commands
                                               wait (queue_size) and a step with none holds still
  ~/get_entities, ~/get_entity_state, ~/set_entity_state, ...: the arm (tag arm), the red
                                               cube and blue cylinder (rigid), the soft cube
                                               (soft), in the world frame (MuJoCo's, z up, the
                                               table top at z = 0)

One frame per command, made in the callback: a step and a render take milliseconds, and the
subscription's QoS depth bounds what waits. The start frame is published at start-up.
Everything runs in the executor's one thread (MuJoCo's OpenGL context belongs to it), the
simulation_interfaces services too: a SimulateSteps goal runs to its end (about 3 ms a step at
64 px) before the next callback, so a cancel lands between goals, and a SetEntityState lands
between frames (the next frame shows it).
"""
from __future__ import annotations

from collections import deque

import numpy as np
from geometry_msgs.msg import Twist
from rclpy.node import Node
from sensor_msgs.msg import Image
from simulation_interfaces.msg import EntityCategory
from std_srvs.srv import Trigger

from genie_robot.errors import InputError
from genie_robot.sim.scene import CAMERAS, DEFAULT_CAMERA
from ros_nodes.common import QOS_CHOICES, Param, declare_parameters, image_message, parameter_values, qos_profile, run
from ros_nodes.conversions import twist_to_command
from ros_nodes.simulation import Entities, Entity, SimulationClock, SimulationControl

PARAMETERS = [
    Param("seed", 0, "layout seed used by every reset (as the world model node's scene_seed)", 0, 2**31 - 1),
    Param("image_size", 64, "rendered frame size in pixels (square); match the world model's", 8, 512),
    Param("camera", DEFAULT_CAMERA, "MuJoCo camera", choices=CAMERAS),
    Param("qos", "reliable", "QoS of every topic", choices=QOS_CHOICES),
    Param("frame_id", "camera", "header.frame_id of published images"),
    Param("queue_size", 16, "most commands waiting for steps while the simulation is paused", 1, 10000),
]
HOLD = np.zeros(4, np.float32)  # a step with no waiting command: the arm holds still
# GetEntityInfo's description of each kind of scene object (its tag).
DESCRIPTIONS = {
    "arm": "Kinova Jaco arm with a 3-finger hand; its base is fixed at the world origin (SetEntityState refuses "
           "it): move the hand with ~/arm_command",
    "rigid": "rigid {name} (6 cm, 80 g) on the table, free to slide, tip and be pushed",
    "soft": "deformable {name} (8 cm, MuJoCo flex on 8 nodes); its pose is the nodes' centroid and best-fit "
            "rotation from the compiled shape, and setting it moves every node by one rigid motion",
}


def scene_entities() -> dict[str, Entity]:
    """The scene's objects as simulation_interfaces entities, tagged by kind."""
    from genie_robot.sim.scene import OBJECTS

    return {o.name: Entity(EntityCategory.CATEGORY_ROBOT if o.kind == "arm" else EntityCategory.CATEGORY_OBJECT,
                           (o.kind,), DESCRIPTIONS[o.kind].format(name=o.name.replace("_", " "))) for o in OBJECTS}


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
        self._waiting: deque[np.ndarray] = deque()
        self._paused = self._stopped = False
        self.clock = SimulationClock(self, self.world.frame_dt)
        self.simulation = SimulationControl(self, self._restart, self._step_waiting, self._set_paused,
                                            "genie-robot MuJoCo arm world (Kinova Jaco, 2 rigid objects, a soft "
                                            f"cube): one {self.world.frame_dt:g} s frame per step",
                                            clock=self.clock, entities=Entities(scene_entities(), self.world))
        self._restart()

    def _publish(self) -> None:
        p, stamp = self.p, self.clock.stamp()
        self.masks_pub.publish(image_message(self.world.masks(p.image_size, camera=p.camera), stamp, p.frame_id, "mono8"))
        self.image_pub.publish(image_message(self.world.render(p.image_size, camera=p.camera), stamp, p.frame_id))

    def _on_arm_command(self, msg: Twist) -> None:
        try:
            command = twist_to_command(msg)
        except InputError as exc:
            self.get_logger().warning(f"arm command dropped: {exc}", throttle_duration_sec=1.0)
            return
        if self._stopped:
            self.get_logger().warning("arm command dropped: the simulation is STOPPED (set PLAYING)",
                                      throttle_duration_sec=1.0)
        elif not self._paused:
            self._step(command)
        elif len(self._waiting) >= self.p.queue_size:
            self.get_logger().warning(f"arm command dropped: {self.p.queue_size} commands already wait for steps "
                                      "(queue_size)", throttle_duration_sec=1.0)
        else:
            self._waiting.append(command)

    def _step(self, command: np.ndarray) -> None:
        self.world.step(command)
        self.clock.advance()
        self._publish()

    def _step_waiting(self) -> bool:
        self._step(self._waiting.popleft() if self._waiting else HOLD)
        return True

    def _set_paused(self, paused: bool, stopped: bool) -> None:
        self._paused, self._stopped = paused, stopped
        if not paused or stopped:
            self._waiting.clear()

    def _restart(self) -> None:
        self._waiting.clear()
        self.world.reset(self.p.seed)
        self._publish()

    def _on_reset(self, request, response):
        self.simulation.reset()
        response.success, response.message = True, f"reset to the layout of seed {self.p.seed}"
        return response

    def destroy_node(self):
        self.simulation.destroy()
        self.world.close()
        return super().destroy_node()


def main(args=None) -> int:
    return run(MujocoNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
