"""`genie-robot` command line. User errors print one line and exit 2 (no traceback)."""
from __future__ import annotations

import argparse
import json
import sys

from genie_robot.errors import GenieRobotError


def _cmd_data_mujoco(args) -> None:
    from genie_robot.sim.generate import generate_dataset

    result = generate_dataset(
        args.out, args.episodes, args.steps, args.size, args.seed, args.policy, args.camera,
        args.split, overwrite=args.overwrite,
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
        if not 0 <= args.episode < len(store):
            raise GenieRobotError(f"--episode {args.episode} out of range: {args.file} has {len(store)} episodes")
        sheet, gif = write_preview(store, args.out, args.episode)
    print(f"wrote {sheet} and {gif}")


def _cmd_train(args) -> None:
    from genie_robot.models import MODELS
    from genie_robot.train.trainer import TrainConfig, Trainer

    config_cls = MODELS[args.stage][0]
    overrides = {"max_frames": args.max_frames} if args.max_frames else {}
    model_config = config_cls.preset(args.preset, **overrides)
    cfg = TrainConfig(
        steps=args.steps, batch_size=args.batch_size, clip_len=args.clip_len, frame_skip=args.frame_skip,
        lr=args.lr if args.lr is not None else (1e-3 if args.preset in ("tiny", "small") else 3e-4),
        warmup=min(args.warmup, max(args.steps // 10, 1)), accum=args.accum,
        ckpt_every=args.ckpt_every, sample_every=args.sample_every, seed=args.seed,
        num_workers=args.workers, device=args.device,
    )
    trainer = Trainer(args.stage, model_config, args.data, args.out, cfg, resume=args.resume)
    final = trainer.train()
    shown = {k: round(v, 4) for k, v in final.items() if k in ("loss", "psnr", "perplexity", "codes_used", "token_accuracy")}
    print(f"{args.stage}: step {trainer.step} in {args.out}/{args.stage}: {shown}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genie-robot", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    data = commands.add_parser("data", help="make, inspect and preview episode stores")
    data_cmds = data.add_subparsers(dest="data_command", required=True)

    mj = data_cmds.add_parser("mujoco", help="generate episodes from the MuJoCo arm world")
    mj.add_argument("--episodes", type=int, default=20)
    mj.add_argument("--steps", type=int, default=32, help="frames per episode (steps-1 commands)")
    mj.add_argument("--size", type=int, default=64, help="rendered resolution (square)")
    mj.add_argument("--seed", type=int, default=0)
    mj.add_argument("--policy", default="mixed", help="mixed | push | random")
    mj.add_argument("--camera", default="front", help="front | top")
    mj.add_argument("--split", default="train")
    mj.add_argument("--out", required=True)
    mj.add_argument("--overwrite", action="store_true", help="replace FILE instead of appending/resuming")
    mj.set_defaults(func=_cmd_data_mujoco)

    info = data_cmds.add_parser("info", help="summarise an episode store")
    info.add_argument("file")
    info.add_argument("--json", action="store_true")
    info.set_defaults(func=_cmd_data_info)

    preview = data_cmds.add_parser("preview", help="contact sheet PNG + one episode as GIF")
    preview.add_argument("file")
    preview.add_argument("--out", required=True, help="sheet.png (the GIF is written beside it)")
    preview.add_argument("--episode", type=int, default=0)
    preview.set_defaults(func=_cmd_data_preview)

    train = commands.add_parser("train", help="train one Genie stage on a mixture of episode stores")
    train.add_argument("stage", choices=["tokenizer", "lam", "dynamics"])
    train.add_argument("--data", nargs="+", required=True, help="FILE.h5[:WEIGHT] ...")
    train.add_argument("--preset", default="small", help="tiny | small | base | coinrun | paper")
    train.add_argument("--steps", type=int, default=1000)
    train.add_argument("--out", required=True, help="run directory shared by the three stages")
    train.add_argument("--resume", action="store_true", help="continue from RUN/<stage> (same data order)")
    train.add_argument("--batch-size", type=int, default=8)
    train.add_argument("--clip-len", type=int, default=16)
    train.add_argument("--frame-skip", type=int, default=1)
    train.add_argument("--max-frames", type=int, default=None, help="model temporal window (default: preset)")
    train.add_argument("--lr", type=float, default=None, help="peak learning rate (default 1e-3 tiny/small, 3e-4 larger)")
    train.add_argument("--warmup", type=int, default=100)
    train.add_argument("--accum", type=int, default=1, help="gradient accumulation micro-batches")
    train.add_argument("--ckpt-every", type=int, default=200)
    train.add_argument("--sample-every", type=int, default=200)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    train.add_argument("--device", default="auto", help="auto | cpu | cuda")
    train.set_defaults(func=_cmd_train)
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
