"""Video tokenizer (ST-ViViT VQ-VAE): frames -> discrete tokens [B, T, h, w] -> frames.

Causal in time (z_t depends on x_1..t only), so tokenizing a prompt once and appending
generated frames later gives the same tokens as tokenizing the whole video.

The paper's encoder attends over the whole clip. With a fixed camera that makes codes flicker:
a static patch's code depends on every moving pixel in the clip, and most token changes
between frames of robot video are such flicker (docs/experiments/small_recipe.md). Our presets encode
each frame on its own with attention limited to a patch's neighbours (`enc_temporal=False`,
`enc_window=1`), so a token changes only near pixels that changed, and decode each frame on its
own too (`dec_temporal=False`: single-frame batches give many more optimizer steps per CPU
minute). Per-frame tokens also let a dataset be tokenized once."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange

from genie_robot.errors import ConfigError
from genie_robot.models.config import PixelModelConfig
from genie_robot.models.patches import patchify, to_unit, unpatchify
from genie_robot.models.stage import Stage, StepOutput
from genie_robot.nn import STTransformer, TemporalKV, VectorQuantizer
from genie_robot.nn.quantizer import FSQ_LEVELS, FiniteScalarQuantizer


@dataclass
class TokenizerConfig(PixelModelConfig):
    kind: ClassVar[str] = "tokenizer"
    may_be_zero: ClassVar[tuple[str, ...]] = ("enc_window",)
    presets: ClassVar[dict] = {
        "tiny": dict(image_size=16, patch=4, dim=32, enc_layers=1, dec_layers=1, heads=2, codebook_size=64, code_dim=3, max_frames=16,
                     enc_temporal=False, enc_window=1, dec_temporal=False, quantizer="fsq"),
        "small": dict(image_size=64, patch=4, dim=128, enc_layers=2, dec_layers=4, heads=4, codebook_size=512, code_dim=3, max_frames=16,
                      enc_temporal=False, enc_window=1, dec_temporal=False, quantizer="fsq"),
        "base": dict(image_size=64, patch=4, dim=512, enc_layers=4, dec_layers=8, heads=8, codebook_size=1024, code_dim=4,
                     max_frames=16, enc_temporal=False, enc_window=1, dec_temporal=False, quantizer="fsq"),
        # Paper appendix (CoinRun case study) and full scale (200M), with the paper's clip-wide
        # encoder: documentation / GPU use.
        "coinrun": dict(image_size=64, patch=4, dim=512, enc_layers=8, dec_layers=8, heads=8, codebook_size=1024, code_dim=32,
                        max_frames=16),
        "paper": dict(image_size=160, patch=4, dim=512, enc_layers=12, dec_layers=20, dec_dim=1024, heads=8, dec_heads=16,
                      codebook_size=1024, code_dim=32, max_frames=16),
    }
    image_size: int = 64
    patch: int = 4
    dim: int = 128
    enc_layers: int = 3
    dec_layers: int = 4
    heads: int = 4
    codebook_size: int = 512
    code_dim: int = 32
    max_frames: int = 16
    dec_dim: int | None = None  # decoder width; defaults to `dim`
    dec_heads: int | None = None
    beta: float = 0.25
    qk_norm: bool = True
    enc_temporal: bool = True  # False: each frame encoded on its own
    enc_window: int = 0  # > 0: encoder attention limited to patches this close (0 = whole frame)
    dec_temporal: bool = True  # False: each frame decoded on its own
    quantizer: str = "vq"  # vq (learned codebook) | fsq (finite scalar levels; code_dim = number of levels)

    def validate(self) -> None:
        super().validate()
        dec_dim, dec_heads = self.dec_dim or self.dim, self.dec_heads or self.heads
        if dec_dim % dec_heads:
            raise ConfigError(f"tokenizer config: decoder width {dec_dim} is not divisible by its heads {dec_heads}")
        if self.quantizer not in ("vq", "fsq"):
            raise ConfigError(f"tokenizer config: quantizer must be 'vq' or 'fsq', got {self.quantizer!r}")
        if self.quantizer == "fsq":
            if self.codebook_size not in FSQ_LEVELS:
                raise ConfigError(f"tokenizer config: FSQ needs a codebook size in {sorted(FSQ_LEVELS)}, got {self.codebook_size}")
            if self.code_dim != len(FSQ_LEVELS[self.codebook_size]):
                raise ConfigError(f"tokenizer config: FSQ with {self.codebook_size} codes has code_dim "
                                  f"{len(FSQ_LEVELS[self.codebook_size])} (levels {FSQ_LEVELS[self.codebook_size]}), got {self.code_dim}")


class VideoTokenizer(nn.Module, Stage):
    def __init__(self, config: TokenizerConfig):
        super().__init__()
        self.config = c = config
        dec_dim, dec_heads = c.dec_dim or c.dim, c.dec_heads or c.heads
        patch_dim = c.patch * c.patch * 3
        self.embed = nn.Linear(patch_dim, c.dim)
        self.encoder = STTransformer(c.dim, c.enc_layers, c.heads, c.max_frames, c.tokens_per_frame, c.qk_norm,
                                     temporal=c.enc_temporal, window=c.enc_window)
        self.to_code = nn.Linear(c.dim, c.code_dim)
        self.quantizer = (FiniteScalarQuantizer(c.codebook_size) if c.quantizer == "fsq"
                          else VectorQuantizer(c.codebook_size, c.code_dim, c.beta))
        self.from_code = nn.Linear(c.code_dim, dec_dim)
        self.decoder = STTransformer(dec_dim, c.dec_layers, dec_heads, c.max_frames, c.tokens_per_frame, c.qk_norm,
                                     temporal=c.dec_temporal)
        self.to_pixels = nn.Linear(dec_dim, patch_dim)

    def _encode(self, video_BTHWC: torch.Tensor):
        c = self.config
        if tuple(video_BTHWC.shape[2:]) != (c.image_size, c.image_size, 3):
            raise ValueError(
                f"tokenizer expects frames of {c.image_size}x{c.image_size}x3, got {tuple(video_BTHWC.shape[2:])}"
            )
        x_BTSD = self.embed(patchify(to_unit(video_BTHWC), c.patch))
        return self.quantizer(self.to_code(self.encoder(x_BTSD)))

    @torch.no_grad()
    def encode(self, video_BTHWC: torch.Tensor) -> torch.Tensor:
        """uint8 or [0,1] frames [B, T, H, W, 3] -> token ids [B, T, h, w]."""
        _, ids_BTS, _, _ = self._encode(video_BTHWC)
        return rearrange(ids_BTS, "b t (h w) -> b t h w", h=self.config.grid)

    @torch.no_grad()
    def encode_windows(self, video_BTHWC: torch.Tensor) -> torch.Tensor:
        """`encode` for videos of any length, in windows of the model's length -> ids [B, T, h, w]."""
        window = self.config.max_frames
        return torch.cat([self.encode(video_BTHWC[:, s : s + window]) for s in range(0, video_BTHWC.shape[1], window)], dim=1)

    def decode_codes(self, codes_BTSC: torch.Tensor, cache: TemporalKV | None = None):
        """Quantized codes -> frames in [0, 1]; with `cache`, the frames continue the cached ones
        (and join them)."""
        c = self.config
        h_BTSD = self.decoder(self.from_code(codes_BTSC), cache=cache)
        return torch.sigmoid(unpatchify(self.to_pixels(h_BTSD), c.patch, c.image_size))

    @torch.no_grad()
    def decode(self, ids_BThw: torch.Tensor, cache: TemporalKV | None = None):
        """token ids [B, T, h, w] -> frames in [0, 1], [B, T, H, W, 3] (decoder causal in time)."""
        codes = self.quantizer.lookup(rearrange(ids_BThw, "b t h w -> b t (h w)"))
        return self.decode_codes(codes, cache)

    def new_decoder_cache(self, batch: int) -> TemporalKV:
        """An empty decoder cache for frame-by-frame decoding of `batch` rows."""
        return self.decoder.empty_cache(batch, self.to_pixels.weight.device, self.to_pixels.weight.dtype)

    def forward(self, batch: dict) -> StepOutput:
        video = batch["video"]
        quantized_BTSC, _, vq_loss, vq_metrics = self._encode(video)
        recon_BTHWC = self.decode_codes(quantized_BTSC)
        target = to_unit(video)
        recon_loss = F.mse_loss(recon_BTHWC, target)
        psnr = -10 * torch.log10(F.mse_loss(recon_BTHWC.detach().clamp(0, 1), target) + 1e-10)
        loss = recon_loss + vq_loss
        return StepOutput(loss, {"loss": loss.detach(), "recon_mse": recon_loss.detach(), "psnr": psnr, **vq_metrics},
                          {"target": target, "output": recon_BTHWC.detach()})
