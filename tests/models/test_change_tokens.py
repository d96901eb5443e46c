"""The change-token world model: the change tokenizer (x_t, x_t+1 -> a few tokens -> x_t+1 from
x_t), its dynamics model and their rollouts, at the tiny preset."""
import pytest
import torch

from genie_robot.errors import ConfigError
from genie_robot.models.change_dynamics import ChangeDynamics, ChangeDynamicsConfig, next_changes
from genie_robot.models.change_tokenizer import ChangeTokenizer, ChangeTokenizerConfig
from genie_robot.models.checkpoint import check_compatible, load_model, save_model
from genie_robot.sampling import SamplingConfig


def moving_square(batch: int = 2, frames: int = 5, size: int = 16) -> torch.Tensor:
    """A bright square moving one pixel right per frame on a dark background: uint8 [B, T, H, W, 3]."""
    video = torch.full((batch, frames, size, size, 3), 20, dtype=torch.uint8)
    for b in range(batch):
        for t in range(frames):
            video[b, t, 4 + b : 8 + b, 2 + t : 6 + t] = 230
    return video


def tokenizer(**overrides) -> ChangeTokenizer:
    torch.manual_seed(0)
    return ChangeTokenizer(ChangeTokenizerConfig.preset("tiny", **overrides)).eval()


def dynamics(**overrides) -> ChangeDynamics:
    torch.manual_seed(0)
    return ChangeDynamics(ChangeDynamicsConfig.preset("tiny", **overrides)).eval()


@pytest.mark.parametrize("cls, fields, match", [
    (ChangeTokenizerConfig, dict(grid=3), "power of two"),
    (ChangeTokenizerConfig, dict(grid=4), "power of two >= 8"),  # 16 / 4: coarser than the decoder's 1/8 scale
    (ChangeTokenizerConfig, dict(codebook_size=100), "codebook_size"),
    (ChangeTokenizerConfig, dict(width=12), "multiple of 8"),
    (ChangeTokenizerConfig, dict(change_weight=-1.0), "change_weight"),
    (ChangeDynamicsConfig, dict(grid=3), "power of two"),
    (ChangeDynamicsConfig, dict(dim=33, heads=1), "even"),
])
def test_configs_refuse_what_cannot_be_built(cls, fields, match):
    with pytest.raises(ConfigError, match=match):
        cls.preset("tiny", **fields)


def test_a_new_tokenizer_copies_the_frame_and_reads_a_video_from_its_first_frame():
    model, video = tokenizer(), moving_square()
    actions = torch.zeros(2, 4, dtype=torch.long)
    ids = model.encode(video[:, 0], video[:, 1])
    assert ids.shape == (2, 2, 2) and 0 <= ids.min() and ids.max() < model.config.codebook_size
    assert torch.equal(model.decode(video[:, 0], ids, actions[:, 0]), video[:, 0])  # "copy x_t" before training
    frames, changes = model.read(video, actions)
    assert frames.shape == video.shape and changes.shape == (2, 4, 2, 2)
    assert torch.equal(frames[:, 0], video[:, 0])
    assert model.read(video[:, :1], actions[:, :0])[1].shape == (2, 0, 2, 2)  # one frame: no change to read


def test_the_tokenizer_refuses_wrong_frames_and_actions():
    model, video = tokenizer(), moving_square()
    with pytest.raises(ValueError, match="16x16x3"):
        model.encode(video[:, 0, :8], video[:, 1, :8])
    ids = model.encode(video[:, 0], video[:, 1])
    with pytest.raises(ValueError, match="latent actions must lie in 0..7"):
        model.decode(video[:, 0], ids, torch.tensor([0, 8]))


def test_the_tokenizer_learns_a_motion_through_its_own_reading():
    """The unrolled loss falls on a moving square, and the reading (each frame decoded from the
    last decoded one) ends nearer the true frames than copying the first frame does."""
    torch.manual_seed(0)
    model = ChangeTokenizer(ChangeTokenizerConfig.preset("tiny")).train()
    video, actions = moving_square(frames=5), torch.zeros(2, 4, dtype=torch.long)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(120):
        output = model({"video": video, "actions": actions})
        optimizer.zero_grad()
        output.loss.backward()
        optimizer.step()
        first = first if first is not None else output.loss.item()
    assert output.loss.item() < 0.5 * first
    assert output.preview["output"].shape == (2, 4, 16, 16, 3)
    frames, _ = model.eval().read(video, actions)
    error = lambda a: (a.float() - video[:, -1].float()).pow(2).mean()
    assert error(frames[:, -1]) < 0.5 * error(video[:, 0])


