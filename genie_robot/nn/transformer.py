"""The spatiotemporal (ST) transformer shared by all three Genie models.

A block attends spatially over the S = h*w tokens of one frame, then causally in time over
the T steps of one token position, then applies one feed-forward layer (Genie, section 2.1).
Memory grows linearly in T. Temporal attention is causal, so the keys/values of past frames
never change: `TemporalKV` holds them for frame-by-frame generation, in buffers allocated once
for the model's whole window and written in place (a step copies only the new frame's keys).

A stack can also be purely spatial (`temporal=False`, each frame on its own) and attend only
to a local neighbourhood (`window`): the tokenizer's encoder uses both, so that a patch whose
surroundings did not change keeps its code from frame to frame.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange


class RMSNorm(nn.Module):
    """The gain and epsilon of an RMS norm; `Attention.project` applies q's and k's together."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))


class Attention(nn.Module):
    """Multi-head self-attention over the second-to-last axis, with optional QK-norm
    (stabilises bf16 training, as in the paper's dynamics model)."""

    def __init__(self, dim: int, heads: int, qk_norm: bool = True):
        super().__init__()
        if dim % heads:
            raise ValueError(f"model width {dim} must be divisible by heads {heads}")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.proj = nn.Linear(dim, dim, bias=False)
        head_dim = dim // heads
        self.q_norm = RMSNorm(head_dim) if qk_norm else nn.Identity()
        self.k_norm = RMSNorm(head_dim) if qk_norm else nn.Identity()

    def project(self, x_NLD: torch.Tensor):
        qkv_NL3HD = rearrange(self.qkv(x_NLD), "n l (three h d) -> n l three h d", three=3, h=self.heads)
        qk_NL2HD = qkv_NL3HD[:, :, :2]
        if isinstance(self.q_norm, RMSNorm):
            # q and k normalised in one call (the norm is a chain of small kernels on CPU).
            weight_21D = torch.stack([self.q_norm.weight, self.k_norm.weight]).to(qk_NL2HD.dtype)[:, None]
            qk_NL2HD = F.rms_norm(qk_NL2HD, weight_21D.shape[-1:], None, self.q_norm.eps) * weight_21D
        q, k = rearrange(qk_NL2HD, "n l two h d -> two n h l d")
        return q, k, rearrange(qkv_NL3HD[:, :, 2], "n l h d -> n h l d")

    def forward(self, x_NLD: torch.Tensor, causal: bool = False, kv_buffers=None, start: int = 0, attn_mask=None):
        """kv_buffers: (k, v) [N, heads, capacity, d] holding positions < start; this call's keys
        and values are written at start.. and attention runs over all positions so far.
        attn_mask: bool [L, L], True = may attend."""
        q, k, v = self.project(x_NLD)
        if kv_buffers is not None:
            stop = start + k.shape[2]
            kv_buffers[0][:, :, start:stop] = k
            kv_buffers[1][:, :, start:stop] = v
            k, v = kv_buffers[0][:, :, :stop], kv_buffers[1][:, :, :stop]
        if causal and q.shape[2] > 1:
            # Queries are the last L positions of the (past + current) sequence.
            L, total = q.shape[2], k.shape[2]
            attn_mask = torch.ones(L, total, dtype=torch.bool, device=q.device).tril(total - L)
        if q.shape[2] == 1 and attn_mask is None:
            # One query per sequence (a generated frame attending over the cached ones): products
            # and sums take half the time of batched 1 x T matmuls up to ~12 cached frames (these
            # pay a set-up per sequence and copy a cache view that is not contiguous); at 16 the two
            # take about as long.
            scores_NHT1 = (q * k).sum(-1, keepdim=True) * q.shape[-1] ** -0.5
            out = (scores_NHT1.softmax(-2) * v).sum(-2, keepdim=True)
        elif q.dtype == torch.bfloat16 and q.device.type == "cpu" and torch.is_grad_enabled():
            # bf16 training on CPU: the fused kernel's bf16 backward is ~4x slower than its fp32
            # one, while bf16 matmuls are ~2.5x faster.
            scores = q @ k.transpose(-1, -2) * q.shape[-1] ** -0.5
            if attn_mask is not None:
                scores = scores.masked_fill(~attn_mask, float("-inf"))
            out = scores.softmax(-1).to(v.dtype) @ v
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        return self.proj(rearrange(out, "n h l d -> n l (h d)"))


class FeedForward(nn.Module):
    def __init__(self, dim: int, mult: int = 4):
        super().__init__()
        self.up = nn.Linear(dim, mult * dim)
        self.down = nn.Linear(mult * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.gelu(self.up(x)))


def local_mask(grid: int, window: int) -> torch.Tensor:
    """Bool [S, S] over a grid x grid frame: True where two tokens are at most `window` apart
    in both rows and columns."""
    row, col = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    row, col = row.flatten(), col.flatten()
    return ((row[:, None] - row).abs() <= window) & ((col[:, None] - col).abs() <= window)


