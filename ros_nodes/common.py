"""What the three nodes share: declared, checked and documented parameters, the QoS choice,
frame -> sensor_msgs/Image, and the body of a standard main()."""
from __future__ import annotations

import signal
import sys
import threading
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import rclpy
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from rclpy.signals import SignalHandlerOptions
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


def run(make_node, args=None, start=None, threads: int = 1) -> int:
    """Init rclpy, build the node (bad parameter values end here with one line and exit 2),
    optionally `start(node)`, spin until SIGINT/SIGTERM or shutdown, then clean up.

    The signals only set a flag that the spin loop reads between callbacks: rclpy's own
    handlers would shut the context down from another thread and raise KeyboardInterrupt
    wherever the main thread happens to be, half-way through a callback or executor internals,
    which made clean exits racy. Here every callback runs to its end and the exit is 0.
    `threads` > 1 spins a multi-threaded executor: callbacks of a node's default group still
    run one at a time, only groups the node makes reentrant run beside them."""
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    try:
        node = make_node()
    except ParameterException as exc:
        print(f"error: {exc}; fix the parameter (YAML file or -p name:=value)", file=sys.stderr)
        rclpy.try_shutdown()
        return 2
    executor = MultiThreadedExecutor(num_threads=threads) if threads > 1 else SingleThreadedExecutor()
    try:
        executor.add_node(node)
        if start is not None:
            start(node)
        while not stopping.is_set() and rclpy.ok():
            executor.spin_once(timeout_sec=0.1)
    except ExternalShutdownException:
        pass
    finally:
        if hasattr(node, "request_stop"):  # lets a node end work that holds executor threads
            node.request_stop()
        executor.shutdown(timeout_sec=10)
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
