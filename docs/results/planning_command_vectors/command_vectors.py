# Exploratory record, not part of the package; run from the repository root with MUJOCO_GL=egl.
# Can the frozen dynamics imagine the arm's commands more precisely through action vectors learned
# end to end (its own masked-token loss on recorded commands) than through the adapter's latent codes?
import sys
import time

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, 'docs/results/planning_dynamics_x2_and_calibration')
sys.path.insert(0, 'docs/results/planning_probe_and_codes')
from action_effects import load, starts  # noqa: E402
from estimators import MEDIAN, hand_paths, picks_within  # noqa: E402

from genie_robot.data import EpisodeStore  # noqa: E402
from genie_robot.plan.execute import vocabulary_commands  # noqa: E402

STORES = ['out/quality/data/mujoco.h5', 'out/quality/data/explore.h5', 'out/quality/data/probe7.h5']
CACHE = 'out/quality/cmdvec_tokens.pt'
S = 3


def token_cache(wm):
    try:
        return torch.load(CACHE)
    except FileNotFoundError:
        pass
    tokens, commands = [], []
    t0 = time.time()
    for path in STORES:
        with EpisodeStore(path) as store:
            for i, ep in enumerate(store):
                tokens.append(wm.tokenize(ep.read_frames()).to(torch.int16))
                commands.append(torch.from_numpy(ep.read_actions().astype(np.float32)))
                if i % 50 == 0:
                    print(f'tokenize {path} {i}/{len(store)} {time.time() - t0:.0f}s', flush=True)
    data = {'tokens': torch.stack(tokens), 'commands': torch.stack(commands)}
    torch.save(data, CACHE)
    return data


class CommandVectors(nn.Module):
    """command [.., 4] -> action vector [.., D]: the adapter's code's embedding plus a learned residual."""

    def __init__(self, adapter, table, hidden=128):
        super().__init__()
        self.adapter, self.table = adapter, table
        D = table.weight.shape[1]
        self.mlp = nn.Sequential(nn.Linear(4, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, D))
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, commands):
        codes = torch.from_numpy(self.adapter.to_latent(commands.reshape(-1, 4).numpy())).view(commands.shape[:-1])
        return self.table(codes).detach() + self.mlp(commands)


class VectorOrId(nn.Module):
    def __init__(self, table):
        super().__init__()
        self.table = table

    def forward(self, x):
        return x if x.is_floating_point() else self.table(x)


def train(wm, adapter, data, steps, batch=8, clip=4, lr=2e-3, seed=0):
    dyn = wm.dynamics
    table = dyn.action_embed
    enc = CommandVectors(adapter, table)
    dyn.action_embed = VectorOrId(table)
    opt = torch.optim.AdamW(enc.mlp.parameters(), lr=lr, weight_decay=0.0)
    g = torch.Generator().manual_seed(seed)
    E, T = data['tokens'].shape[:2]
    c = dyn.config
    t0 = time.time()
    for step in range(steps):
        ep = torch.randint(0, E, (batch,), generator=g)
        st = torch.randint(0, T - clip + 1, (batch,), generator=g)
        idx = st[:, None] + torch.arange(clip)
        tokens = data['tokens'][ep[:, None], idx].long()
        cmds = data['commands'][ep[:, None], idx[:, :-1]]
        mask = dyn.random_mask(tokens, g)
        inputs = tokens.masked_fill(mask, c.mask_id)
        noisy = (torch.rand(tokens.shape, generator=g) < c.context_noise) & ~mask
        inputs = torch.where(noisy, torch.randint(0, c.codebook_size, tokens.shape, generator=g), inputs)
        vecs = torch.cat([table(torch.full((batch, 1), c.no_action_id)).detach(), enc(cmds)], 1)
        logits = dyn.frame_logits(inputs, vecs)
        changed = torch.zeros_like(mask)
        changed[:, 1:] = tokens[:, 1:] != tokens[:, :-1]
        weight = mask.float() * (1.0 + (c.changed_weight - 1.0) * changed.float())
        nll = nn.functional.cross_entropy(logits.permute(0, 4, 1, 2, 3), tokens, reduction='none')
        loss = (nll * weight).sum() / weight.sum().clamp_min(1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 50 == 0 or step == steps - 1:
            with torch.no_grad():
                hit = (logits.argmax(-1) == tokens)[mask & changed].float().mean()
            print(f'step {step} loss {loss.item():.4f} changed_acc {hit:.3f} {time.time() - t0:.0f}s', flush=True)
    dyn.action_embed = table
    return enc


def extended_wm(wm, vectors_KD):
    """The world model with K extra action ids (num_actions + 1 + k) imagined as the given vectors."""
    dyn = wm.dynamics
    table = dyn.action_embed
    ext = nn.Embedding(table.num_embeddings + len(vectors_KD), table.embedding_dim)
    ext.weight.data = torch.cat([table.weight.data, vectors_KD.detach()])
    dyn.action_embed = ext
    dyn._check = lambda *a: None
    wm.num_actions = table.num_embeddings + len(vectors_KD)
    return table.num_embeddings


def evaluate(wm, probe, world, sim, ids, cmds, label):
    acts = np.repeat(np.asarray(ids)[:, None], S, 1)
    est, trues = [], []
    for frame, start, p0, _ in starts('out/quality/data/val32.h5', range(12), world, wm, probe):
        im = wm.imagine(frame, acts, None, 0, MEDIAN)
        r = np.stack([probe.predict(im.frames[:, s])['hand'] for s in range(S)], 1)
        est.append(r - r[0:1] + p0)
        trues.append(hand_paths(sim, start, cmds))
    est, trues = np.stack(est), np.stack(trues)
    err = np.linalg.norm(est - trues, axis=-1) * 100
    ok = picks_within(est, trues)
    print(f'{label}: anchored hand error after 1/2/3 actions {np.round(err.mean((0, 1)), 2)} cm; '
          f'picks within 3 cm 1/2/3: {np.round(ok.mean((0, 2)), 2)}; per behaviour err1 {np.round(err[:, :, 0].mean(0), 1)}', flush=True)


def main():
    run, steps = sys.argv[1], int(sys.argv[2])
    torch.manual_seed(0)
    wm, ad, probe, world, sim = load(run)
    data = token_cache(wm)
    print({k: tuple(v.shape) for k, v in data.items()}, flush=True)
    cmds = vocabulary_commands('behaviours')
    enc = train(wm, ad, data, steps)
    enc.eval()
    with torch.no_grad():
        learned = enc(torch.from_numpy(cmds))
        base = wm.dynamics.action_embed(torch.from_numpy(ad.to_latent(cmds)))
    torch.save({'learned': learned, 'mlp': enc.mlp.state_dict()}, 'out/quality/cmdvec_learned.pt')
    first = extended_wm(wm, torch.cat([base, learned]))
    evaluate(wm, probe, world, sim, first + np.arange(9), cmds, 'adapter codes')
    evaluate(wm, probe, world, sim, first + 9 + np.arange(9), cmds, f'learned vectors ({steps} steps)')


if __name__ == '__main__':
    main()
