"""Training throughput per stage and preset: clips/s, tokens/s and peak memory.

Usage: python benchmarks/training_throughput.py [--presets tiny small] [--steps 5] [--clip-len 16] [--quick]
Peak memory is CUDA's max allocated on GPU, and the process's peak RSS on CPU."""
import argparse
import resource
import time

import torch

from genie_robot.models import MODELS


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--presets", nargs="+", default=["tiny", "small"])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--clip-len", type=int, default=16)
    parser.add_argument("--quick", action="store_true", help="tiny preset, 1 step of one 4-frame clip (CI)")
    args = parser.parse_args()
    if args.quick:
        args.presets, args.steps, args.batch_size, args.clip_len = ["tiny"], 1, 1, 4
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)
    print(f"device {device}, batch {args.batch_size} x {args.clip_len} frames, {torch.get_num_threads()} threads")
    for preset in args.presets:
        tok_cfg = MODELS["tokenizer"][0].preset(preset)
        size = tok_cfg.image_size
        for stage in ("tokenizer", "lam", "dynamics"):  # the adapter is a 4-value MLP: nothing to measure
            config_cls, model_cls = MODELS[stage]
            model = model_cls(config_cls.preset(preset)).to(device)
            opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
            video = torch.randint(0, 256, (args.batch_size, args.clip_len, size, size, 3), dtype=torch.uint8, device=device)
            if stage == "dynamics":
                g = model.config.grid
                batch = {"tokens": torch.randint(0, model.config.codebook_size, (args.batch_size, args.clip_len, g, g), device=device),
                         "actions": torch.randint(0, model.config.num_actions, (args.batch_size, args.clip_len - 1), device=device)}
                tokens_per_clip = args.clip_len * g * g
            else:
                batch = {"video": video}
                tokens_per_clip = args.clip_len * model.config.tokens_per_frame
            for i in range(args.steps + 1):
                if i == 1:  # first step warms up kernels/allocator
                    if device.type == "cuda":
                        torch.cuda.synchronize()
                    t0 = time.perf_counter()
                with autocast:
                    loss = model(batch).loss
                opt.zero_grad()
                loss.backward()
                opt.step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            dt = (time.perf_counter() - t0) / args.steps
            params = sum(p.numel() for p in model.parameters()) / 1e6
            clips = args.batch_size / dt
            print(f"{preset:6s} {stage:9s} {params:7.2f}M params  {dt * 1000:8.1f} ms/step  {clips:7.2f} clips/s  "
                  f"{clips * tokens_per_clip:10.0f} tokens/s  peak {peak_memory_mb(device):8.0f} MB")


if __name__ == "__main__":
    main()
