"""`genie-robot` command line. User errors print one line and exit 2 (no traceback)."""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import math
import sys
from collections.abc import Sequence

from genie_robot.errors import GenieRobotError, InputError
from genie_robot.plan.presets import TASKS, PlanSettings, parse_setting


class _Parser(argparse.ArgumentParser):
    """User errors in one line (argparse's default prints the usage block above it)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def bounded(kind: type, low: float | None = None, high: float | None = None, above: float | None = None):
    """An argparse type that parses `kind` and refuses values outside [low, high] (or <= above)
    and non-finite numbers, naming the range. Every numeric flag uses one (a test checks)."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if (low is not None and value < low) or (high is not None and value > high) or (above is not None and value <= above):
            bounds = [f">= {low}" if low is not None else "", f"> {above}" if above is not None else "",
                      f"<= {high}" if high is not None else ""]
            raise argparse.ArgumentTypeError(f"must be {' and '.join(b for b in bounds if b)}, got {text}")
        return value

    parse.kind, parse.low, parse.high, parse.above = kind, low, high, above
    parse.__name__ = kind.__name__
    return parse


POSITIVE, COUNT, FRAMES = bounded(int, 1), bounded(int, 0), bounded(int, 2)
RATE, SHARE = bounded(float, above=0), bounded(float, 0, 1)


class Names(Sequence):
    """A flag's choices, read when the flag is used from the module that defines them (each of
    `attributes` a name, or a dotted path, whose values are joined): parsing and --help need no
    torch or MuJoCo for the commands that do not."""

    def __init__(self, module: str, *attributes: str):
        self.module, self.attributes = module, attributes

    def _names(self) -> tuple:
        found = []
        for path in self.attributes:
            value = importlib.import_module(self.module)
            for name in path.split("."):
                value = getattr(value, name)
            found += list(value)
        return tuple(found)

    def __getitem__(self, index):
        return self._names()[index]

    def __len__(self) -> int:
        return len(self._names())