def test_cells_where_nothing_changed_get_the_idle_code():
    """With idle_cells, a cell whose pixels all stayed reads as the all-zero code; a cell that
    changed reads as without idle_cells. Configs saved before idle_cells existed load without it."""
    video = torch.full((1, 2, 16, 16, 3), 20, dtype=torch.uint8)
    video[0, 1, 2:5, 2:5] = 230  # only the top-left 8x8 cell changes
    gated, plain = tokenizer(), tokenizer(idle_cells=False)
    ids, plain_ids = gated.encode(video[:, 0], video[:, 1]), plain.encode(video[:, 0], video[:, 1])
    idle = gated.quantizer.zero_id
    assert ids[0, 0, 0] == plain_ids[0, 0, 0]
    assert ids[0].flatten()[1:].tolist() == [idle] * 3
    assert torch.equal(gated.encode(video[:, 0], video[:, 0]), torch.full_like(ids, idle))
    assert not torch.equal(plain.encode(video[:, 0], video[:, 0]), torch.full_like(ids, idle))  # untrained: arbitrary
    old = {k: v for k, v in gated.config.to_dict().items() if k != "idle_cells"}
    assert ChangeTokenizerConfig.from_dict(old).idle_cells is False


def test_dynamics_slots_see_only_the_past():
    """Changing frame t+1's inputs (its frame, its changes, its action) leaves slot t's logits as they were."""
    model = dynamics()
    g, T = model.config.grid, 4
    frames = moving_square(frames=T)
    changes_in = torch.randint(0, 64, (2, T, g, g))
    changes_out = torch.randint(0, 65, (2, T, g, g))
    actions = torch.randint(0, 8, (2, T))
    before = model.logits(frames, changes_in, changes_out, actions)
    frames2, in2, out2, actions2 = frames.clone(), changes_in.clone(), changes_out.clone(), actions.clone()
    frames2[:, 2:] = 255 - frames2[:, 2:]
    in2[:, 2:] = (in2[:, 2:] + 1) % 64
    out2[:, 2:] = (out2[:, 2:] + 1) % 64
    actions2[:, 2:] = (actions2[:, 2:] + 1) % 8
    after = model.logits(frames2, in2, out2, actions2)
    assert before.shape == (2, T, g, g, 64)
    torch.testing.assert_close(after[:, :2], before[:, :2])
    assert not torch.allclose(after[:, 2:], before[:, 2:])
    with pytest.raises(ValueError, match="latent actions must lie in 0..7"):
        model.logits(frames, changes_in, changes_out, actions + 8)
    with pytest.raises(ValueError, match="one action and one 2x2 change grid"):
        model.logits(frames, changes_in[:, 1:], changes_out, actions)


def test_next_changes_are_pure_row_by_row():
    """A batched MaskGIT decode equals each row decoded alone with its own generator."""
    model, g = dynamics(), 2
    frames, changes_in = moving_square(frames=3), torch.randint(0, 64, (2, 3, g, g))
    actions = torch.randint(0, 8, (2, 3))
    sampling = SamplingConfig(steps=3, temperature=1.0, draw="sample")
    both = next_changes(model, frames, changes_in, actions, sampling, [torch.Generator().manual_seed(s) for s in (1, 2)])
    alone = next_changes(model, frames[1:], changes_in[1:], actions[1:], sampling, [torch.Generator().manual_seed(2)])
    assert both.shape == (2, g, g) and both.max() < 64
    assert torch.equal(both[1:], alone)


def test_checkpoints_round_trip_and_runs_must_agree(tmp_path):
    tok, dyn = tokenizer(), dynamics()
    save_model(tok, tmp_path / "change_tokenizer")
    save_model(dyn, tmp_path / "change_dynamics")
    loaded = load_model(tmp_path / "change_tokenizer", "change_tokenizer")
    assert loaded.config == tok.config
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), tok.state_dict().values()))
    assert load_model(tmp_path / "change_dynamics", "change_dynamics").config == dyn.config
    with pytest.raises(ConfigError, match="change_dynamics grid is 4 but the run's change_tokenizer has 2"):
        check_compatible({"change_tokenizer": tok.config, "change_dynamics": ChangeDynamicsConfig.preset("small")})


def test_the_cli_trains_both_stages_in_order(tmp_path, mujoco_store, tiny_run, capsys):
    """change_tokenizer after the LAM, change_dynamics after both; out of order, or with a flag
    these models have no use for, a clear error."""
    from genie_robot.cli import main

    run = tmp_path / "run"
    run.mkdir()
    (run / "lam").symlink_to(tiny_run / "lam")
    common = ["--data", str(mujoco_store), "--preset", "tiny", "--steps", "2", "--clip-len", "4", "--sample-every", "0",
              "--out", str(run)]
    assert main(["train", "change_dynamics", *common]) != 0
    assert "needs a trained change_tokenizer" in capsys.readouterr().err
    assert main(["train", "change_tokenizer", *common, "--max-frames", "8"]) != 0
    assert "leave --max-frames out" in capsys.readouterr().err
    assert not main(["train", "change_tokenizer", *common])
    assert not main(["train", "change_dynamics", *common])
    assert load_model(run / "change_dynamics", "change_dynamics").config.grid == 2
