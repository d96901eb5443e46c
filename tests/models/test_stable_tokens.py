"""Per-frame tokens and per-transition latent actions: the properties the small recipe relies on."""
import math

import pytest
import torch

from genie_robot.errors import ConfigError
from genie_robot.models import LatentActionConfig, LatentActionModel, TokenizerConfig, VideoTokenizer
from genie_robot.nn.quantizer import FSQ_LEVELS, FiniteScalarQuantizer


@pytest.mark.parametrize("num_codes", sorted(FSQ_LEVELS))
def test_fsq_ids_and_codes_agree(num_codes):
    fsq = FiniteScalarQuantizer(num_codes)
    z = torch.randn(20000, fsq.code_dim) * 4
    quantized, ids, loss, metrics = fsq(z)
    assert ids.min() >= 0 and ids.max() < num_codes and loss == 0
    assert torch.equal(fsq.lookup(ids), quantized)
    codes = fsq.lookup(torch.arange(num_codes))
    assert codes.unique(dim=0).shape[0] == num_codes and codes.abs().max() <= 1  # one distinct code per id
    assert metrics["codes_used"] > num_codes // 4


def test_fsq_passes_gradients_straight_through():
    fsq = FiniteScalarQuantizer(64)
    z = torch.randn(10, 3, requires_grad=True)
    fsq(z)[0].sum().backward()
    assert z.grad is not None and (z.grad != 0).all()


def test_fsq_config_is_checked():
    with pytest.raises(ConfigError, match="FSQ needs a codebook size"):
        TokenizerConfig.preset("small", codebook_size=500)
    with pytest.raises(ConfigError, match="code_dim 3"):
        TokenizerConfig.preset("small", code_dim=32)
    with pytest.raises(ConfigError, match="quantizer"):
        TokenizerConfig.preset("small", quantizer="kmeans")


def test_a_token_changes_only_near_pixels_that_changed():
    """The local per-frame encoder: moving a blob in one corner leaves far tokens untouched."""
    torch.manual_seed(0)
    tok = VideoTokenizer(TokenizerConfig.preset("tiny", image_size=32)).eval()  # 8x8 tokens, window 1, 1 layer
    video = torch.randint(0, 256, (1, 2, 32, 32, 3), dtype=torch.uint8)
    video[:, 1] = video[:, 0]
    video[0, 1, :4, :4] = 255 - video[0, 1, :4, :4]  # top-left patch only
    ids = tok.encode(video)[0]
    changed = ids[1] != ids[0]
    far = torch.ones(8, 8, dtype=torch.bool)
    far[:2, :2] = False  # the patch and its neighbours within the attention window
    assert not changed[far].any()


def test_per_frame_tokens_do_not_depend_on_the_clip():
    torch.manual_seed(0)
    tok = VideoTokenizer(TokenizerConfig.preset("tiny")).eval()
    video = torch.randint(0, 256, (1, 6, 16, 16, 3), dtype=torch.uint8)
    alone = torch.cat([tok.encode(video[:, t : t + 1]) for t in range(6)], dim=1)
    assert torch.equal(tok.encode(video), alone)
    assert torch.equal(tok.encode(video.flip(1)), alone.flip(1))


def test_per_transition_lam_reads_each_transition_alone():
    torch.manual_seed(0)
    lam = LatentActionModel(LatentActionConfig.preset("tiny")).eval()
    video = torch.randint(0, 256, (1, 7, 16, 16, 3), dtype=torch.uint8)
    pairs = torch.cat([lam.infer_actions(video[:, t : t + 2]) for t in range(6)], dim=1)
    assert torch.equal(lam.infer_actions(video), pairs)


def test_every_preset_validates_and_impossible_widths_are_refused():
    from genie_robot.models import MODELS
    from genie_robot.models.checkpoint import check_compatible

    names = set(TokenizerConfig.presets)
    for kind, (config_cls, _) in MODELS.items():
        assert set(config_cls.presets) == names, f"{kind} presets differ from the tokenizer's"
    for name in names:  # each preset's stages fit together as one run (the adapter takes the LAM's actions when trained)
        check_compatible({kind: config_cls.preset(name) for kind, (config_cls, _) in MODELS.items() if kind != "adapter"})
    with pytest.raises(ConfigError, match="beta must be a finite number"):
        TokenizerConfig.preset("tiny", beta=float("nan"))
    with pytest.raises(ConfigError, match="not divisible by heads"):
        TokenizerConfig.preset("small", heads=3)
    with pytest.raises(ConfigError, match="decoder width"):
        TokenizerConfig.preset("small", dec_dim=130)


