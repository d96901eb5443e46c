"""Change tokenizer (Delta-IRIS style, Micheli et al. 2024): frame t+1 as a few tokens of what
changed since frame t.

The video tokenizer spends 256 tokens on every frame, nearly all of them repeating the one
before; a push changes under 1% of them, and the dynamics model never learned one at the
demo's budget (docs/experiments/change_tokens.md). Here the encoder reads (x_t, x_t+1) and
emits a small grid of FSQ tokens (4x4 at 64x64: one per 16x16 pixels), and a convolutional
decoder renders x_t+1 from x_t, those tokens and the latent action a_t. Copying is the
decoder's job, so the tokens and the dynamics model that predicts them are about change only,
and a dynamics step costs a sixteenth of the attention.

A generated frame is the decoder's own output, and its errors would compound over a rollout if
the decoder only ever started from real frames. Its training therefore unrolls the tokenizer's
*reading* of each clip: x^_0 = x_0, x^_t+1 = Dec(x^_t, Enc(x_t, x_t+1), a_t). The tokens say what
changed between the true frames, so where nothing moved they say so and the dynamics model can
predict them; the decoder learns to carry its own last frame on, as it must in a rollout. (An
encoder that read x_t+1 against x^_t instead spent every token on correcting the decoder's last
errors, near 9 bits of 10 a token everywhere, which no dynamics model could predict:
docs/experiments/change_tokens.md.) The loss weighs pixels that changed (`change_weight`),
relative to handing x^_t on unchanged, as the LAM's loss is relative to copying: a pushed object
is a few pixels of a frame. Cells where no pixel changed read as the all-zero code (`idle_cells`):
left free, the encoder spent them on hints for the decoder's drift, which the dynamics model could
only guess (docs/experiments/idle_cells.md)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange

from genie_robot.errors import ConfigError
from genie_robot.models.config import ModelConfig
from genie_robot.models.patches import to_unit
from genie_robot.models.stage import Stage, StepOutput
from genie_robot.nn.quantizer import FSQ_LEVELS, FiniteScalarQuantizer

CHANGED = 0.02  # a pixel changed where a channel moved more than this (in [0, 1])
FRAME_DOWNSAMPLING = 3  # the decoder reads x_t at 1/2, 1/4 and 1/8 of its size


@dataclass
class ChangeTokenizerConfig(ModelConfig):
    kind: ClassVar[str] = "change_tokenizer"
    presets: ClassVar[dict] = {
        "tiny": dict(image_size=16, grid=2, width=16, codebook_size=64, num_actions=8, idle_cells=True),
        "small": dict(image_size=64, grid=4, width=48, codebook_size=1000, num_actions=8, idle_cells=True),
        # At the video models' larger scales, for GPUs; never trained here.
        "base": dict(image_size=64, grid=4, width=96, codebook_size=1000, num_actions=8, idle_cells=True),
        "coinrun": dict(image_size=64, grid=4, width=96, codebook_size=1000, num_actions=6, idle_cells=True),
        "paper": dict(image_size=160, grid=10, width=128, codebook_size=1000, num_actions=8, idle_cells=True),
    }
    image_size: int = 64
    grid: int = 4  # change tokens per side of a frame
    width: int = 48  # channels of the convolutions (twice that at the coarsest scales)
    codebook_size: int = 1000  # FSQ codes per token
    num_actions: int = 8  # the LAM's latent actions, which the decoder reads
    change_weight: float = 20.0  # loss weight of pixels that change, over the rest
    # Cells where no pixel changed get the idle code, so tokens carry nothing where nothing moved.
    # Off for checkpoints saved before it existed (their configs lack it); the presets turn it on.
    idle_cells: bool = False

    def validate(self) -> None:
        super().validate()
        if self.codebook_size not in FSQ_LEVELS:
            raise ConfigError(f"change_tokenizer config: codebook_size must be one of {sorted(FSQ_LEVELS)}, got {self.codebook_size}")
        scale = self.image_size // self.grid
        if self.image_size % self.grid or scale & (scale - 1) or scale < 2**FRAME_DOWNSAMPLING:
            raise ConfigError(f"change_tokenizer config: image_size / grid must be a power of two >= {2**FRAME_DOWNSAMPLING}, "
                              f"got {self.image_size} / {self.grid}")
        if self.width % 8:
            raise ConfigError(f"change_tokenizer config: width must be a multiple of 8 (group norm), got {self.width}")
        if self.change_weight < 0:
            raise ConfigError(f"change_tokenizer config: change_weight must be >= 0, got {self.change_weight}")

    @property
    def encoder_downsampling(self) -> int:
        return (self.image_size // self.grid).bit_length() - 1


def conv_block(channels_in: int, channels_out: int, up: bool = False) -> nn.Sequential:
    """Halve (or double) the resolution."""
    conv = nn.ConvTranspose2d if up else nn.Conv2d
    return nn.Sequential(conv(channels_in, channels_out, 4, 2, 1), nn.GroupNorm(8, channels_out), nn.GELU())


class Residual(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, 1, 1), nn.GroupNorm(8, channels), nn.GELU(),
                                  nn.Conv2d(channels, channels, 3, 1, 1))

    def forward(self, x):
        return x + self.body(x)


def channels_first(frames_BHWC: torch.Tensor) -> torch.Tensor:
    """uint8 or [0, 1] frames [B, H, W, 3] -> float [B, 3, H, W] in [0, 1]."""
    return rearrange(to_unit(frames_BHWC), "b h w c -> b c h w")


def to_frames(pixels_BCHW: torch.Tensor) -> torch.Tensor:
    """Decoder output -> the uint8 frames [B, H, W, 3] a rollout hands on."""
    return rearrange((pixels_BCHW.clamp(0, 1) * 255).round().to(torch.uint8), "b c h w -> b h w c")


def changed_pixels(now_BCHW: torch.Tensor, after_BCHW: torch.Tensor) -> torch.Tensor:
    """1 where any channel moved more than CHANGED, else 0: [B, 1, H, W]."""
    return ((after_BCHW - now_BCHW).abs().amax(1, keepdim=True) > CHANGED).float()


def changed_cells(now_BCHW: torch.Tensor, after_BCHW: torch.Tensor, cell: int) -> torch.Tensor:
    """True for each cell x cell block where any pixel changed: [B, H / cell, W / cell]."""
    return F.max_pool2d(changed_pixels(now_BCHW, after_BCHW), cell)[:, 0] > 0


class ChangeTokenizer(nn.Module, Stage):
    frozen_stages = ("lam",)

    def __init__(self, config: ChangeTokenizerConfig):
        super().__init__()
        self.config = c = config
        self.quantizer = FiniteScalarQuantizer(c.codebook_size)
        wide = 2 * c.width
        # Encoder: x_t, x_t+1 and their difference, down to the token grid.
        widths = [9] + [c.width] * (c.encoder_downsampling - 2) + [wide] * 2
        self.encoder = nn.Sequential(*(conv_block(a, b) for a, b in zip(widths, widths[1:])), Residual(wide),
                                     nn.Conv2d(wide, self.quantizer.code_dim, 1))
        # Decoder: a U-Net on x_t whose bottleneck (1/8 size) adds the tokens and the action.
        self.frame_down = nn.ModuleList([conv_block(3, c.width), conv_block(c.width, c.width), conv_block(c.width, wide)])
        self.from_tokens = nn.Conv2d(self.quantizer.code_dim, wide, 1)
        self.action_embed = nn.Embedding(c.num_actions, wide)
        self.middle = nn.Sequential(Residual(wide), Residual(wide))
        self.frame_up = nn.ModuleList([conv_block(wide, c.width, up=True), conv_block(2 * c.width, c.width, up=True),
                                       conv_block(2 * c.width, c.width, up=True)])
        self.to_change = nn.Conv2d(c.width, 3, 3, 1, 1)
        nn.init.zeros_(self.to_change.weight)  # start as "copy x_t"
        nn.init.zeros_(self.to_change.bias)

    def _check(self, frames_BHWC: torch.Tensor) -> None:
        size = self.config.image_size
        if tuple(frames_BHWC.shape[1:]) != (size, size, 3):
            raise ValueError(f"change tokenizer expects frames of {size}x{size}x3, got {tuple(frames_BHWC.shape[1:])}")

    def quantize(self, frame_BHWC: torch.Tensor, next_BHWC: torch.Tensor):
        """(x_t, x_t+1) -> (quantized codes [B, C, g, g] with straight-through gradients, ids [B, g, g])."""
        self._check(frame_BHWC)
        self._check(next_BHWC)
        now, after = channels_first(frame_BHWC), channels_first(next_BHWC)
        z_BhwC = rearrange(self.encoder(torch.cat([now, after, after - now], dim=1)), "b c h w -> b h w c")
        codes_BhwC, ids_Bhw, _, _ = self.quantizer(z_BhwC)
        if self.config.idle_cells:
            moved_Bhw = changed_cells(now, after, self.config.image_size // self.config.grid)
            codes_BhwC = torch.where(moved_Bhw[..., None], codes_BhwC, torch.zeros_like(codes_BhwC))
            ids_Bhw = torch.where(moved_Bhw, ids_Bhw, self.quantizer.zero_id)
        return rearrange(codes_BhwC, "b h w c -> b c h w"), ids_Bhw

    def render(self, frame_BHWC: torch.Tensor, codes_BCgg: torch.Tensor, actions_B: torch.Tensor) -> torch.Tensor:
        """x_t, its change codes and a_t -> x_t+1 [B, 3, H, W], about [0, 1] (unclamped)."""
        self._check(frame_BHWC)
        if actions_B.numel() and (actions_B.min() < 0 or actions_B.max() >= self.config.num_actions):
            raise ValueError(f"latent actions must lie in 0..{self.config.num_actions - 1}, "
                             f"got {actions_B.min().item()}..{actions_B.max().item()}")
        now = channels_first(frame_BHWC)
        skips, h = [], now
        for down in self.frame_down:
            h = down(h)
            skips.append(h)
        tokens = F.interpolate(self.from_tokens(codes_BCgg), size=h.shape[-2:], mode="nearest")
        h = self.middle(h + tokens + self.action_embed(actions_B)[:, :, None, None])
        for up, skip in zip(self.frame_up, [None, skips[1], skips[0]]):
            h = up(h if skip is None else torch.cat([h, skip], dim=1))
        return now + self.to_change(h)

    @torch.no_grad()
    def encode(self, frame_BHWC: torch.Tensor, next_BHWC: torch.Tensor) -> torch.Tensor:
        """Change token ids [B, g, g] that take x_t to x_t+1."""
        return self.quantize(frame_BHWC, next_BHWC)[1]

    @torch.no_grad()
    def decode(self, frame_BHWC: torch.Tensor, ids_Bgg: torch.Tensor, actions_B: torch.Tensor) -> torch.Tensor:
        """x_t (uint8), change token ids and a_t -> x_t+1 as uint8 [B, H, W, 3]."""
        codes_BCgg = rearrange(self.quantizer.lookup(ids_Bgg), "b h w c -> b c h w")
        return to_frames(self.render(frame_BHWC, codes_BCgg, actions_B))

    @torch.no_grad()
    def read(self, video_BTHWC: torch.Tensor, actions_BT: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The tokenizer's reading of a video: (frames x^ [B, T, H, W, 3] uint8, x^_0 = x_0, each
        next one decoded from the last; change ids [B, T-1, g, g], ids[:, t] read from x_t -> x_t+1)."""
        B, T, g = *video_BTHWC.shape[:2], self.config.grid
        pairs = rearrange(video_BTHWC[:, :-1], "b t h w c -> (b t) h w c"), rearrange(video_BTHWC[:, 1:], "b t h w c -> (b t) h w c")
        ids_BTgg = self.encode(*pairs).view(B, T - 1, g, g) if T > 1 else video_BTHWC.new_zeros((B, 0, g, g), dtype=torch.long)
        frames = [video_BTHWC[:, 0]]
        for t in range(T - 1):
            frames.append(self.decode(frames[-1], ids_BTgg[:, t], actions_BT[:, t]))
        return torch.stack(frames, dim=1), ids_BTgg

    def training_inputs(self, batch: dict, frozen: dict) -> dict:
        """Clips (the reading unrolls over each) and the LAM's latent actions (cached by the trainer, or computed here)."""
        video = batch["video"]
        actions = batch["latents"] if "latents" in batch else frozen["lam"].infer_actions(video)
        return {"video": video, "actions": actions}

    def forward(self, batch: dict) -> StepOutput:
        """The reading unrolled over the clip: each step decodes the true change from the frame
        the last step decoded (handed on as uint8, as a rollout does, with no gradient)."""
        video_BTHWC, actions_BT = batch["video"], batch["actions"]
        frame = video_BTHWC[:, 0]
        losses, errors, outputs = [], [], []
        for t in range(video_BTHWC.shape[1] - 1):
            codes, ids = self.quantize(video_BTHWC[:, t], video_BTHWC[:, t + 1])
            predicted = self.render(frame, codes, actions_BT[:, t])
            now, target = channels_first(frame), channels_first(video_BTHWC[:, t + 1])
            weight = 1.0 + self.config.change_weight * changed_pixels(channels_first(video_BTHWC[:, t]), target)
            copy_error = (weight * (target - now) ** 2).mean().clamp_min(1e-6)
            losses.append((weight * (predicted - target) ** 2).mean() / copy_error)
            errors.append(F.mse_loss(predicted.detach().clamp(0, 1), target))
            outputs.append(predicted.detach())
            frame = to_frames(predicted.detach())
        loss = torch.stack(losses).mean()
        psnr = -10 * torch.log10(torch.stack(errors) + 1e-10)
        usage = torch.bincount(ids.flatten(), minlength=self.config.codebook_size)
        metrics = {"loss": loss.detach(), "psnr": psnr.mean(), "psnr_last": psnr[-1], "codes_used": (usage > 0).sum().float()}
        output = rearrange(torch.stack(outputs, dim=1).clamp(0, 1), "b t c h w -> b t h w c")
        return StepOutput(loss, metrics, {"target": to_unit(video_BTHWC[:, 1:]), "output": output})
