"""Vector quantizer with straight-through gradients, commitment loss, usage tracking and
restart of dead codes (the usual cure for LAM/tokenizer codebook collapse)."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import distributed as dist


class VectorQuantizer(nn.Module):
    def __init__(self, num_codes: int, code_dim: int, beta: float = 0.25,
                 usage_decay: float = 0.9, dead_fraction: float = 0.1):
        super().__init__()
        self.num_codes, self.code_dim, self.beta = num_codes, code_dim, beta
        self.usage_decay = usage_decay
        # Dead: picked less than this fraction of a uniform share (~20 idle steps).
        self.dead_threshold = dead_fraction / num_codes
        self.codebook = nn.Parameter(torch.randn(num_codes, code_dim) / code_dim**0.5)
        # Running share of assignments per code; a buffer so it is checkpointed. Starting at
        # zero makes the first training batch place every unpicked code on an encoder output
        # (a data-dependent init); random codes far from the outputs would never be picked.
        self.register_buffer("usage", torch.zeros(num_codes))

    def lookup(self, ids: torch.Tensor) -> torch.Tensor:
        return F.embedding(ids, self.codebook)

    def nearest(self, z_ND: torch.Tensor) -> torch.Tensor:
        distances = (
            z_ND.pow(2).sum(-1, keepdim=True) - 2 * z_ND @ self.codebook.t() + self.codebook.pow(2).sum(-1)
        )
        return distances.argmin(-1)

    def forward(self, z: torch.Tensor):
        """z [..., D] -> (quantized z with straight-through grads, ids [...], loss, metrics)."""
        flat_ND = z.reshape(-1, self.code_dim)
        ids_N = self.nearest(flat_ND.detach().float())
        codes_ND = self.lookup(ids_N).to(flat_ND.dtype)
        loss = F.mse_loss(codes_ND, flat_ND.detach()) + self.beta * F.mse_loss(flat_ND, codes_ND.detach())
        quantized_ND = flat_ND + (codes_ND - flat_ND).detach()
        counts = torch.bincount(ids_N, minlength=self.num_codes).float()
        probs = counts / counts.sum()
        if self.training:
            self.usage.mul_(self.usage_decay).add_(probs, alpha=1 - self.usage_decay)
            self._restart_dead_codes(flat_ND.detach())
        metrics = {"perplexity": torch.exp(-(probs * torch.log(probs + 1e-10)).sum()), "codes_used": (counts > 0).sum().float()}
        return quantized_ND.view_as(z), ids_N.view(z.shape[:-1]), loss, metrics

    @torch.no_grad()
    def _restart_dead_codes(self, batch_ND: torch.Tensor) -> None:
        """Move codes nobody picks exactly onto distinct encoder outputs from this batch, so
        each wins at least its own output even when the outputs barely differ (LAM collapse)."""
        dead = torch.nonzero(self.usage < self.dead_threshold).flatten()
        if len(dead) and len(batch_ND):
            order = torch.randperm(len(batch_ND), device=batch_ND.device)
            picks = order[torch.arange(len(dead), device=batch_ND.device) % len(batch_ND)]
            self.codebook.data[dead] = batch_ND[picks].to(self.codebook.dtype)
            self.usage[dead] = 1.0 / self.num_codes
        if dist.is_available() and dist.is_initialized():
            # Ranks restart independently; rank 0's codebook and usage win so replicas agree.
            dist.broadcast(self.codebook.data, 0)
            dist.broadcast(self.usage, 0)


# Level sets from the FSQ paper (Mentzer et al. 2023, table 1) and small ones for tests.
FSQ_LEVELS = {8: (2, 2, 2), 64: (4, 4, 4), 216: (6, 6, 6), 512: (8, 8, 8), 1000: (8, 5, 5, 5),
              1024: (8, 8, 4, 4), 4375: (7, 5, 5, 5, 5)}


class FiniteScalarQuantizer(nn.Module):
    """Finite scalar quantization (Mentzer et al. 2023): each of a few dimensions is bounded
    and rounded to a fixed number of levels; a code is the tuple of levels. No codebook to
    learn, so no commitment loss and no dead codes: every code stays reachable, and the
    tokenizer trains without the collapse-and-restart cycle of a learned codebook."""

    def __init__(self, num_codes: int):
        super().__init__()
        if num_codes not in FSQ_LEVELS:
            raise ValueError(f"FSQ supports codebook sizes {sorted(FSQ_LEVELS)}, got {num_codes}")
        self.num_codes = num_codes
        levels = torch.tensor(FSQ_LEVELS[num_codes])
        self.code_dim = len(levels)
        self.register_buffer("levels", levels, persistent=False)
        self.register_buffer("basis", torch.cumprod(torch.cat([torch.ones(1, dtype=torch.long), levels[:-1]]), 0),
                             persistent=False)

    def _bound(self, z: torch.Tensor) -> torch.Tensor:
        """Squash to (-L/2, L/2) per dimension, offset by half a level for even L so that
        rounding gives exactly L integer values."""
        half = (self.levels - 1) * (1 + 1e-3) / 2
        offset = (self.levels % 2 == 0).float() * 0.5
        return torch.tanh(z + torch.atanh(offset / half)) * half - offset

    def digits(self, ids: torch.Tensor) -> torch.Tensor:
        """ids [...] -> level index of each dimension [..., code_dim], in 0..L-1."""
        return (ids[..., None] // self.basis) % self.levels

    def lookup(self, ids: torch.Tensor) -> torch.Tensor:
        return (self.digits(ids) - self.levels // 2).float() / (self.levels // 2)

    @property
    def zero_id(self) -> int:
        """The id of the all-zero code."""
        return int((self.levels // 2 * self.basis).sum())

    def forward(self, z: torch.Tensor):
        """z [..., code_dim] -> (quantized z with straight-through grads, ids [...], loss 0, metrics)."""
        bounded = self._bound(z.float())
        rounded = bounded + (bounded.round() - bounded).detach()
        quantized = rounded / (self.levels // 2)
        ids = ((rounded.detach().round().long() + self.levels // 2) * self.basis).sum(-1)
        counts = torch.bincount(ids.flatten(), minlength=self.num_codes).float()
        probs = counts / counts.sum()
        metrics = {"perplexity": torch.exp(-(probs * torch.log(probs + 1e-10)).sum()), "codes_used": (counts > 0).sum().float()}
        return quantized.to(z.dtype), ids, z.new_zeros(()), metrics
