"""An external ROS 2 client for the node tests, run as its own process inside the tests'
network namespace: `python client.py '<json list of operations>'` prints one JSON list of
results. Each operation is [name, node, *args]; frames come back as small summaries."""
from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time

import numpy as np
import rclpy
from geometry_msgs.msg import Twist, Vector3
from lifecycle_msgs.srv import ChangeState, GetState
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import GetParameters, SetParameters
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image
from std_msgs.msg import Float32, Float32MultiArray, Int32, Int32MultiArray
from std_srvs.srv import Trigger

SIM_SERVICES = {  # simulation_interfaces: service name -> type name
    "get_simulator_features": "GetSimulatorFeatures", "reset_simulation": "ResetSimulation",
    "get_simulation_state": "GetSimulationState", "set_simulation_state": "SetSimulationState",
    "step_simulation": "StepSimulation", "get_entities": "GetEntities", "get_entity_state": "GetEntityState",
    "get_entities_states": "GetEntitiesStates", "set_entity_state": "SetEntityState",
    "get_entity_info": "GetEntityInfo", "get_entity_bounds": "GetEntityBounds"}

READY_S = 40.0  # a node under test may still be loading its model
FRAME_S = 10.0


def seconds(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def summary(msg: Image) -> dict:
    return {"height": msg.height, "width": msg.width, "encoding": msg.encoding, "frame_id": msg.header.frame_id,
            "digest": hashlib.sha1(bytes(msg.data)).hexdigest()[:12], "mean": float(np.mean(msg.data)),
            "stamp": seconds(msg.header.stamp)}


def vector(values) -> dict:
    """JSON numbers (or "nan" / "inf" strings) as x, y, z[, w] fields."""
    return dict(zip("xyzw", (float(v) for v in values)))


def entity_state(state) -> dict:
    p, o, t = state.pose.position, state.pose.orientation, state.twist
    return {"position": [p.x, p.y, p.z], "orientation": [o.x, o.y, o.z, o.w], "linear": [t.linear.x, t.linear.y, t.linear.z],
            "angular": [t.angular.x, t.angular.y, t.angular.z], "frame_id": state.header.frame_id,
            "stamp": seconds(state.header.stamp)}


class Client:
    def __init__(self):
        self.node = rclpy.create_node("test_client")
        self.images: dict[str, list[Image]] = {}
        self.publishers, self.clients = {}, {}
        self.clocks: dict[str, list[float]] = {}  # clock topic -> its times, as they come

    def spin_until(self, condition, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while not condition() and time.monotonic() < end:
            rclpy.spin_once(self.node, timeout_sec=0.02)
        return condition()

    def publisher(self, topic: str, msg_type):
        if topic not in self.publishers:
            self.publishers[topic] = pub = self.node.create_publisher(msg_type, topic, 10)
            if not self.spin_until(lambda: pub.get_subscription_count() > 0, READY_S):
                raise TimeoutError(f"nobody subscribes to {topic}")
        return self.publishers[topic]

    def frames(self, node: str) -> list[Image]:
        topic = f"{node}/image"
        if topic not in self.images:
            self.images[topic] = received = []
            self.node.create_subscription(Image, topic, received.append, 10)
            if not self.spin_until(lambda: self.node.count_publishers(topic) > 0, READY_S):
                raise TimeoutError(f"nobody publishes {topic}")
        return self.images[topic]

    def next_frame(self, node: str, send, timeout: float = FRAME_S) -> dict | None:
        """Send something, then wait for the node's next frame (None if none comes)."""
        frames = self.frames(node)
        self.spin_until(lambda: False, 0.05)  # take in frames already under way
        before = len(frames)
        send()
        return summary(frames[-1]) if self.spin_until(lambda: len(frames) > before, timeout) else None

    def call(self, srv_type, name: str, request):
        if name not in self.clients:
            self.clients[name] = self.node.create_client(srv_type, name)
        client = self.clients[name]
        if not client.wait_for_service(timeout_sec=READY_S):
            raise TimeoutError(f"service {name} is not there")
        future = client.call_async(request)
        rclpy.spin_until_future_complete(self.node, future, timeout_sec=READY_S)
        return future.result()

    # ------------------------------------------------------------------ operations
    def action(self, node, action, timeout=FRAME_S):
        pub = self.publisher(f"{node}/latent_action", Int32)
        return self.next_frame(node, lambda: pub.publish(Int32(data=action)), timeout)

    def twist(self, node, values, timeout=FRAME_S):
        pub = self.publisher(f"{node}/arm_command", Twist)
        msg = Twist()
        msg.linear.x, msg.linear.y, msg.linear.z, msg.angular.z = (float(v) for v in values)
        return self.next_frame(node, lambda: pub.publish(msg), timeout)

    def prompt(self, node, fields, timeout=FRAME_S):
        """fields: height, width, encoding, step, is_bigendian, fill (one byte value) and
        optionally data_bytes (to send a wrong length)."""
        pub = self.publisher(f"{node}/prompt", Image)
        msg = Image(height=fields["height"], width=fields["width"], encoding=fields["encoding"],
                    step=fields["step"], is_bigendian=fields.get("is_bigendian", 0))
        size = fields.get("data_bytes", fields["step"] * fields["height"])
        msg.data = bytes([fields.get("fill", 128)]) * size
        return self.next_frame(node, lambda: pub.publish(msg), timeout)

    def goal(self, node, fields, timeout=60.0):
        """Send a goal image (fields as for `prompt`); the plan that comes back on ~/plan and
        ~/plan_commands as {"latents", "commands", "dims"}, or None."""
        got = {}
        self.node.create_subscription(Int32MultiArray, f"{node}/plan", lambda m: got.update(latents=list(m.data)), 10)
        self.node.create_subscription(Float32MultiArray, f"{node}/plan_commands", lambda m: got.update(
            commands=[round(v, 4) for v in m.data], dims=[(d.label, d.size) for d in m.layout.dim]), 10)
        pub = self.publisher(f"{node}/goal", Image)
        msg = Image(height=fields["height"], width=fields["width"], encoding=fields["encoding"], step=fields["step"])
        msg.data = bytes([fields.get("fill", 128)]) * (fields["step"] * fields["height"])
        pub.publish(msg)
        return got if self.spin_until(lambda: len(got) == 3, timeout) else None

    def reset(self, node):
        result = {}

        def send():
            response = self.call(Trigger, f"{node}/reset", Trigger.Request())
            result.update(success=response.success, message=response.message)

        result["frame"] = self.next_frame(node, send)
        return result

    def flood(self, node, count, seconds):
        """`count` latent actions spread over `seconds`, not waiting for frames."""
        pub, frames = self.publisher(f"{node}/latent_action", Int32), self.frames(node)
        before, start = len(frames), time.monotonic()
        for i in range(count):
            pub.publish(Int32(data=i % 4))
            rclpy.spin_once(self.node, timeout_sec=0)
            time.sleep(max(0.0, start + seconds * (i + 1) / count - time.monotonic()))
        return {"sent": count, "frames_meanwhile": len(frames) - before, "seconds": time.monotonic() - start}

    def params(self, node, names):
        response = self.call(GetParameters, f"{node}/get_parameters", GetParameters.Request(names=names))
        fields = {ParameterType.PARAMETER_BOOL: "bool_value", ParameterType.PARAMETER_INTEGER: "integer_value",
                  ParameterType.PARAMETER_DOUBLE: "double_value", ParameterType.PARAMETER_STRING: "string_value"}
        return {name: getattr(v, fields[v.type]) if v.type in fields else None for name, v in zip(names, response.values)}

    def set_string_param(self, node, name, value):
        param = Parameter(name=name, value=ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=value))
        response = self.call(SetParameters, f"{node}/set_parameters", SetParameters.Request(parameters=[param]))
        return response.results[0].successful

    def lifecycle(self, node, transition_id):
        request = ChangeState.Request()
        request.transition.id = transition_id
        return self.call(ChangeState, f"{node}/change_state", request).success

    def state(self, node):
        return self.call(GetState, f"{node}/get_state", GetState.Request()).current_state.label

    # ------------------------------------------------------------------ simulation_interfaces
    def _sim_request(self, service, fields):
        """fields: the request's own scalars, and state (a SimulationState or, for
        SetEntityState, {position, orientation (x, y, z, w), linear, angular, frame_id}),
        filters {filter, categories, tags, mode, bounds: [type, [[x, y, z], ...]]}."""
        import simulation_interfaces.msg as msg
        import simulation_interfaces.srv as srv

        kind = getattr(srv, SIM_SERVICES[service])
        request = kind.Request()
        for key, value in fields.items():
            if key == "state" and isinstance(value, dict):
                state = request.state
                state.header.frame_id = value.get("frame_id", "")
                for target, field in ((state.pose.position, "position"), (state.pose.orientation, "orientation"),
                                      (state.twist.linear, "linear"), (state.twist.angular, "angular")):
                    for axis, number in vector(value.get(field, [0, 0, 0, 1][: 4 if field == "orientation" else 3])).items():
                        setattr(target, axis, number)
            elif key == "state":
                request.state.state = value
            elif key == "filters":
                filters = request.filters
                filters.filter = value.get("filter", "")
                filters.categories = [msg.EntityCategory(category=c) for c in value.get("categories", [])]
                filters.tags.tags, filters.tags.filter_mode = value.get("tags", []), value.get("mode", 0)
                if "bounds" in value:
                    kind_, points = value["bounds"]
                    filters.bounds.type = kind_
                    filters.bounds.points = [Vector3(**vector(point)) for point in points]
            else:
                setattr(request, key, value)
        return kind, request

    @staticmethod
    def _sim_response(response) -> dict:
        out = {}
        if hasattr(response, "result"):
            out.update(result=response.result.result, message=response.result.error_message)
        if hasattr(response, "state"):
            out["state"] = entity_state(response.state) if hasattr(response.state, "pose") else response.state.state
        if hasattr(response, "features"):
            out.update(features=list(response.features.features), info=response.features.custom_info)
        if hasattr(response, "entities"):
            out["entities"] = list(response.entities)
        if hasattr(response, "states"):
            out["states"] = [entity_state(state) for state in response.states]
        if hasattr(response, "info") and hasattr(response.info, "tags"):
            out["info"] = {"category": response.info.category.category, "tags": list(response.info.tags),
                           "description": response.info.description}
        if hasattr(response, "bounds"):
            out["bounds"] = {"type": response.bounds.type, "points": [[p.x, p.y, p.z] for p in response.bounds.points]}
        return out

    def sim(self, node, service, fields=None):
        """One simulation_interfaces call; {"result", "message", ("state" | "features", "info")}
        and the frames the node published while it ran."""
        kind, request = self._sim_request(service, fields or {})
        frames = self.frames(node)
        before = len(frames)
        out = self._sim_response(self.call(kind, f"{node}/{service}", request))
        self.spin_until(lambda: False, 0.3)  # frames published just before the answer
        return {**out, "frames": len(frames) - before}

    def sim_concurrent(self, node, calls):
        """Every [service, fields] call sent at once, then all answers awaited."""
        futures = []
        for service, fields in calls:
            kind, request = self._sim_request(service, fields)
            name = f"{node}/{service}"
            if name not in self.clients:
                self.clients[name] = self.node.create_client(kind, name)
                self.clients[name].wait_for_service(timeout_sec=READY_S)
            futures.append(self.clients[name].call_async(request))
        self.spin_until(lambda: all(f.done() for f in futures), 120)
        return [self._sim_response(f.result()) if f.done() else None for f in futures]

    def simulate_steps(self, node, steps, cancel_after=None, vanish_after=None):
        """A SimulateSteps goal: {"accepted", "feedback" (completed_steps seen), "status",
        "result"}. cancel_after: cancel once that many feedbacks came. vanish_after: exit this
        process without a word once that many came (a client that disconnects mid-goal)."""
        from action_msgs.msg import GoalStatus
        from rclpy.action import ActionClient
        from simulation_interfaces.action import SimulateSteps

        client = ActionClient(self.node, SimulateSteps, f"{node}/simulate_steps")
        if not client.wait_for_server(timeout_sec=READY_S):
            raise TimeoutError(f"action {node}/simulate_steps is not there")
        feedback = []
        sent = client.send_goal_async(SimulateSteps.Goal(steps=steps), feedback_callback=lambda m: feedback.append(
            m.feedback.completed_steps))
        self.spin_until(sent.done, READY_S)
        handle = sent.result()
        if not handle.accepted:
            return {"accepted": False}
        if vanish_after is not None:
            self.spin_until(lambda: len(feedback) >= vanish_after, 60)
            print(json.dumps([{"vanished_after": len(feedback)}]), flush=True)
            os._exit(0)
        if cancel_after is not None:
            self.spin_until(lambda: len(feedback) >= cancel_after, 60)
            cancel = handle.cancel_goal_async()
            self.spin_until(cancel.done, 30)
        result = handle.get_result_async()
        self.spin_until(result.done, 120)
        status = {GoalStatus.STATUS_SUCCEEDED: "succeeded", GoalStatus.STATUS_CANCELED: "canceled",
                  GoalStatus.STATUS_ABORTED: "aborted"}.get(result.result().status, result.result().status)
        return {"accepted": True, "feedback": feedback, "status": status,
                "result": result.result().result.result.result, "message": result.result().result.result.error_message}

    def services(self, node):
        """The names of the services `node` offers, without its namespace prefix."""
        namespace, name = node.rsplit("/", 1)
        self.spin_until(lambda: False, 0.5)  # let discovery catch up
        return sorted(s.removeprefix(f"{node}/") for s, _ in
                      self.node.get_service_names_and_types_by_node(name, namespace or "/"))

    def clock_now(self, topic="/clock"):
        """The latest time on a rosgraph_msgs/Clock topic (None before any): the first call
        subscribes (and waits for a publisher), later ones read what came since."""
        if topic not in self.clocks:
            self.clocks[topic] = times = []
            self.node.create_subscription(Clock, topic, lambda m: times.append(seconds(m.clock)), 10)
            if not self.spin_until(lambda: self.node.count_publishers(topic) > 0, READY_S):
                raise TimeoutError(f"nobody publishes {topic}")
        self.spin_until(lambda: False, 0.3)
        return self.clocks[topic][-1] if self.clocks[topic] else None

    def listen(self, topic, count, timeout):
        """Values of the first `count` std_msgs/Float32 on `topic` (NaN as None)."""
        values = []
        self.node.create_subscription(Float32, topic, lambda m: values.append(m.data), 10)
        self.spin_until(lambda: len(values) >= count, timeout)
        return [None if math.isnan(v) else v for v in values[:count]]


def main() -> None:
    rclpy.init()
    client = Client()
    results = [getattr(client, op[0])(*op[1:]) for op in json.loads(sys.argv[1])]
    print(json.dumps(results))
    client.node.destroy_node()
    rclpy.shutdown()


if __name__ == "__main__":
    main()
