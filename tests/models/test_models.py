import pytest
import torch

from genie_robot.errors import CheckpointError, ConfigError
from genie_robot.models import DynamicsConfig, DynamicsModel, LatentActionConfig, LatentActionModel, TokenizerConfig, VideoTokenizer
from genie_robot.models.checkpoint import load_model, save_model
from genie_robot.models.patches import patchify, to_unit
from genie_robot.nn import VectorQuantizer


def video(B=2, T=5, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (B, T, size, size, 3), dtype=torch.uint8, generator=g)


@pytest.fixture
def models():
    torch.manual_seed(0)
    return (VideoTokenizer(TokenizerConfig.preset("tiny")).eval(),
            LatentActionModel(LatentActionConfig.preset("tiny")).eval(),
            DynamicsModel(DynamicsConfig.preset("tiny")).eval())


def test_shapes(models):
    tok, lam, dyn = models
    v = video()
    ids = tok.encode(v)
    assert ids.shape == (2, 5, 4, 4) and ids.max() < 64
    assert tok.decode(ids).shape == (2, 5, 16, 16, 3)
    actions = lam.infer_actions(v)
    assert actions.shape == (2, 4) and actions.max() < 8
    assert lam.predict_next(v, lam.quantizer.lookup(actions)).shape == (2, 4, 16, 16, 3)
    assert dyn.logits(ids, actions).shape == (2, 5, 4, 4, 64)
    for model, batch in [(tok, {"video": v}), (lam, {"video": v}), (dyn, {"tokens": ids, "actions": actions})]:
        output = model(batch)
        assert output.loss.ndim == 0 and torch.isfinite(output.loss) and "loss" in output.metrics
        assert all(torch.is_tensor(v) and v.ndim == 0 for v in output.metrics.values())  # no .item() per step


@pytest.mark.parametrize("enc_temporal", [False, True])
def test_lam_reads_each_transition_alone_unless_temporal(enc_temporal):
    """The per-transition encoder skips the first frame's unused query; a temporal one keeps
    the whole clip as context. Either way, one action per transition."""
    torch.manual_seed(0)
    lam = LatentActionModel(LatentActionConfig.preset("tiny", enc_temporal=enc_temporal)).eval()
    v = video(T=6)
    actions = lam.infer_actions(v)
    assert actions.shape == (2, 5)
    if not enc_temporal:
        pairwise = torch.cat([lam.infer_actions(v[:, t : t + 2]) for t in range(5)], dim=1)
        assert torch.equal(actions, pairwise)


def test_lam_command_loss_adds_the_unexplained_share_and_reaches_the_encoder():
    """command_weight w: loss = the video-only loss + w x (MSE of the command read from the code
    / the commands' variance), and that term trains the encoder that picks the code."""
    torch.manual_seed(0)
    supervised = LatentActionModel(LatentActionConfig.preset("tiny", command_weight=2.0, command_dim=3)).eval()
    video_only = LatentActionModel(LatentActionConfig.preset("tiny")).eval()  # eval: no dead-code restarts between passes
    video_only.load_state_dict({k: v for k, v in supervised.state_dict().items() if not k.startswith("to_command")})
    v, commands = video(T=4), torch.randn(2, 3, 3, generator=torch.Generator().manual_seed(1))
    out, base = supervised({"video": v, "actions": commands}), video_only({"video": v})
    codes = supervised._actions(patchify(to_unit(v), supervised.config.patch))[0]
    unexplained = torch.nn.functional.mse_loss(supervised.to_command(codes), commands) / commands.var()
    assert torch.allclose(out.loss, base.loss + 2.0 * unexplained, rtol=1e-5)
    assert torch.allclose(out.metrics["command_r2"], 1.0 - unexplained, rtol=1e-5)
    unexplained.backward()
    assert supervised.to_action.weight.grad.abs().sum() > 0
    with pytest.raises(ConfigError, match="command_weight must be >= 0"):
        LatentActionConfig.preset("tiny", command_weight=-1.0)
    with pytest.raises(ConfigError, match="needs command_dim"):
        LatentActionModel(LatentActionConfig.preset("tiny", command_weight=1.0))


