"""What the three nodes share: declared, checked and documented parameters, the QoS choice,
frame -> sensor_msgs/Image, and the body of a standard main()."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import rclpy
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import Image

from ros_nodes.conversions import to_image_fields

QOS_CHOICES = ("reliable", "sensor_data")


@dataclass(frozen=True)
class Param:
    """One node parameter: rclpy enforces the range, the node's callback the choices."""

    name: str
    default: object
    description: str
    low: float | None = None
    high: float | None = None
    choices: tuple = ()


def declare_parameters(node, params: list[Param]) -> None:
    by_name = {p.name: p for p in params}

    def check_choices(changes) -> SetParametersResult:
        for change in changes:
            spec = by_name.get(change.name)
            if spec and spec.choices and change.value not in spec.choices:
                return SetParametersResult(successful=False, reason=(
                    f"{change.name} must be one of {', '.join(map(str, spec.choices))}, got {change.value!r}"))
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(check_choices)  # before declaring, so overrides are checked too
    for p in params:
        descriptor = ParameterDescriptor(description=p.description)
        if p.choices:
            descriptor.additional_constraints = f"one of: {', '.join(map(str, p.choices))}"
        if p.low is not None:
            if isinstance(p.default, int):
                descriptor.integer_range = [IntegerRange(from_value=int(p.low), to_value=int(p.high), step=1)]
            else:
                descriptor.floating_point_range = [FloatingPointRange(from_value=float(p.low), to_value=float(p.high))]
        node.declare_parameter(p.name, p.default, descriptor)


def parameter_values(node, params: list[Param]) -> SimpleNamespace:
    return SimpleNamespace(**{p.name: node.get_parameter(p.name).value for p in params})


def qos_profile(name: str) -> QoSProfile:
    """`reliable`: every message arrives (depth 10). `sensor_data`: best effort, newest 5 kept;
    a client subscribing with RELIABLE hears nothing from a best-effort publisher."""
    return qos_profile_sensor_data if name == "sensor_data" else QoSProfile(depth=10)


def image_message(pixels: np.ndarray, stamp, frame_id: str, encoding: str = "rgb8") -> Image:
    msg = Image(**to_image_fields(pixels, encoding))
    msg.header.stamp, msg.header.frame_id = stamp, frame_id
    return msg


def run(make_node, args=None, start=None) -> int:
    """Init rclpy, build the node (bad parameter values end here with one line and exit 2),
    optionally `start(node)`, spin until Ctrl-C or shutdown, then clean up."""
    rclpy.init(args=args)
    try:
        node = make_node()
    except ParameterException as exc:
        print(f"error: {exc}; fix the parameter (YAML file or -p name:=value)", file=sys.stderr)
        rclpy.try_shutdown()
        return 2
    try:
        if start is not None:
            start(node)
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        if rclpy.ok():
            raise
        # else a callback hit the context that Ctrl-C / SIGTERM had just shut down: not a failure
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
