import numpy as np
import pytest

from genie_robot.errors import InputError
from genie_robot.eval.metrics import delta_psnr, mse, psnr, psnr_of_mse, ssim
from genie_robot.models.run import Run
from genie_robot.sampling import SamplingConfig


def test_psnr_known_values():
    a = np.zeros((2, 8, 8, 3), np.uint8)
    b = a.copy()
    b[0] = 255  # mse 1 -> 0 dB
    b[1, :4] = 51  # half the pixels off by 0.2 -> mse 0.02 -> 16.99 dB
    np.testing.assert_allclose(psnr(a, b), [0.0, 10 * np.log10(1 / 0.02)], atol=1e-9)
    assert psnr(a[0], a[0]) == pytest.approx(100.0)  # identical frames: capped at 1e-10 mse


def test_psnr_of_the_mean_mse_is_not_dominated_by_an_exact_episode():
    truth = np.zeros((2, 8, 8, 3), np.uint8)
    guess = truth.copy()
    guess[1, :4] = 51  # episode 0 exact (100 dB), episode 1 mse 0.02 (16.99 dB)
    per_episode = psnr(truth, guess)
    assert per_episode.mean() == pytest.approx((100 + 10 * np.log10(50)) / 2)
    assert psnr_of_mse(mse(truth, guess).mean()) == pytest.approx(10 * np.log10(1 / 0.01))  # mean mse 0.01 -> 20 dB


def test_ssim_properties():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    np.testing.assert_allclose(ssim(x, x), 1.0, atol=1e-12)
    noisy = np.clip(x + rng.normal(0, 25, x.shape), 0, 255).astype(np.uint8)
    very_noisy = np.clip(x + rng.normal(0, 80, x.shape), 0, 255).astype(np.uint8)
    s1, s2 = ssim(x, noisy), ssim(x, very_noisy)
    assert s1.shape == (3,) and (s2 < s1).all() and (s1 < 1).all()
    # Brightness shift keeps structure: SSIM stays far above a random image's.
    shifted = np.clip(x.astype(int) + 10, 0, 255).astype(np.uint8)
    assert ssim(x, shifted).min() > 0.9 > ssim(x, rng.integers(0, 256, x.shape, dtype=np.uint8)).max()


def test_ssim_matches_a_direct_computation_on_one_window():
    """On an 11x11 frame there is exactly one window: SSIM is the closed form with Gaussian weights."""
    rng = np.random.default_rng(1)
    x = rng.random((11, 11, 1))
    y = np.clip(x + rng.normal(0, 0.1, x.shape), 0, 1)
    c = np.arange(11) - 5
    g = np.exp(-c**2 / (2 * 1.5**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    mx, my = (w * x[..., 0]).sum(), (w * y[..., 0]).sum()
    vx, vy = (w * x[..., 0] ** 2).sum() - mx**2, (w * y[..., 0] ** 2).sum() - my**2
    cov = (w * x[..., 0] * y[..., 0]).sum() - mx * my
    expected = ((2 * mx * my + 1e-4) * (2 * cov + 9e-4)) / ((mx**2 + my**2 + 1e-4) * (vx + vy + 9e-4))
    assert ssim(x, y) == pytest.approx(expected, abs=1e-12)


def test_delta_psnr_on_a_tiny_run(tiny_run):
    wm = Run.load(tiny_run).world_model()
    video = np.random.default_rng(0).integers(0, 256, (6, 16, 16, 3), dtype=np.uint8)
    out = delta_psnr(wm, video, t=4, sampling=SamplingConfig(steps=2))
    assert out["delta_psnr"] == pytest.approx(out["psnr_inferred"] - out["psnr_random"])
    assert set(out) == {"psnr_inferred", "psnr_random", "delta_psnr", "copy_first_psnr"}
    with pytest.raises(InputError, match="needs clips of >= 5 frames"):
        delta_psnr(wm, video[:3], t=4)


def test_token_stability_counts_flicker_where_pixels_stayed():
    from genie_robot.eval.metrics import token_stability

    frames = np.zeros((3, 8, 8, 3), np.uint8)
    frames[1:, :4, :4] = 200  # top-left 4x4 patch changes between frame 0 and 1
    tokens = np.zeros((3, 2, 2), np.int64)
    tokens[1:, 0, 0] = 5      # its token follows the pixels ...
    tokens[2, 1, 1] = 7       # ... and one token flickers where nothing moved
    result = token_stability(tokens, frames, patch=4)
    assert result == {"token_change": 2 / 8, "patch_change": 1 / 8, "flicker": 0.5}