@pytest.mark.parametrize("previous_tokens", [False, True])
def test_temporal_causality(models, previous_tokens):
    tok, lam, dyn = models
    if previous_tokens:  # frame 3's tokens also reach frame 4 through its predecessor's embedding
        torch.manual_seed(0)
        dyn = DynamicsModel(DynamicsConfig.preset("tiny", previous_tokens=True)).eval()
    v = video()
    changed = v.clone()
    changed[:, 3] = 255 - changed[:, 3]  # change frame 3 only
    assert torch.equal(tok.encode(v)[:, :3], tok.encode(changed)[:, :3])
    assert not torch.equal(tok.encode(v)[:, 3], tok.encode(changed)[:, 3])
    recon = lambda x: tok.decode_codes(tok.quantizer.lookup(tok.encode(x).flatten(2)))  # noqa: E731
    assert torch.allclose(recon(v)[:, :3], recon(changed)[:, :3])
    # LAM action t (frame t -> t+1) may see frame t+1 but nothing later
    assert torch.equal(lam.infer_actions(v)[:, :2], lam.infer_actions(changed)[:, :2])
    codes = lam.quantizer.lookup(lam.infer_actions(v))
    assert torch.allclose(lam.predict_next(v, codes)[:, :3], lam.predict_next(changed, codes)[:, :3])
    ids, actions = tok.encode(v), lam.infer_actions(v)
    other = ids.clone()
    other[:, 3] = (other[:, 3] + 1) % 64
    assert torch.allclose(dyn.logits(ids, actions)[:, :3], dyn.logits(other, actions)[:, :3])
    assert not torch.allclose(dyn.logits(ids, actions)[:, 3], dyn.logits(other, actions)[:, 3])


def test_action_t_conditions_frame_t_plus_1(models):
    _, _, dyn = models
    ids = torch.randint(0, 64, (1, 5, 4, 4))
    actions = torch.zeros(1, 4, dtype=torch.long)
    moved = actions.clone()
    moved[0, 2] = 5  # actions[2] moves frame 2 -> 3
    a, b = dyn.logits(ids, actions), dyn.logits(ids, moved)
    assert torch.allclose(a[:, :3], b[:, :3])
    assert not torch.allclose(a[:, 3], b[:, 3])
    with pytest.raises(ValueError, match="T-1 actions"):
        dyn.logits(ids, actions[:, :3])
    with pytest.raises(ValueError, match="0..7"):
        dyn.logits(ids, actions + 8)


def test_save_load_identical(models, tmp_path):
    v = video()
    tok, lam, dyn = models
    ids, actions = tok.encode(v), lam.infer_actions(v)
    outputs = {
        "tokenizer": lambda m: m.decode(m.encode(v)),
        "lam": lambda m: m.predict_next(v, m.quantizer.lookup(m.infer_actions(v))),
        "dynamics": lambda m: m.logits(ids, actions),
    }
    for model in models:
        kind = model.config.kind
        save_model(model, tmp_path / kind)
        loaded = load_model(tmp_path / kind, kind).eval()
        assert torch.equal(outputs[kind](model), outputs[kind](loaded))
        for name, buffer in model.state_dict().items():  # VQ usage counters included
            assert torch.equal(buffer, loaded.state_dict()[name]), name


def test_checkpoint_errors(models, tmp_path):
    tok = models[0]
    save_model(tok, tmp_path / "tok")
    with pytest.raises(CheckpointError, match="expected a 'lam' model"):
        load_model(tmp_path / "tok", "lam")
    with pytest.raises(CheckpointError, match="codebook_size: checkpoint 64 vs requested 216"):
        load_model(tmp_path / "tok", "tokenizer", expect_config=TokenizerConfig.preset("tiny", codebook_size=216))
    weights = tmp_path / "tok" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_model(tmp_path / "tok")
    save_model(VideoTokenizer(TokenizerConfig.preset("tiny", dim=48)), tmp_path / "other")
    (tmp_path / "tok" / "model.safetensors").write_bytes((tmp_path / "other" / "model.safetensors").read_bytes())
    with pytest.raises(CheckpointError, match="weights do not fit the config"):
        load_model(tmp_path / "tok")
    with pytest.raises(CheckpointError, match="no such checkpoint folder"):
        load_model(tmp_path / "nope")


def test_config_validation():
    with pytest.raises(ConfigError, match="not divisible by patch"):
        TokenizerConfig.preset("tiny", image_size=18)
    with pytest.raises(ConfigError, match="unknown tokenizer preset"):
        TokenizerConfig.preset("huge")
    with pytest.raises(ConfigError, match="must be positive"):
        LatentActionConfig.preset("tiny", num_actions=0)
    assert DynamicsConfig.from_dict(DynamicsConfig.preset("small").to_dict()) == DynamicsConfig.preset("small")
    with pytest.raises(ConfigError, match="mask_schedule must be 'uniform' or 'cosine'"):
        DynamicsConfig.preset("tiny", mask_schedule="arccos")
    # A hand-edited config.json gets each field's type checked: a flag is not a string, a count not a flag.
    with pytest.raises(ConfigError, match="qk_norm must be a true/false flag, got 'yes'"):
        DynamicsConfig.from_dict({**DynamicsConfig.preset("tiny").to_dict(), "qk_norm": "yes"})
    with pytest.raises(ConfigError, match="layers must be a whole number, got True"):
        DynamicsConfig.preset("tiny", layers=True)
    with pytest.raises(ConfigError, match="mask_schedule must be a string, got 3"):
        DynamicsConfig.preset("tiny", mask_schedule=3)
    assert LatentActionConfig.preset("tiny", command_weight=1).command_weight == 1  # a whole number is a number


