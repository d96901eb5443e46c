"""Training throughput per stage and preset: ms/step, frames/s, tokens/s and peak memory; and,
with --peer-1xgpt, our dynamics model's training step beside 1X's GENIE baseline (STMaskGIT from
1x-technologies/1xgpt) at the same size, interleaved in one run.

Usage: python benchmarks/training_throughput.py [--presets tiny small] [--steps 5] [--clip-len 16] [--quick]
       python benchmarks/training_throughput.py --presets small --peer-1xgpt ~/src/1xgpt --peer-path ~/peer_pkgs

The peer comparison imports 1xgpt's own code from a local checkout (never copied here). Its model
module imports mup, transformers and huggingface_hub (pip install --target DIR mup transformers
huggingface_hub; pass DIR as --peer-path) and xformers, which is CUDA-only: with
XFORMERS_DISABLED=true, 1xgpt's own switch, it trains with its plain PyTorch attention and never
calls xformers, so an empty stand-in module is registered when xformers cannot be imported.
Matched: width, depth, heads, MLP ratio 4, QK-norm, 16 frames x 256 tokens, precision, AdamW, batch,
threads, each model's own training masking (ours in forward, theirs by their collator, made once
outside the timing). 1xgpt's loss needs two factored vocabularies (2 x 512), so its output layer
is 1024 wide: ours is timed at its preset's 512 and with a 1024-wide head. Not matched: 1xgpt has
no action input and no pre-norms (QK-norm only) and learns a position per frame and token; ours
adds latent-action embeddings. With --compile both are also timed compiled, each as its own
training compiles it: ours its transformer (the trainer's `compile`, the small recipe's dynamics
default), 1xgpt its whole model (`torch.compile(model)`, its train.py's default).
Peak memory is CUDA's max allocated on GPU, and the process's peak RSS on CPU."""
import argparse
import os
import resource
import statistics
import sys
import time
import types
from pathlib import Path

import torch

from genie_robot.models import MODELS
from genie_robot.train.trainer import compile_transformers, native_bf16, training_autocast


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def train_step(model, opt, step_loss):
    """One optimizer step; `step_loss()` runs the model's forward and returns the loss."""
    def step():
        loss = step_loss()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


def seconds_per_step(step, steps: int, device: torch.device) -> list[float]:
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    return times


def our_dynamics_batch(config, batch_size: int, clip_len: int, device) -> dict:
    g = config.grid
    return {"tokens": torch.randint(0, config.codebook_size, (batch_size, clip_len, g, g), device=device),
            "actions": torch.randint(0, config.num_actions, (batch_size, clip_len - 1), device=device)}


def stage_throughput(args, device) -> None:
    for preset, precision in [(p, q) for p in args.presets for q in args.precisions]:
        size = MODELS["tokenizer"][0].preset(preset).image_size
        for stage in ("tokenizer", "lam", "dynamics"):  # the adapter is a 4-value MLP: nothing to measure
            config_cls, model_cls = MODELS[stage]
            model = model_cls(config_cls.preset(preset)).to(device)
            opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
            if stage == "dynamics":
                batch = our_dynamics_batch(model.config, args.batch_size, args.clip_len, device)
                tokens_per_clip = args.clip_len * model.config.grid ** 2
            else:
                batch = {"video": torch.randint(0, 256, (args.batch_size, args.clip_len, size, size, 3), dtype=torch.uint8,
                                                device=device)}
                tokens_per_clip = args.clip_len * model.config.tokens_per_frame

            def loss(model=model, batch=batch, precision=precision):
                with training_autocast(device, precision):
                    return model(batch).loss
            step = train_step(model, opt, loss)
            step()  # the first step warms up kernels and the allocator
            dt = statistics.mean(seconds_per_step(step, args.steps, device))
            params = sum(p.numel() for p in model.parameters()) / 1e6
            clips = args.batch_size / dt
            print(f"{preset:6s} {stage:9s} {precision} {params:7.2f}M params  {dt * 1000:8.1f} ms/step  "
                  f"{clips * args.clip_len:8.1f} frames/s  "
                  f"{clips * tokens_per_clip:10.0f} tokens/s  peak {peak_memory_mb(device):8.0f} MB")