def setting(text: str) -> tuple:
    """--set KEY=VALUE: one planning setting (plan/presets.py), its name and type checked here."""
    try:
        return parse_setting(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _cmd_data_mujoco(args) -> None:
    from genie_robot.sim.generate import generate_dataset

    result = generate_dataset(
        args.out, args.episodes, args.steps, args.size, args.seed, args.policy, args.camera,
        args.split, overwrite=args.overwrite, workers=args.workers,
    )
    if result["already_there"]:
        print(f"{args.out} already held {result['already_there']} episodes (resumed; --overwrite starts over)")
    print(
        f"wrote {result['written']} new episodes to {args.out}: {result['contact_episodes']} with contact, "
        f"{result['deformed_episodes']} with visible soft-object deformation"
    )


def _cmd_data_info(args) -> None:
    from genie_robot.data.inspect import format_info, store_info
    from genie_robot.data.store import EpisodeStore

    with EpisodeStore(args.file) as store:
        info = store_info(store)
    print(json.dumps(info, indent=2) if args.json else format_info(info))


def _cmd_data_preview(args) -> None:
    from genie_robot.data.inspect import write_preview
    from genie_robot.data.store import EpisodeStore

    with EpisodeStore(args.file) as store:
        store.episode(args.episode)  # a clear error for an out-of-range --episode
        sheet, gif = write_preview(store, args.out, args.episode)
    print(f"wrote {sheet} and {gif}")


def _convert(args, reader, desc: str) -> None:
    from genie_robot.data.convert import convert

    result = convert(args.out, reader, desc, overwrite=args.overwrite)
    if result["already_there"]:
        print(f"{args.out} already held {result['already_there']} episodes; inputs already converted were skipped "
              "(resumed; --overwrite starts over)")
    rate = result["frames"] / max(result["seconds"], 1e-9)
    print(f"wrote {result['written']} new episodes ({result['frames']} frames, {rate:.0f} frames/s) to {args.out}")


def _cmd_data_rlds(args) -> None:
    from genie_robot.data.rlds import RLDSReader

    reader = RLDSReader(args.dir, args.size, args.split, args.dataset, args.image_key, args.action_keys,
                        args.language_key, args.max_episodes, args.max_steps)
    _convert(args, reader, reader.dataset)


def _cmd_data_rosbag(args) -> None:
    from genie_robot.data.rosbag import RosbagReader

    _convert(args, RosbagReader(args.bag, args.image_topic, args.action_topic, args.fps, args.size, args.clip_frames), "rosbag")


def _cmd_data_video(args) -> None:
    from genie_robot.data.video import VideoReader

    _convert(args, VideoReader(args.files, args.size, args.fps, args.clip_frames), "video")


def _cmd_data_robomimic(args) -> None:
    from genie_robot.data.robomimic import RobomimicReader

    reader = RobomimicReader(args.file, args.camera, args.size, args.flip, args.filter_key)
    _convert(args, reader, f"{reader.path.name}:{reader.image_key}")


def _cmd_data_lerobot(args) -> None:
    from genie_robot.data.lerobot import LeRobotReader

    reader = LeRobotReader(args.root, args.size, args.camera, args.action_key)
    print(f"{args.root}: LeRobotDataset {reader.version}, {len(reader.episodes_meta)} episodes at {reader.fps:g} fps, "
          f"camera {reader.camera}")
    _convert(args, reader, reader.camera)


def _cmd_data_export_lerobot(args) -> None:
    from genie_robot.data.lerobot import export_lerobot

    exported = export_lerobot(args.data, args.out, args.fps, args.task)
    info = exported.info
    print(f"wrote {args.out}: LeRobotDataset v3.0, {info['total_episodes']} episodes, {info['total_frames']} frames "
          f"at {info['fps']:g} fps, {info['total_tasks']} task(s)")
    for feature in ("observation.state", "observation.environment_state"):
        if feature in info["features"]:
            print(f"  {feature}: {', '.join(info['features'][feature]['names'])}")
    for why in dict.fromkeys(exported.left_out.values()):
        print(f"  left out: {', '.join(k for k, w in exported.left_out.items() if w == why)} ({why})")
    if exported.constant:
        print(f"  constant over this export (kept, so every export of this robot has one layout; LeRobot's "
              f"normalisers divide by eps where a range is 0): {', '.join(exported.constant)}")


def _cmd_data_platformer(args) -> None:
    from genie_robot.data.platformer import PlatformerReader

    reader = PlatformerReader(args.game, args.episodes, args.steps, args.size, args.policy, args.seed,
                              args.frame_skip, args.split)
    _convert(args, reader, args.game)


def _cmd_train(args) -> None:
    from genie_robot.errors import InputError
    from genie_robot.models import MODELS
    from genie_robot.train.recipe import recipe
    from genie_robot.train.trainer import TrainConfig, Trainer

    config_cls = MODELS[args.stage][0]
    overrides = {"max_frames": args.max_frames} if args.max_frames else {}
    if overrides and "max_frames" not in {f.name for f in dataclasses.fields(config_cls)}:
        raise InputError(f"--max-frames sets a model's temporal window; the {args.stage} has none, so leave "
                         "--max-frames out")
    if args.num_actions:
        if args.stage != "lam":
            raise InputError(f"--num-actions sets the LAM's latent actions; the {args.stage} takes its count from the "
                             "run's LAM, so train that with `genie-robot train lam --num-actions N` instead")
        overrides["num_actions"] = args.num_actions
    if args.command_weight is not None:
        if args.stage != "lam":
            raise InputError(f"--command-weight supervises the LAM's latent actions with recorded commands; the "
                             f"{args.stage} stage has no such loss, so pass it to `genie-robot train lam`")
        overrides["command_weight"] = args.command_weight
    model_config = config_cls.preset(args.preset, **overrides)
    schedule = {k: v if (v := getattr(args, k)) is not None else default
                for k, default in recipe(args.preset, args.stage).items()}
    cfg = TrainConfig(
        steps=schedule["steps"], batch_size=schedule["batch_size"], clip_len=schedule["clip_len"], frame_skip=args.frame_skip,
        lr=schedule["lr"], warmup=min(schedule["warmup"], max(schedule["steps"] // 10, 1)), accum=args.accum,
        ckpt_every=args.ckpt_every, sample_every=args.sample_every, seed=args.seed,
        num_workers=args.workers, device=args.device, precision=args.precision, compile=schedule["compile"],
        ema=schedule["ema"], minutes=args.minutes or 0.0, memo_gb=args.memo_gb,
    )
    trainer = Trainer(args.stage, model_config, args.data, args.out, cfg, resume=args.resume)
    if trainer.step >= cfg.steps:
        print(f"{args.stage}: {args.out}/{args.stage} is already at step {trainer.step} >= --steps {cfg.steps}; "
              "nothing to train (raise --steps to train on)")
        return
    final = trainer.train()
    shown = {k: round(v, 4) for k, v in final.items()
             if k in ("loss", "psnr", "perplexity", "codes_used", "token_accuracy", "accuracy", "error_cm")}
    print(f"{args.stage}: step {trainer.step} in {args.out}/{args.stage}: {shown}")


def _run_and_sampling(args):
    """The run (read only) and the MaskGIT sampling settings of a generating command."""
    from genie_robot.errors import InputError
    from genie_robot.models.run import Run, resolve_device
    from genie_robot.sampling import SamplingConfig

    try:
        temperature = SamplingConfig.temperature if args.temperature is None else args.temperature
        draw = SamplingConfig.draw if args.draw is None else args.draw
        sampling = SamplingConfig(args.maskgit_steps, temperature, args.schedule, args.order, draw=draw)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    return Run.load(args.run, device=resolve_device(args.device)), sampling


def _note(text: str | None) -> None:
    if text:
        print(f"note: {text}")


def _cmd_serve(args) -> None:
    """The start-up of launch/<name>.launch.py without ROS launch (see ros_nodes/launcher.py)."""
    try:
        from ros_nodes.launcher import launch, node_commands
    except ImportError as exc:
        raise GenieRobotError(f"ROS 2 Python packages are missing ({exc}); install them with "
                              "`pip install -e \".[ros]\"`") from None
    code = launch(node_commands(args.launch_file, args.params, getattr(args, "run", None)))
    if code:
        raise GenieRobotError(f"a node exited with status {code}; its log above says why")


def _cmd_play(args) -> None:
    import numpy as np

    from genie_robot.errors import InputError
    from genie_robot.media import check_video_path, read_image, upscale, write_video
    from genie_robot.play import episode_clip, parse_actions, play_headless, play_window

    if args.headless and not (args.actions and args.out):
        raise InputError("--headless needs --actions 0,3,3,5 and --out FILE.gif|FILE.mp4")
    if args.out:
        check_video_path(args.out)
    if not (args.prompt or args.data):
        raise InputError("give a starting frame: --prompt IMAGE or --data FILE.h5 [--episode I]")
    run, sampling = _run_and_sampling(args)
    wm = run.world_model(args.world_model)
    if args.prompt:
        prompt = read_image(args.prompt)
    else:
        prompt, note = episode_clip(args.data, args.episode, args.start, args.prompt_frames, wm.image_size)
        _note(note)
    start = lambda: wm.start(prompt, seed=args.seed, sampling=sampling, memory=args.memory)
    if args.headless:
        frames = play_headless(start(), parse_actions(args.actions))
    else:
        frames = play_window(start, wm.num_actions, scale=args.scale)
    if args.out:
        frames = np.stack(frames)
        write_video(args.out, upscale(frames, frames.shape[1]), fps=args.fps)
        print(f"wrote {len(frames)} frames to {args.out}")


def _cmd_rollout(args) -> None:
    import numpy as np

    from genie_robot.media import check_video_path, write_video
    from genie_robot.play import episode_clip, rollout_comparison, save_imagined

    check_video_path(args.out)
    run, sampling = _run_and_sampling(args)
    wm = run.world_model(args.world_model)
    video, note = episode_clip(args.data, args.episode, args.start, args.frames, wm.image_size)
    _note(note)
    frames, figures, imagined = rollout_comparison(wm, video, args.prompt_frames, args.seed, sampling)
    write_video(args.out, frames, fps=args.fps)
    print(f"wrote {args.out}: PSNR vs truth after the prompt, dB: "
          f"reconstruction {figures['reconstruction']:.1f} (all frames), LAM actions {figures['inferred']:.1f}, "
          f"random actions {figures['random']:.1f}; inferred actions {figures['inferred_actions']}")
    if args.store:
        origin = f"{run.path}:{args.data}:{args.episode}:{args.start}:seed{args.seed}"
        index = save_imagined(args.store, imagined, np.asarray(figures["inferred_actions"]), wm.num_actions,
                              args.data, args.episode, args.start, origin)
        print(f"appended the imagined rollout (LAM actions) to {args.store} as episode {index}" if index is not None
              else f"{args.store} already holds this rollout ({origin}); nothing appended")


def _cmd_imagine(args) -> None:
    from genie_robot.play import imagine_stores

    run, sampling = _run_and_sampling(args)
    wm = run.world_model(args.world_model)
    count = imagine_stores(wm, str(run.path), args.data, args.out, args.frames, sampling, args.seed, args.rows)
    print(f"appended {count} imagined clips to {args.out}" if count else f"{args.out} already holds every clip; nothing appended")


def _cmd_eval(args) -> None:
    from genie_robot.eval.report import EvalConfig, evaluate

    run, sampling = _run_and_sampling(args)
    config = EvalConfig(horizons=args.horizons, delta_t=args.delta_t, max_episodes=args.episodes, sampling=sampling,
                        seed=args.seed, fvd=not args.no_fvd, gifs=args.gifs, world_model=args.world_model)
    metrics = evaluate(run, args.data, args.out, config)
    print(f"wrote {args.out}/index.html and metrics.json in {metrics['seconds']:.0f} s")
    for name, domain in metrics.get("domains", {"": metrics}).items():
        _print_eval(domain, f"[{name}] " if name else "")


def _print_eval(metrics: dict, prefix: str) -> None:
    _note(metrics["notes"].get("resolution"))
    for name, figures in metrics["fidelity"].items():
        print(f"  {prefix}PSNR {name:>14}: " + "  ".join(f"t={h} {v:.1f} dB" for h, v in figures["psnr"].items())
              + "   (of the mean MSE: " + "  ".join(f"{v:.1f}" for v in figures["psnr_pooled"].values()) + ")")
    if d := metrics.get("delta_psnr"):
        print(f"  {prefix}Delta_{d['t']} PSNR {d['delta_psnr']:+.2f} dB (LAM actions {d['psnr_lam']:.1f} dB, random "
              f"{d['psnr_random']:.1f} dB, copy first frame {d['copy_first_psnr']:.1f} dB)")
    if f := metrics.get("fvd"):
        print(f"  {prefix}FVD: " + ", ".join(f"{name} {f[name]:.0f}" for name in f if name not in ("videos", "frames")))
    if la := metrics.get("latent_actions"):
        print(f"  {prefix}latent actions: NMI {la['nmi']:.2f}, {la['codes_used']} codes used")
    if a := metrics.get("adapter"):
        print(f"  {prefix}adapter: command -> latent {a['command_to_latent']:.0%} (majority {a['command_to_latent_majority']:.0%}), "
              f"latent -> behaviour {a['latent_to_behaviour']:.0%} (majority {a['latent_to_behaviour_majority']:.0%})")
    for name, why in metrics["skipped"].items():
        print(f"  {prefix}skipped {name}: {why}")


def _cmd_compare(args) -> None:
    from genie_robot.errors import InputError
    from genie_robot.eval.compare import compare_table, load_report
    from genie_robot.io import atomic_path

    names = args.names or [str(path) for path in args.reports]
    if len(names) != len(args.reports):
        raise InputError(f"--names gives {len(names)} names for {len(args.reports)} reports")
    table = compare_table({name: load_report(path) for name, path in zip(names, args.reports)})
    print(table)
    if args.out:
        with atomic_path(args.out) as tmp:
            tmp.write_text(table + "\n")


def _cmd_plan(args) -> None:
    from genie_robot.models.run import Run, resolve_device
    from genie_robot.plan.execute import plan_and_execute
    from genie_robot.plan.presets import task_settings

    settings = task_settings(args.task, args.set)
    run = Run.load(args.run, device=resolve_device(args.device))
    adapter = run.require("adapter", "planning arm commands")
    result = plan_and_execute(run.world_model(args.world_model), adapter, args.start, args.goal, args.out, settings, args.steps,
                              args.seed, probe=run.probe)
    for note in result["notes"]:
        _note(note)
    distance = result["final_distance"]
    print(f"wrote {args.out}/plan.gif (goal | imagined | MuJoCo) and plan.json; {result['plans']} plan(s), "
          f"{result['seconds_per_plan']:.1f} s each; latent actions {result['latents']}")
    print(f"  {settings.cost} distance to goal: start {distance['start']:.4f}, imagined {distance['imagined']:.4f}, "
          f"MuJoCo {distance['mujoco']:.4f}")
    for name, d in result.get("distance_m", {}).items():
        print(f"  {name}: {d['start'] * 100:.1f} cm from its goal position at the start, {d['final'] * 100:.1f} cm after")


def _add_run_args(parser) -> None:
    parser.add_argument("--run", required=True, help="run directory with tokenizer/, dynamics/ (and lam/)")
    parser.add_argument("--world-model", default="video", choices=Names("genie_robot.models.run", "WORLD_MODELS"),
                        help="video: Genie's tokenizer + dynamics; change: the change tokenizer + its dynamics + the LAM "
                             "(change_tokenizer/, change_dynamics/, lam/; docs/architecture.md)")
    parser.add_argument("--seed", type=COUNT, default=0)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))


def _add_sampling_args(parser) -> None:
    _add_run_args(parser)
    parser.add_argument("--maskgit-steps", type=POSITIVE, default=25)
    parser.add_argument("--temperature", type=bounded(float, 0), help="0 = greedy (default: SamplingConfig's, 0.5)")
    parser.add_argument("--schedule", default="cosine", choices=Names("genie_robot.sampling", "SCHEDULES"),
                        help="how many tokens stay masked after each MaskGIT step")
    parser.add_argument("--order", default="random", choices=Names("genie_robot.sampling", "ORDERS"),
                        help="unmasking order (annealed: MaskGIT's)")
    parser.add_argument("--draw", choices=Names("genie_robot.sampling", "DRAWS"),
                        help="what a MaskGIT step fixes, a draw from the softmax at the temperature (sample) or per FSQ "
                        "dimension its median level (median, needs an FSQ tokenizer); auto: median for FSQ tokens "
                        "(default: SamplingConfig's, auto)")


def _add_generation_args(parser) -> None:
    _add_sampling_args(parser)
    parser.add_argument("--memory", type=FRAMES, default=None, help="frames the model sees (default: its window, 16)")
    parser.add_argument("--fps", type=RATE, default=10.0, help="frame rate of written videos")
    parser.add_argument("--episode", type=COUNT, default=0)
    parser.add_argument("--start", type=COUNT, default=0, help="first frame taken from the episode")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="genie-robot", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    data = commands.add_parser("data", help="make, inspect and preview episode stores")
    data_cmds = data.add_subparsers(dest="data_command", required=True)

    mj = data_cmds.add_parser("mujoco", help="generate episodes from the MuJoCo arm world")
    mj.add_argument("--episodes", type=POSITIVE, default=20)
    mj.add_argument("--steps", type=FRAMES, default=32, help="frames per episode (steps-1 commands)")
    mj.add_argument("--size", type=bounded(int, 8), default=64, help="rendered resolution (square)")
    mj.add_argument("--seed", type=COUNT, default=0)
    mj.add_argument("--policy", default="mixed", choices=Names("genie_robot.sim.controllers", "POLICIES"),
                    help="the scripted policy that moves the arm")
    mj.add_argument("--camera", default="front", choices=Names("genie_robot.sim.scene", "CAMERAS"),
                    help="the view rendered (each episode records it)")
    mj.add_argument("--split", default="train")
    mj.add_argument("--out", required=True)
    mj.add_argument("--overwrite", action="store_true", help="replace FILE instead of appending/resuming")
    mj.add_argument("--workers", type=POSITIVE, default=1, help="simulate in this many processes (same episodes)")
    mj.set_defaults(func=_cmd_data_mujoco)

    info = data_cmds.add_parser("info", help="summarise an episode store")
    info.add_argument("file")
    info.add_argument("--json", action="store_true")
    info.set_defaults(func=_cmd_data_info)

    preview = data_cmds.add_parser("preview", help="contact sheet PNG + one episode as GIF")
    preview.add_argument("file")
    preview.add_argument("--out", required=True, help="sheet.png (the GIF is written beside it)")
    preview.add_argument("--episode", type=COUNT, default=0)
    preview.set_defaults(func=_cmd_data_preview)

    def conversion(name: str, help_text: str):
        sub = data_cmds.add_parser(name, help=help_text)
        sub.add_argument("--out", required=True, help="episode store FILE.h5 (appended to; a re-run resumes)")
        sub.add_argument("--size", type=bounded(int, 8), default=64, help="stored resolution (square: centre crop, then resize)")
        sub.add_argument("--overwrite", action="store_true", help="replace FILE instead of appending/resuming")
        return sub

    rlds = conversion("rlds", "convert an RLDS dataset (RT-1, Open X-Embodiment) from a local TFDS folder")
    rlds.add_argument("--dir", required=True, help="TFDS dataset version folder, e.g. data/fractal20220817_data/0.1.0")
    rlds.add_argument("--dataset", help="entry of datasets/oxe_datasets.json to take keys from (default: the folder's TFDS name)")
    rlds.add_argument("--image-key", help="step key of the camera, e.g. observation/image")
    rlds.add_argument("--action-keys", nargs="+", help="step keys flattened, in order, into the action vector")
    rlds.add_argument("--language-key", help="step key of the instruction text")
    rlds.add_argument("--split", default="train")
    rlds.add_argument("--max-episodes", type=POSITIVE, help="convert the first N episodes of the split")
    rlds.add_argument("--max-steps", type=FRAMES, help="keep the first N steps (frames) of each episode")
    rlds.set_defaults(func=_cmd_data_rlds)

    bag = conversion("rosbag", "convert rosbag2 recordings (sqlite3 or MCAP): an image topic and optional actions")
    bag.add_argument("--bag", nargs="+", required=True, help="rosbag2 folder(s) or .mcap/.db3 file(s); one episode each")
    bag.add_argument("--image-topic", required=True, help="sensor_msgs/Image or CompressedImage topic")
    bag.add_argument("--action-topic", help="geometry_msgs/Twist(Stamped) or sensor_msgs/JointState topic")
    bag.add_argument("--fps", type=RATE, help="resample frames to this rate (default: keep every image)")
    bag.add_argument("--clip-frames", type=FRAMES, help="cut each bag into episodes of N frames")
    bag.set_defaults(func=_cmd_data_rosbag)

    vid = conversion("video", "convert video files (mp4, webm, gif): one episode per file or per clip")
    vid.add_argument("files", nargs="+", help="video files")
    vid.add_argument("--fps", type=RATE, help="resample frames to this rate (default: keep every frame)")
    vid.add_argument("--clip-frames", type=FRAMES, help="cut each video into episodes of N frames")
    vid.set_defaults(func=_cmd_data_video)

    lerobot = conversion("lerobot", "convert a local LeRobotDataset (v2.1 or v3.0: meta/info.json, parquet, mp4)")
    lerobot.add_argument("--root", required=True, help="the dataset folder holding meta/, data/ and videos/")
    lerobot.add_argument("--camera", help="camera feature, e.g. observation.images.top (default: the first colour one; "
                         "a depth map only when named)")
    lerobot.add_argument("--action-key", default="action", help="feature holding the actions")
    lerobot.set_defaults(func=_cmd_data_lerobot)

    export = data_cmds.add_parser("export-lerobot", help="write an episode store as a LeRobotDataset v3.0 folder")
    export.add_argument("--data", required=True, help="episode store FILE.h5 (every episode with actions)")
    export.add_argument("--out", required=True, help="new dataset folder")
    export.add_argument("--fps", type=RATE, help="frame rate, when the store's episodes do not record one")
    export.add_argument("--task", help="every episode's task text (default: its language, else a sentence saying "
                                       "what its source's recording policy did)")
    export.set_defaults(func=_cmd_data_export_lerobot)

    mimic = conversion("robomimic", "convert robomimic / LIBERO / MimicGen HDF5 demos (data/demo_N/obs/<camera>_image)")
    mimic.add_argument("--file", required=True, help="the .hdf5 file of demos")
    mimic.add_argument("--camera", default="agentview", help="camera name: agentview, robot0_eye_in_hand, eye_in_hand, ...")
    mimic.add_argument("--flip", default="auto", choices=Names("genie_robot.data.robomimic", "FLIPS"),
                       help="image orientation fix (auto: vertical for LIBERO files, whose images are upside down)")
    mimic.add_argument("--filter-key", help="convert only the demos of mask/KEY (robomimic's train / valid splits)")
    mimic.set_defaults(func=_cmd_data_robomimic)

    game = conversion("platformer", "play platformer games (ALE Atari, Procgen) with a random policy and record them")
    game.add_argument("--game", required=True,
                      choices=Names("genie_robot.data.platformer", "ALE_PLATFORMERS", "PROCGEN_PLATFORMERS"))
    game.add_argument("--episodes", type=POSITIVE, default=20)
    game.add_argument("--steps", type=FRAMES, default=64, help="frames per episode (fewer if the game ends)")
    game.add_argument("--policy", default="sticky", choices=Names("genie_robot.data.platformer", "POLICIES"),
                      help="sticky: repeat the last action with p=0.75")
    game.add_argument("--frame-skip", type=POSITIVE, help="game frames per step (default: 4 for Atari, 1 for Procgen)")
    game.add_argument("--seed", type=COUNT, default=0)
    game.add_argument("--split", default="train")
    game.set_defaults(func=_cmd_data_platformer)

    train = commands.add_parser("train", help="train one stage of a run on a mixture of episode stores")
    train.add_argument("stage", choices=Names("genie_robot.models.run", "STAGES"),
                       help="in this order; the adapter (arm command <-> latent action) needs stores with arm commands, "
                       "the probe (frame -> hand and object positions, for planning) stores with recorded state; "
                       "change_tokenizer and change_dynamics (after the LAM) are the change-token world model "
                       "(docs/experiments/change_tokens.md)")
    train.add_argument("--data", nargs="+", required=True, help="FILE.h5[:WEIGHT] ...")
    train.add_argument("--preset", default="small", choices=Names("genie_robot.models", "DynamicsConfig.presets"),
                       help="model size (every stage has the same presets)")
    train.add_argument("--steps", type=POSITIVE, help="optimizer steps (default: the preset's recipe, genie_robot/train/recipe.py)")
    train.add_argument("--minutes", type=RATE, default=None,
                       help="wall-clock budget of the training loop: after its first steps are timed, --steps is lowered to "
                            "what fits, so the learning-rate decay still ends at the last step (a --resume gets a new budget)")
    train.add_argument("--out", required=True, help="run directory shared by the four stages")
    train.add_argument("--resume", action="store_true", help="continue from RUN/<stage> (same data order)")
    train.add_argument("--batch-size", type=POSITIVE, help="clips per step (default: the recipe)")
    train.add_argument("--clip-len", type=POSITIVE, help="frames per clip (default: the recipe)")
    train.add_argument("--frame-skip", type=POSITIVE, default=1)
    train.add_argument("--max-frames", type=FRAMES, default=None, help="model temporal window (default: preset)")
    train.add_argument("--num-actions", type=FRAMES, default=None,
                       help="LAM only: latent actions it learns (default: the preset's 8); dynamics and adapter take the run's LAM's")
    train.add_argument("--command-weight", type=bounded(float, 0), default=None,
                       help="LAM only: weight of a loss predicting each transition's recorded robot command from its "
                            "latent action (the stores must record commands); 0 = video alone (default: the preset's)")
    train.add_argument("--lr", type=RATE, default=None, help="peak learning rate (default: the recipe)")
    train.add_argument("--warmup", type=COUNT, help="learning-rate warmup steps (default: the recipe)")
    train.add_argument("--accum", type=POSITIVE, default=1, help="gradient accumulation micro-batches")
    train.add_argument("--ckpt-every", type=POSITIVE, default=200)
    train.add_argument("--sample-every", type=COUNT, default=200)
    train.add_argument("--seed", type=COUNT, default=0)
    train.add_argument("--workers", type=COUNT, default=0, help="DataLoader worker processes")
    train.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    train.add_argument("--memo-gb", type=bounded(float, 0), default=4.0,
                       help="change_dynamics: memory for the change tokenizer's reading of clips already drawn, read once "
                            "instead of at every draw (0 = read every time)")
    train.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"),
                       help="auto: bf16 where it is native (CUDA; CPUs with AVX512-BF16 or AMX), else fp32")
    train.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                       help="torch.compile the transformers: about a minute once, then faster steps (default: the recipe)")
    train.add_argument("--ema", type=SHARE, default=None,
                       help="decay of a moving average of the weights that checkpoints hold for inference, e.g. 0.999; "
                            "0 = off (default: the recipe)")
    train.set_defaults(func=_cmd_train)

    for name, launch_file, with_run, help_text in (
            ("serve", "world_model.launch.py", True, "ROS 2: the world model as a learned simulator node"),
            ("serve-sim", "mujoco.launch.py", False, "ROS 2: the MuJoCo world behind the same interface"),
            ("serve-compare", "compare.launch.py", True, "ROS 2: both side by side, scored and recorded")):
        serve = commands.add_parser(name, help=help_text + f" (as launch/{launch_file})")
        if with_run:
            serve.add_argument("--run", required=True, help="run directory (tokenizer/, dynamics/, lam/, adapter/)")
        serve.add_argument("--params", help=f"ROS parameter YAML (default: the packaged one of {launch_file})")
        serve.set_defaults(func=_cmd_serve, launch_file=launch_file)

    play = commands.add_parser("play", help="act in the world model: a window, or --headless to a video")
    _add_generation_args(play)
    start_from = play.add_mutually_exclusive_group()
    start_from.add_argument("--prompt", help="starting image (PNG/JPEG; cropped to square and downscaled)")
    start_from.add_argument("--data", help="start from a stored episode instead: FILE.h5 (with --episode)")
    play.add_argument("--prompt-frames", type=POSITIVE, default=1, help="frames taken from --data as the prompt")
    play.add_argument("--headless", action="store_true", help="no window: apply --actions and write --out")
    play.add_argument("--actions", help="comma-separated latent actions, e.g. 0,3,3,5")
    play.add_argument("--out", help="FILE.gif or FILE.mp4 (headless output, or a recording of the window)")
    play.add_argument("--scale", type=POSITIVE, default=6, help="window pixels per model pixel")
    play.set_defaults(func=_cmd_play)

    rollout = commands.add_parser("rollout", help="side-by-side video: truth | recon | imagined (LAM) | imagined (random)")
    _add_generation_args(rollout)
    rollout.add_argument("--data", required=True, help="FILE.h5 holding the episode")
    rollout.add_argument("--frames", type=FRAMES, default=16, help="clip length taken from the episode")
    rollout.add_argument("--prompt-frames", type=POSITIVE, default=1)
    rollout.add_argument("--store", help="also append the imagined rollout (LAM actions) to this episode store FILE.h5, "
                                         "e.g. to export it with `data export-lerobot`")
    rollout.add_argument("--out", required=True, help="FILE.gif or FILE.mp4")
    rollout.set_defaults(func=_cmd_rollout)

    imagine = commands.add_parser("imagine", help="an episode store of imagined clips (LAM actions) beside the recorded state, "
                                  "for training or export")
    _add_sampling_args(imagine)
    imagine.set_defaults(maskgit_steps=2)
    imagine.add_argument("--data", nargs="+", required=True, help="stores FILE.h5 whose clips are imagined (training stores, "
                         "never held-out ones)")
    imagine.add_argument("--out", required=True, help="episode store FILE.h5 appended to (an interrupted call resumes)")
    imagine.add_argument("--frames", type=FRAMES, default=16, help="frames per clip: the first is the prompt")
    imagine.add_argument("--rows", type=POSITIVE, default=16, help="clips imagined together in one batch")
    imagine.set_defaults(func=_cmd_imagine)

    ev = commands.add_parser("eval", help="report: PSNR/SSIM vs horizon, Delta_t PSNR, FVD, latent actions vs arm, physics")
    _add_sampling_args(ev)
    ev.set_defaults(maskgit_steps=8)
    ev.add_argument("--data", nargs="+", required=True,
                    help="held-out episodes FILE.h5 (at or above the model's resolution); several = one domain each, "
                         "reported side by side")
    ev.add_argument("--out", required=True, help="report folder (index.html, metrics.json, PNGs, GIFs)")
    ev.add_argument("--episodes", type=POSITIVE, default=16, help="held-out episodes used (the first N)")
    ev.add_argument("--horizons", type=POSITIVE, nargs="+", default=[1, 4, 8, 16], help="frames after the prompt")
    ev.add_argument("--delta-t", type=POSITIVE, default=4, help="t of Delta_t PSNR")
    ev.add_argument("--gifs", type=COUNT, default=3, help="side-by-side rollout GIFs written")
    ev.add_argument("--no-fvd", action="store_true", help="skip FVD (I3D is the slow part on CPU)")
    ev.set_defaults(func=_cmd_eval)

    compare = commands.add_parser("compare", help="evaluation reports of one held-out store side by side (Markdown)")
    compare.add_argument("reports", nargs="+", help="report folders written by `genie-robot eval` (a domain's folder "
                                                    "for a multi-domain report)")
    compare.add_argument("--names", nargs="+", help="column names (default: the folders)")
    compare.add_argument("--out", help="also write the table to this .md file")
    compare.set_defaults(func=_cmd_compare)

    plan = commands.add_parser("plan", help="plan arm commands toward a goal in imagination, execute them in MuJoCo")
    _add_run_args(plan)
    plan.add_argument("--task", required=True, choices=TASKS,
                      help="reach: the hand to where the goal has it (needs RUN/probe: `genie-robot train probe`); push: "
                           "the objects to where the goal frame has them (needs --goal as a stored frame); each task plans "
                           "with the settings measured best for it (genie_robot/plan/presets.py)")
    plan.add_argument("--start", required=True, help="stored MuJoCo frame FILE.h5:EPISODE:STEP (its state is restored)")
    plan.add_argument("--goal", required=True, help="goal image (PNG/JPEG at the model's size) or FILE.h5:EPISODE:STEP")
    plan.add_argument("--out", required=True, help="folder for plan.gif and plan.json")
    plan.add_argument("--steps", type=POSITIVE, default=12, help="commands executed in MuJoCo in all")
    plan.add_argument("--set", type=setting, action="append", default=[], metavar="KEY=VALUE",
                      help="change one setting of the task's preset (repeatable), e.g. --set maskgit_steps=8; KEY is one of "
                           + ", ".join(f.name for f in dataclasses.fields(PlanSettings)))
    plan.set_defaults(func=_cmd_plan)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except GenieRobotError as exc:
        print(f"genie-robot: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("genie-robot: interrupted; finished episodes/checkpoints are kept", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