def test_dynamics_masks_per_frame_and_weighs_changed_tokens():
    from genie_robot.models import DynamicsConfig, DynamicsModel

    torch.manual_seed(0)
    grid = torch.randint(0, 64, (64, 8, 16, 16))  # random_mask reads only the shape
    per_clip = DynamicsModel(DynamicsConfig.preset("tiny", mask_per_frame=False, mask_rate_min=0.5, clean_frames=0.0))
    per_frame = DynamicsModel(DynamicsConfig.preset("tiny", mask_schedule="uniform", clean_frames=0.0))
    share = lambda m: m.random_mask(grid).float().mean(dim=(2, 3))  # noqa: E731  [B, T]
    assert (share(per_clip)[:, 1:] > 0.3).all() and (share(per_clip)[:, 0] == 0).all()
    assert (share(per_frame)[:, 1:] < 0.2).any()  # some context frames almost fully visible
    # MaskGIT's cosine schedule: mean rate 2/pi instead of 1/2, and 29% of frames (not 10%) over 90% masked.
    cosine = share(DynamicsModel(DynamicsConfig.preset("tiny", clean_frames=0.0)))[:, 1:]  # our presets' schedule
    assert abs(cosine.mean() - 2 / math.pi) < 0.04 and abs(share(per_frame)[:, 1:].mean() - 0.5) < 0.04
    assert 0.22 < (cosine > 0.9).float().mean() < 0.36
    # clean_frames: that share of the frames after the first is left complete, as generation sees its context.
    clean = share(DynamicsModel(DynamicsConfig.preset("tiny")))  # our presets: 0.3
    assert (clean[:, 0] == 0).all() and 0.22 < (clean[:, 1:] == 0).float().mean() < 0.38
    with pytest.raises(ConfigError, match="clean_frames"):
        DynamicsConfig.preset("tiny", mask_per_frame=False, clean_frames=0.3)
    # Weighting changed tokens changes the loss only where tokens changed.
    tokens = torch.randint(0, 64, (64, 8, 4, 4))
    static = tokens[:, :1].repeat(1, 8, 1, 1)
    mask = per_frame.random_mask(static)
    batch = {"tokens": static, "actions": torch.zeros(64, 7, dtype=torch.long), "mask": mask}
    unweighted = DynamicsModel(DynamicsConfig.preset("tiny", changed_weight=1.0))
    unweighted.load_state_dict(per_frame.state_dict())
    per_frame.eval(), unweighted.eval()  # no context noise: the two losses see the same inputs
    assert torch.allclose(per_frame(batch).loss, unweighted(batch).loss)
    moving = static.clone()
    moving[:, 1:, :2] = tokens[:, 1:, :2]  # the top half of every later frame changes
    batch["tokens"] = moving
    assert not torch.allclose(per_frame(batch).loss, unweighted(batch).loss)


def test_context_noise_only_in_training_and_only_on_visible_tokens():
    from genie_robot.models import DynamicsConfig, DynamicsModel

    torch.manual_seed(0)
    clean = DynamicsModel(DynamicsConfig.preset("tiny", context_noise=0.0))
    noisy = DynamicsModel(DynamicsConfig.preset("tiny", context_noise=0.5))
    noisy.load_state_dict(clean.state_dict())
    tokens = torch.randint(0, 64, (2, 6, 4, 4))
    batch = {"tokens": tokens, "actions": torch.zeros(2, 5, dtype=torch.long),
             "mask": torch.zeros_like(tokens, dtype=torch.bool)}
    batch["mask"][:, -1] = True
    for model in (clean, noisy):
        model.eval()
    assert torch.equal(clean(batch).loss, noisy(batch).loss)  # no noise at inference
    noisy.train()
    assert not torch.equal(clean(batch).loss, noisy(batch).loss)
    with pytest.raises(ConfigError, match="context_noise"):
        DynamicsConfig.preset("tiny", context_noise=1.0)