def import_1xgpt(root: Path, extra_paths: list[str]):
    """1xgpt's GenieConfig, STMaskGIT and MaskGIT collator, imported from the checkout at `root`."""
    if not (root / "genie" / "st_mask_git.py").exists():
        raise SystemExit(f"--peer-1xgpt {root}: no genie/st_mask_git.py there; pass a checkout of "
                         "github.com/1x-technologies/1xgpt")
    os.environ["XFORMERS_DISABLED"] = "true"
    try:
        import xformers.ops  # noqa: F401
    except ImportError:
        stand_in = types.ModuleType("xformers.ops")
        stand_in.LowerTriangularMask = stand_in.memory_efficient_attention = stand_in.unbind = None
        sys.modules["xformers"], sys.modules["xformers.ops"] = types.ModuleType("xformers"), stand_in
    sys.path.insert(0, str(root))
    sys.path.extend(extra_paths)  # after our site-packages: torch and numpy stay ours
    try:
        from data import get_maskgit_collator
        from genie.config import GenieConfig
        from genie.st_mask_git import STMaskGIT
    except ImportError as error:
        raise SystemExit(f"--peer-1xgpt {root}: cannot import 1xgpt's model ({error}); install its imports with "
                         "pip install --target DIR mup transformers huggingface_hub and pass --peer-path DIR") from error
    return GenieConfig, STMaskGIT, get_maskgit_collator


