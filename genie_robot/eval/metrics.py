"""Frame fidelity (PSNR, SSIM) and controllability (Delta_t PSNR) as in the Genie paper.

Frames are uint8 [..., H, W, 3] arrays (or floats in [0, 1]); figures are per frame and
averaged by the caller, so a horizon curve and a mean come from the same numbers."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from genie_robot.errors import InputError
from genie_robot.models.inputs import as_video
from genie_robot.sampling import SamplingConfig


def _unit(frames) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(frames))
    return x.double() / 255.0 if x.dtype == torch.uint8 else x.double()


def mse(a, b) -> np.ndarray:
    """Per-frame mean squared error of [..., H, W, C] frames (uint8 scaled by 255 to [0, 1])."""
    return (_unit(a) - _unit(b)).pow(2).mean(dim=(-3, -2, -1)).numpy()


def psnr_of_mse(mse_values) -> np.ndarray:
    """PSNR in dB (peak 1.0); an exact match reads 100 dB instead of infinity."""
    return 10 * np.log10(1.0 / np.maximum(mse_values, 1e-10))


def psnr(a, b) -> np.ndarray:
    """Per-frame PSNR in dB of [..., H, W, C] frames (peak 1.0 after scaling uint8 by 255)."""
    return psnr_of_mse(mse(a, b))


def ssim(a, b, window: int = 11, sigma: float = 1.5) -> np.ndarray:
    """Per-frame SSIM (Wang et al. 2004: Gaussian window 11, sigma 1.5, K1 0.01, K2 0.03),
    averaged over pixels and channels; frames smaller than the window use a smaller one."""
    x, y = _unit(a), _unit(b)
    lead = x.shape[:-3]
    x = x.reshape(-1, *x.shape[-3:]).permute(0, 3, 1, 2)
    y = y.reshape(-1, *y.shape[-3:]).permute(0, 3, 1, 2)
    window = min(window, x.shape[-1], x.shape[-2])
    coords = torch.arange(window, dtype=torch.float64) - (window - 1) / 2
    g = torch.exp(-coords**2 / (2 * sigma**2))
    g = g / g.sum()
    kernel = (g[:, None] * g[None, :]).expand(x.shape[1], 1, window, window)
    blur = lambda t: F.conv2d(t, kernel, groups=x.shape[1])  # "valid" windows, as in the reference
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return ssim_map.mean(dim=(1, 2, 3)).reshape(lead).numpy()


def delta_psnr(wm, video, t: int = 4, seed: int = 0, sampling=None) -> dict:
    """Genie's controllability metric on one clip [>= t+1, H, W, 3]:
    Delta_t PSNR = PSNR(x_t, x^_t) - PSNR(x_t, x^'_t), where x^ is generated from x_0 with the
    latent actions the LAM infers from the ground truth and x^' with uniformly random ones.
    Also reported: the copy-first-frame baseline PSNR(x_t, x_0)."""
    video = as_video(video, wm.image_size, "evaluation clip")
    if len(video) < t + 1:
        raise InputError(f"Delta_t PSNR with t={t} needs clips of >= {t + 1} frames, got {len(video)}")
    video = video[: t + 1]
    inferred = wm.infer_actions(video)
    random_actions = np.random.default_rng(seed).integers(0, wm.num_actions, t)
    imagined = wm.imagine(video[:1], np.stack([inferred, random_actions]), seed=seed, sampling=sampling or SamplingConfig())
    truth = video[t]
    psnr_inferred, psnr_random = (float(psnr(truth, frames[-1])) for frames in imagined.frames)
    return {"psnr_inferred": psnr_inferred, "psnr_random": psnr_random,
            "delta_psnr": psnr_inferred - psnr_random, "copy_first_psnr": float(psnr(truth, video[0]))}


def token_stability(tokens_Thw, frames_THWC, patch: int, threshold: int = 8) -> dict:
    """How often tokens change between consecutive frames, against how often their patches'
    pixels do (any pixel moving by more than `threshold` levels of 255). `flicker` is the share
    of token changes where no pixel of the patch changed: code noise that no action explains
    and that the dynamics model would have to predict."""
    tokens = np.asarray(tokens_Thw)
    frames = np.asarray(frames_THWC).astype(np.int16)
    if len(tokens) != len(frames) or len(tokens) < 2:
        raise InputError(f"need >= 2 frames with one token grid each, got {len(frames)} frames and {len(tokens)} grids")
    token_changed = tokens[1:] != tokens[:-1]
    pixel_change = np.abs(np.diff(frames, axis=0)).max(-1)
    t, h, w = pixel_change.shape
    patch_changed = pixel_change.reshape(t, h // patch, patch, w // patch, patch).max(axis=(2, 4)) > threshold
    return {"token_change": float(token_changed.mean()), "patch_change": float(patch_changed.mean()),
            "flicker": float((token_changed & ~patch_changed).sum() / max(token_changed.sum(), 1))}
