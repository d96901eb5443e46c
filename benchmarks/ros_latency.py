"""Action -> image latency through ROS 2 (p50/p95) against the bare `session.step`, and the
frame rate the world model node sustains when actions never run out.

Interleaved: step i is timed bare (a session in this process) and then through ROS (the node's
session, same MaskGIT steps, same history), one after the other, so both see the same machine
load; the overhead of ROS is the per-step difference. OpenMP waits passively (an environment
OMP_WAIT_POLICY overrides it), so neither process's idle workers spin on the other's cores.

Usage: python benchmarks/ros_latency.py [--preset small] [--maskgit-steps 8] [--steps 20] [--seconds 8]
Untrained weights (timing does not depend on them). The node runs as its own process and the
client here talks to it over Fast DDS, both inside a loopback-only network namespace
(`unshare -rn`) when one can be made. Latency: publish a latent action, wait for the frame.
Sustained rate: keep `--depth` actions in flight (one sent per frame received)."""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from genie_robot.cli import Names

REPO = Path(__file__).resolve().parents[1]


def percentiles(ms: list[float]) -> str:
    q = statistics.quantiles(ms, n=20)
    return f"p50 {statistics.median(ms):6.1f} ms  p95 {q[18]:6.1f} ms"


def make_run(preset: str, folder: Path) -> None:
    import torch

    from genie_robot.models import MODELS
    from genie_robot.models.checkpoint import save_model

    torch.manual_seed(0)
    for kind in ("tokenizer", "lam", "dynamics"):
        config_cls, model_cls = MODELS[kind]
        save_model(model_cls(config_cls.preset(preset)), folder / kind)


def bare_session(run: Path, maskgit_steps: int):
    """A session like the node's (same prompt, sampling and memory) in this process."""
    from genie_robot.models.run import Run
    from genie_robot.sampling import SamplingConfig
    from ros_nodes.world_model_node import scene_frame

    wm = Run.load(run).world_model()
    return wm.start(scene_frame(0, wm.image_size), sampling=SamplingConfig(steps=maskgit_steps))


def timed_ms(fn) -> float:
    began = time.perf_counter()
    fn()
    return 1000 * (time.perf_counter() - began)


