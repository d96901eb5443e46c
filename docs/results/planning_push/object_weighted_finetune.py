# Exploratory record, not part of the package; run from the repository root:
#   python docs/results/planning_push/object_weighted_finetune.py RUN OUT STEPS OBJECT_WEIGHT
# Does a dynamics model that is taught harder where objects move then imagine pushes? Continues RUN's dynamics on the
# three mixed stores' cached tokens (out/quality/cmdvec_tokens.pt: mujoco, explore, probe7) with its own masked-token
# loss, where a changed token whose 4x4 patch holds a movable object (store masks, in this frame or the one before)
# weighs OBJECT_WEIGHT times more; OBJECT_WEIGHT 1 is the control (the same steps with the loss as trained).
# Writes OUT: RUN's other stages and the new dynamics (its weights' moving average).
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange, reduce

from genie_robot.data.store import EpisodeStore
from genie_robot.models.checkpoint import save_model
from genie_robot.models.run import Run
from genie_robot.sim.scene import MOVABLE_OBJECTS
from genie_robot.train.trainer import training_autocast

STORES = ['out/quality/data/mujoco.h5', 'out/quality/data/explore.h5', 'out/quality/data/probe7.h5']
TOKENS, EXTRA = 'out/quality/cmdvec_tokens.pt', 'out/quality/l16_latents_objects.pt'
BATCH, CLIP, LR, WARMUP, EMA = 4, 16, 3e-4, 50, 0.99


def latents_and_object_patches(wm, grid):
    """The LAM's code of every transition [E, T-1] and where movable objects are, per token [E, T, h, w] (cached)."""
    try:
        return torch.load(EXTRA)
    except FileNotFoundError:
        pass
    latents, patches = [], []
    ids = [o.mask_id for o in MOVABLE_OBJECTS]
    for path in STORES:
        with EpisodeStore(path) as store:
            for ep in store:
                latents.append(torch.from_numpy(wm.infer_actions(ep.read_frames())))
                present = np.isin(ep.masks, ids)
                patches.append(torch.from_numpy(reduce(present, 't (h p) (w q) -> t h w', 'max', h=grid, w=grid)))
    extra = {'latents': torch.stack(latents), 'objects': torch.stack(patches)}
    torch.save(extra, EXTRA)
    return extra


def main():
    run_path, out, steps, object_weight = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    torch.manual_seed(0)
    wm = Run.load(run_path).world_model()
    dyn = wm.dynamics
    c = dyn.config
    tokens_all = torch.load(TOKENS)['tokens']
    extra = latents_and_object_patches(wm, c.grid)
    E, T = tokens_all.shape[:2]
    print(f'{E} episodes of {T} frames; object patches {extra["objects"].float().mean():.3f} of tokens', flush=True)
    dyn.train().requires_grad_(True)
    opt = torch.optim.AdamW(dyn.parameters(), lr=LR, betas=(0.9, 0.9), weight_decay=1e-4)
    average = {k: v.detach().clone() for k, v in dyn.state_dict().items()}
    autocast = training_autocast(torch.device('cpu'), 'auto')
    g = torch.Generator().manual_seed(0)
    t0, log = time.time(), []
    for step in range(steps):
        for group in opt.param_groups:
            group['lr'] = LR * min(1.0, (step + 1) / WARMUP)
        ep = torch.randint(0, E, (BATCH,), generator=g)
        idx = torch.randint(0, T - CLIP + 1, (BATCH,), generator=g)[:, None] + torch.arange(CLIP)
        tokens = tokens_all[ep[:, None], idx].long()
        latents = extra['latents'][ep[:, None], idx[:, :-1]].long()
        objects = extra['objects'][ep[:, None], idx]
        mask = dyn.random_mask(tokens, g)
        inputs = tokens.masked_fill(mask, c.mask_id)
        noisy = (torch.rand(tokens.shape, generator=g) < c.context_noise) & ~mask
        inputs = torch.where(noisy, torch.randint(0, c.codebook_size, tokens.shape, generator=g), inputs)
        with autocast:
            logits = dyn.frame_logits(inputs, dyn._actions_in(inputs, latents))
        changed = torch.zeros_like(mask)
        changed[:, 1:] = tokens[:, 1:] != tokens[:, :-1]
        near_object = objects.clone()
        near_object[:, 1:] |= objects[:, :-1]
        pushed = changed & near_object
        weight = mask.float() * (1.0 + (c.changed_weight - 1.0) * changed.float()) * (1.0 + (object_weight - 1.0) * pushed.float())
        nll = F.cross_entropy(rearrange(logits.float(), 'b t h w v -> b v t h w'), tokens, reduction='none')
        loss = (nll * weight).sum() / weight.sum().clamp_min(1.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(dyn.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            for k, v in dyn.state_dict().items():
                average[k].lerp_(v, 1 - min(EMA, (1 + step) / (10 + step))) if v.is_floating_point() else average[k].copy_(v)
            hit = logits.argmax(-1) == tokens
            log.append((loss.item(), hit[mask & changed].float().mean().item(), hit[mask & pushed].float().mean().item()))
        if (step + 1) % 100 == 0 or step == steps - 1:
            recent = np.nanmean(np.array(log[-100:]), 0)
            print(f'step {step + 1}: loss {recent[0]:.3f}, changed accuracy {recent[1]:.3f}, pushed-object accuracy {recent[2]:.3f}, '
                  f'{time.time() - t0:.0f} s', flush=True)
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(run_path, out, ignore=shutil.ignore_patterns('dynamics', 'logs'))
    dyn.eval()
    save_model(dyn, out / 'dynamics', average)
    print(f'wrote {out}/dynamics', flush=True)


if __name__ == '__main__':
    main()