def test_checkpoints_of_earlier_versions_load_without_removed_options():
    """Options this version removed load where they are off, and are refused, named, where a model used one."""
    config = DynamicsConfig.preset("tiny")
    old = {**config.to_dict(), "head": "joint", "action_input": "add", "action_dropout": 0.0}
    assert DynamicsConfig.from_dict(old) == config
    with pytest.raises(ConfigError, match="trained with action_input='token', an option this version no longer supports"):
        DynamicsConfig.from_dict({**old, "action_input": "token"})
    with pytest.raises(ConfigError, match="unknown fields"):
        DynamicsConfig.from_dict({**old, "guidance": 2.0})


def test_short_training_clips_sit_anywhere_in_the_window():
    """A clip of T < max_frames frames trains at a random offset: the transformer at offset k is
    the same transformer with its time positions shifted by k, and over a few training steps
    every position in the window gets a gradient."""
    from genie_robot.nn import STTransformer

    torch.manual_seed(0)
    transformer = STTransformer(16, 1, 2, max_frames=8, tokens_per_frame=4).eval()
    shifted = STTransformer(16, 1, 2, max_frames=8, tokens_per_frame=4).eval()
    shifted.load_state_dict(transformer.state_dict())
    with torch.no_grad():
        shifted.pos_time.copy_(transformer.pos_time.roll(-3, 0))
    x = torch.randn(2, 4, 4, 16)
    torch.testing.assert_close(transformer(x, time_offset=torch.tensor(3)), shifted(x))
    model = DynamicsModel(DynamicsConfig.preset("tiny")).train()
    batch = {"tokens": torch.randint(0, 64, (2, 4, 4, 4)), "actions": torch.randint(0, 8, (2, 3))}
    for _ in range(12):
        model(batch).loss.backward()
    assert (model.transformer.pos_time.grad.abs().sum(-1) > 0).all()
    model.eval()
    model.zero_grad()
    model(batch).loss.backward()  # evaluation: a clip starts the window
    assert (model.transformer.pos_time.grad[4:] == 0).all()


@pytest.mark.parametrize("kind", ["tokenizer", "lam", "dynamics"])
def test_each_model_overfits_a_tiny_batch(kind):
    torch.manual_seed(0)
    v = video(B=2, T=4, seed=1)
    if kind == "tokenizer":
        model, batch = VideoTokenizer(TokenizerConfig.preset("tiny")), {"video": v}
    elif kind == "lam":
        model, batch = LatentActionModel(LatentActionConfig.preset("tiny")), {"video": v}
    else:
        model = DynamicsModel(DynamicsConfig.preset("tiny"))
        ids = torch.randint(0, 64, (2, 4, 4, 4), generator=torch.Generator().manual_seed(2))
        batch = {"tokens": ids, "actions": torch.tensor([[1, 2, 3], [4, 5, 6]])}
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for step in range(150):
        torch.manual_seed(step)
        loss = model(batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5, (losses[:5], losses[-5:])


def test_quantizer_usage_and_dead_code_restart():
    torch.manual_seed(0)
    vq = VectorQuantizer(8, 4, usage_decay=0.5, dead_fraction=0.1)
    vq.codebook.data[:] = torch.randn(8, 4) * 10
    vq.codebook.data[0] = 0
    data = 0.01 * torch.randn(256, 4)  # everything lands on code 0
    _, ids, _, metrics = vq.eval()(data)
    assert metrics["codes_used"] == 1 and abs(metrics["perplexity"] - 1) < 1e-5
    before = vq.codebook.data.clone()
    vq.train()
    for _ in range(10):
        vq(data)
    restarted = (vq.codebook.data - before).abs().sum(-1) > 0
    assert restarted[1:].all()  # dead codes moved onto the data
    assert vq.codebook.data[1:].abs().max() < 1  # near the encoder outputs now
    _, ids, _, metrics = vq.eval()(data)
    assert metrics["codes_used"] > 1


def test_bf16_training_on_cpu_is_close_to_fp32():
    """Under CPU autocast, training takes the plain-matmul attention (the fused kernel's bf16
    backward is slow on CPU): for spatial, causal-temporal and windowed attention alike, its
    output stays within bf16 rounding of fp32's, and every gradient is finite."""
    from genie_robot.nn import STTransformer

    torch.manual_seed(0)
    for stack in (STTransformer(32, 2, 2, 4, 16), STTransformer(32, 2, 2, 4, 16, temporal=False, window=1)):
        x = torch.randn(2, 4, 16, 32, requires_grad=True)
        fp32 = stack(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16 = stack(x)
        assert bf16.dtype == torch.float32  # the final LayerNorm runs in fp32 under autocast
        assert (bf16 - fp32).abs().max() < 0.05 and (bf16 - fp32).abs().mean() < 0.01
        bf16.square().mean().backward()
        assert torch.isfinite(x.grad).all() and all(torch.isfinite(p.grad).all() for p in stack.parameters())