def through_ros(run: Path, maskgit_steps: int, steps: int, seconds: float, depth: int) -> None:
    """Runs inside the namespace: start the node, then measure as its client."""
    import rclpy
    from sensor_msgs.msg import Image
    from std_msgs.msg import Int32
    from std_srvs.srv import Trigger

    node = subprocess.Popen([sys.executable, "-m", "ros_nodes.world_model_node", "--ros-args", "-p",
                             f"checkpoint:={run}", "-p", f"maskgit_steps:={maskgit_steps}", "-p", "queue_size:=64",
                             "--log-level", "error"], cwd=REPO)
    try:
        rclpy.init()
        client = rclpy.create_node("latency_client")
        arrivals: list[float] = []
        client.create_subscription(Image, "/world_model/image", lambda m: arrivals.append(time.perf_counter()), 10)
        actions = client.create_publisher(Int32, "/world_model/latent_action", 10)
        reset = client.create_client(Trigger, "/world_model/reset")

        def spin_until(condition, timeout=60.0):
            end = time.monotonic() + timeout
            while not condition() and time.monotonic() < end:
                rclpy.spin_once(client, timeout_sec=0.05)  # returns when a message arrives; no busy polling
            if not condition():
                raise TimeoutError("the node did not answer; is it running? (see its log above)")

        spin_until(lambda: reset.service_is_ready() and actions.get_subscription_count() > 0, 120.0)

        def restart():
            """Reset the node to its start frame, then wait until frames stop coming: a frame the
            node published before (its activation frame can arrive late) would otherwise be
            taken for the answer to the next action, and every latency would be one frame off."""
            before = len(arrivals)
            rclpy.spin_until_future_complete(client, reset.call_async(Trigger.Request()))
            spin_until(lambda before=before: len(arrivals) > before)
            quiet_since, seen = time.monotonic(), len(arrivals)
            while time.monotonic() - quiet_since < 1.0:
                rclpy.spin_once(client, timeout_sec=0.05)
                if len(arrivals) != seen:
                    quiet_since, seen = time.monotonic(), len(arrivals)

        restart()
        bare, latencies = bare_session(run, maskgit_steps), []
        bare_ms = []
        for i in range(steps):
            bare_ms.append(timed_ms(lambda i=i: bare.step(i % 8)))
            before, sent = len(arrivals), time.perf_counter()
            actions.publish(Int32(data=i % 8))
            spin_until(lambda before=before: len(arrivals) > before)
            latencies.append(1000 * (arrivals[before] - sent))
            if len(arrivals) != before + 1:
                raise RuntimeError(f"expected one frame per action, got {len(arrivals) - before}; latencies would be off")
        print(f"bare session.step {percentiles(bare_ms)}   ({1000 / statistics.median(bare_ms):.1f} frames/s)")
        print(f"through ROS 2     {percentiles(latencies)}   (publish -> frame received, {steps} steps)")
        print(f"ROS overhead      {percentiles([r - b for r, b in zip(latencies, bare_ms)])}   "
              "(per step: through ROS minus bare, interleaved)")

        restart()
        before, began = len(arrivals), time.perf_counter()
        for i in range(depth):
            actions.publish(Int32(data=i % 8))
        sent = depth
        while time.perf_counter() - began < seconds:
            rclpy.spin_once(client, timeout_sec=0.01)
            while sent < len(arrivals) - before + depth:
                actions.publish(Int32(data=sent % 8))
                sent += 1
        frames = len(arrivals) - before
        print(f"sustained         {frames / (time.perf_counter() - began):6.1f} frames/s   "
              f"({frames} frames in {seconds:.0f} s, {depth} actions in flight)")
        client.destroy_node()
        rclpy.shutdown()
    finally:
        node.send_signal(2)
        node.wait(timeout=20)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", default="small", choices=Names("genie_robot.models", "DynamicsConfig.presets"))
    parser.add_argument("--maskgit-steps", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20, help="steps timed for latency")
    parser.add_argument("--seconds", type=float, default=8.0, help="duration of the sustained-rate run")
    parser.add_argument("--depth", type=int, default=4, help="actions in flight for the sustained rate")
    parser.add_argument("--quick", action="store_true", help="tiny preset, 1 MaskGIT step, 5 steps, 1 s (CI)")
    parser.add_argument("--inside", help=argparse.SUPPRESS)  # the run directory, when re-run in the namespace
    args = parser.parse_args()
    if args.quick:
        args.preset, args.maskgit_steps, args.steps, args.seconds = "tiny", 1, 5, 1.0
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("MUJOCO_GL", "egl")  # the node renders its start frame offscreen
    # Two processes stepping torch models in turn on 2 cores: OpenMP workers that spin between
    # parallel regions (the default) steal the other process's cores and make the comparison
    # measure that, not ROS (measured: overhead p50 58 ms spinning vs 3 ms passive).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if args.inside:
        through_ros(Path(args.inside), args.maskgit_steps, args.steps, args.seconds, args.depth)
        return

    import torch

    run = Path(tempfile.mkdtemp(prefix="ros_latency_"))
    try:
        make_run(args.preset, run)
        print(f"preset {args.preset}, {args.maskgit_steps} MaskGIT steps, CPU threads {torch.get_num_threads()}, "
              f"history grows from 1 frame to the model's window")
        inner = [sys.executable, __file__, "--inside", str(run), "--maskgit-steps", str(args.maskgit_steps),
                 "--steps", str(args.steps), "--seconds", str(args.seconds), "--depth", str(args.depth)]
        env = dict(os.environ)
        if shutil.which("unshare") and subprocess.run(["unshare", "-rn", "true"], capture_output=True).returncode == 0:
            inner = ["unshare", "-rn", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *inner]
            env["FASTDDS_BUILTIN_TRANSPORTS"] = "UDPv4"  # shared memory would cross the namespace
            print("ROS 2 over UDP on loopback, inside a loopback-only network namespace")
        else:
            print("no network namespace here: DDS kept local by ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST only")
        subprocess.run(inner, check=True, env=env)
    finally:
        shutil.rmtree(run)


if __name__ == "__main__":
    main()