def compare_with_1xgpt(args, device) -> None:
    """Dynamics training steps of ours and of 1xgpt's STMaskGIT at our preset's size, interleaved."""
    GenieConfig, STMaskGIT, get_maskgit_collator = import_1xgpt(Path(args.peer_1xgpt).expanduser(), args.peer_path)
    config_cls, model_cls = MODELS["dynamics"]
    for preset in args.presets:
        ours_config = config_cls.preset(preset)
        frames, grid = ours_config.max_frames, ours_config.grid
        # 1xgpt's loss assumes two factored vocabularies (its released setting: 2 x 512 for 262144 tokens),
        # so its output layer is 2 x 512 wide; "ours, head 1024" matches that width exactly.
        peer_config = GenieConfig(num_layers=ours_config.layers, num_heads=ours_config.heads, d_model=ours_config.dim,
                                  T=frames, S=grid * grid, image_vocab_size=512**2, num_factored_vocabs=2, use_mup=False)
        torch.manual_seed(0)
        models = {"ours": model_cls(ours_config), "ours, head 1024": model_cls(config_cls.preset(preset, codebook_size=1024)),
                  "1xgpt": STMaskGIT(peer_config)}
        models["1xgpt"].init_weights()
        if args.compile:
            models["ours compiled"] = model_cls(ours_config)
            models["ours compiled"].load_state_dict(models["ours"].state_dict())
            compile_transformers(models["ours compiled"], device)
            models["1xgpt compiled"] = STMaskGIT(peer_config)
            models["1xgpt compiled"].load_state_dict(models["1xgpt"].state_dict())
        our_batch = our_dynamics_batch(ours_config, args.batch_size, frames, device)
        features = [{"input_ids": row.flatten(), "labels": row.flatten()} for row in our_batch["tokens"].cpu()]
        peer_batch = {k: v.to(device) for k, v in get_maskgit_collator(peer_config)(features).items()
                      if k in ("input_ids", "labels")}
        for model in models.values():
            model.to(device)
        forwards = {name: lambda m=model, b=our_batch: m(b).loss for name, model in models.items() if name.startswith("ours")}
        # Its output is a bare transformers ModelOutput, whose attributes do not survive compiling: read it as a dict.
        forwards |= {"1xgpt": lambda m=models["1xgpt"], b=peer_batch: m(**b)["loss"]}
        if args.compile:
            forwards["1xgpt compiled"] = lambda m=torch.compile(models["1xgpt compiled"]), b=peer_batch: m(**b)["loss"]

        def under(forward, precision):
            def loss():
                with training_autocast(device, precision):
                    return forward()
            return loss
        steps = {f"{name} {precision}": train_step(models[name], torch.optim.AdamW(models[name].parameters(), lr=1e-4),
                                                   under(forward, precision))
                 for precision in args.precisions for name, forward in forwards.items()}
        for name, step in list(steps.items()):
            try:
                step()  # warm-up (and compilation)
            except Exception as error:  # inductor's code generation can fail on a model (it did on ours, whole)
                if "compiled" not in name:
                    raise
                print(f"  {name}: compiling failed, left out ({type(error).__name__}: {str(error).splitlines()[0][:160]})")
                del steps[name]
        times = {name: [] for name in steps}
        for _ in range(args.rounds):  # interleaved, so that load on a shared machine hits both alike
            for name, step in steps.items():
                times[name] += seconds_per_step(step, args.steps, device)
        print(f"dynamics training, {preset} preset size (width {ours_config.dim}, {ours_config.layers} layers, "
              f"{ours_config.heads} heads, {frames} frames x {grid * grid} tokens, vocabulary {ours_config.codebook_size}), "
              f"batch {args.batch_size}, AdamW, {torch.get_num_threads()} threads, median of "
              f"{args.rounds} x {args.steps} interleaved steps:")
        median = {name: statistics.median(t) for name, t in times.items()}
        for name in steps:
            count = sum(p.numel() for p in models[name.rsplit(" ", 1)[0]].parameters()) / 1e6
            print(f"  {name:20s} {count:5.2f}M params  {median[name] * 1000:8.1f} ms/step  "
                  f"{args.batch_size * frames / median[name]:7.1f} frames/s")
        for precision in args.precisions:
            print(f"  {precision}: ours / 1xgpt {median[f'1xgpt {precision}'] / median[f'ours {precision}']:.2f}x the frames "
                  f"per second ({median[f'1xgpt {precision}'] / median[f'ours, head 1024 {precision}']:.2f}x with the same "
                  "output width)")
            ours_compiled, peer_compiled = median.get(f"ours compiled {precision}"), median.get(f"1xgpt compiled {precision}")
            if ours_compiled:
                print(f"  {precision}, ours compiled / 1xgpt eager {median[f'1xgpt {precision}'] / ours_compiled:.2f}x"
                      + (f"; both compiled {peer_compiled / ours_compiled:.2f}x" if peer_compiled else ""))
        best = {owner: min(t for name, t in median.items() if name.startswith(owner) and "head" not in name)
                for owner in ("ours", "1xgpt")}
        print(f"  each at its fastest setting: ours / 1xgpt {best['1xgpt'] / best['ours']:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["tiny", "small"], choices=list(MODELS["dynamics"][0].presets))
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--clip-len", type=int, default=16)
    parser.add_argument("--peer-1xgpt", help="a checkout of 1x-technologies/1xgpt: compare dynamics training with it")
    parser.add_argument("--peer-path", nargs="*", default=[], help="folders holding 1xgpt's imports (mup, transformers, ...)")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds of --steps steps per model (peer comparison)")
    parser.add_argument("--precisions", nargs="+", choices=("fp32", "bf16"),
                        help="default: fp32, and bf16 too where it is native (the trainer's auto)")
    parser.add_argument("--compile", action="store_true", help="also time compiled models (each compiles once, ~1 min)")
    parser.add_argument("--quick", action="store_true", help="tiny preset, 1 step of one 4-frame clip (CI)")
    args = parser.parse_args()
    if args.quick:
        args.presets, args.steps, args.batch_size, args.clip_len, args.rounds = ["tiny"], 1, 1, 4, 1
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    args.precisions = args.precisions or (["fp32", "bf16"] if native_bf16(device) else ["fp32"])
    print(f"device {device}, batch {args.batch_size} x {args.clip_len} frames, {torch.get_num_threads()} threads")
    if args.peer_1xgpt:
        compare_with_1xgpt(args, device)
    else:
        stage_throughput(args, device)


if __name__ == "__main__":
    main()