class STBlock(nn.Module):
    def __init__(self, dim: int, heads: int, qk_norm: bool = True, causal_time: bool = True, temporal: bool = True):
        super().__init__()
        self.causal_time, self.temporal = causal_time, temporal
        self.norm_space = nn.LayerNorm(dim)
        self.space = Attention(dim, heads, qk_norm)
        if temporal:
            self.norm_time = nn.LayerNorm(dim)
            self.time = Attention(dim, heads, qk_norm)
        self.norm_ff = nn.LayerNorm(dim)
        self.ff = FeedForward(dim)

    def forward(self, x_BTSD: torch.Tensor, kv_buffers=None, start: int = 0, space_mask=None):
        B = x_BTSD.shape[0]
        x_NSD = rearrange(x_BTSD, "b t s d -> (b t) s d")
        x_NSD = x_NSD + self.space(self.norm_space(x_NSD), attn_mask=space_mask)
        if not self.temporal:
            x_NSD = x_NSD + self.ff(self.norm_ff(x_NSD))
            return rearrange(x_NSD, "(b t) s d -> b t s d", b=B)
        x_NTD = rearrange(x_NSD, "(b t) s d -> (b s) t d", b=B)
        x_NTD = x_NTD + self.time(self.norm_time(x_NTD), causal=self.causal_time, kv_buffers=kv_buffers, start=start)
        x_NTD = x_NTD + self.ff(self.norm_ff(x_NTD))
        return rearrange(x_NTD, "(b s) t d -> b t s d", b=B)


@dataclass
class TemporalKV:
    """Per-block temporal keys/values of the frames seen so far: (k, v) buffers of
    [B*S, heads, capacity, d] of which the first `length` frames are filled (None for every
    block of a stack without temporal attention: there is nothing to keep)."""

    layers: list
    length: int = 0

    def repeat_batch(self, copies: int) -> TemporalKV:
        """The cache of a batch-1 run, copied for `copies` rows (rows are batch-major)."""
        return TemporalKV([None if kv is None else (kv[0].repeat(copies, 1, 1, 1), kv[1].repeat(copies, 1, 1, 1))
                           for kv in self.layers], self.length)


class STTransformer(nn.Module):
    """A stack of ST blocks on [B, T, S, D] token grids with learned space/time positions."""

    def __init__(self, dim: int, depth: int, heads: int, max_frames: int, tokens_per_frame: int,
                 qk_norm: bool = True, causal_time: bool = True, temporal: bool = True, window: int = 0):
        """temporal=False: frames are independent (no temporal attention, no time positions).
        window > 0: spatial attention only within `window` tokens (needs a square token grid)."""
        super().__init__()
        self.pos_space = nn.Parameter(torch.randn(tokens_per_frame, dim) * 0.02)
        self.pos_time = nn.Parameter(torch.randn(max_frames, dim) * 0.02) if temporal else None
        self.blocks = nn.ModuleList(STBlock(dim, heads, qk_norm, causal_time, temporal) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.max_frames = max_frames
        if window:
            grid = round(tokens_per_frame**0.5)
            if grid * grid != tokens_per_frame:
                raise ValueError(f"a local attention window needs a square token grid, got {tokens_per_frame} tokens")
            self.register_buffer("space_mask", local_mask(grid, window), persistent=False)
        else:
            self.space_mask = None

    def empty_cache(self, batch: int, device, dtype=torch.float32) -> TemporalKV:
        """Buffers for `batch` rows over the whole window, filled by `forward(..., cache=)`."""
        heads = self.blocks[0].space.heads
        shape = (batch * self.pos_space.shape[0], heads, self.max_frames, self.pos_space.shape[1] // heads)
        return TemporalKV([(torch.empty(shape, device=device, dtype=dtype), torch.empty(shape, device=device, dtype=dtype))
                           if block.temporal else None for block in self.blocks])

    def forward(self, x_BTSD: torch.Tensor, cache: TemporalKV | None = None, commit: bool = True,
                time_offset: torch.Tensor | None = None):
        """With `cache`, x holds only the new frames, which follow the cached ones in time; their
        keys and values are written into the cache, and it keeps them (`length` grows) when
        `commit`. Without, a scratch write: the next call overwrites it (MaskGIT's passes).
        `time_offset` (a 0-d index tensor, no cache): the frames' first position in time, for a
        training clip shorter than the window placed anywhere in it (offset + T <= max_frames)."""
        T = x_BTSD.shape[1]
        offset = cache.length if cache is not None else 0
        if self.pos_time is not None and offset + T > self.max_frames:
            raise ValueError(f"{offset + T} frames exceed the model's temporal window of {self.max_frames}")
        x_BTSD = x_BTSD + self.pos_space
        if self.pos_time is not None and time_offset is not None:
            # Gathered by an index tensor: compiled code serves every offset without recompiling.
            x_BTSD = x_BTSD + self.pos_time[time_offset + torch.arange(T, device=x_BTSD.device), None]
        elif self.pos_time is not None:
            x_BTSD = x_BTSD + self.pos_time[offset : offset + T, None]
        for i, block in enumerate(self.blocks):
            x_BTSD = block(x_BTSD, kv_buffers=cache.layers[i] if cache is not None else None, start=offset,
                           space_mask=self.space_mask)
        if cache is not None and commit:
            cache.length += T
        return self.norm(x_BTSD)
