import numpy as np
import pytest
import torch

from genie_robot.errors import CheckpointError, InputError
from genie_robot.models.dynamics import DynamicsConfig, DynamicsModel
from genie_robot.models.run import Run
from genie_robot.models.world_model import WorldModel
from genie_robot.sampling import SamplingConfig

FAST = SamplingConfig(steps=4, temperature=1.0, draw="sample")  # draws, so that seeds matter


@pytest.fixture(scope="module")
def wm(tiny_run):
    return Run.load(tiny_run).world_model()


def frames(T=3, size=16, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (T, size, size, 3), dtype=np.uint8)


def generated_tokens(session):
    return session.tokens_BThw.clone()


def test_session_api_shapes(wm):
    session = wm.start(frames(3), seed=0, sampling=FAST)
    assert session.prompt_frames.shape == (3, 16, 16, 3) and session.prompt_frames.dtype == np.uint8
    frame = session.step(2)
    assert frame.shape == (16, 16, 3) and frame.dtype == np.uint8
    video = session.rollout([0, 1, 7])
    assert video.shape == (3, 16, 16, 3)
    assert session.steps_taken == 4
    assert wm.infer_actions(frames(5)).shape == (4,)
    assert wm.reconstruct(frames(20)).shape == (20, 16, 16, 3)


@pytest.fixture(scope="module")
def wm_previous_tokens(wm):
    """The tiny run's tokenizer and LAM with an (untrained) dynamics model that embeds each
    frame's predecessor, which a cached step must be handed."""
    torch.manual_seed(0)
    config = DynamicsConfig.preset("tiny", num_actions=wm.num_actions, previous_tokens=True)
    return WorldModel(wm.tokenizer, DynamicsModel(config).eval(), wm.lam)


@pytest.mark.parametrize("memory", [16, 5])
@pytest.mark.parametrize("model", ["wm", "wm_previous_tokens"])
def test_cached_equals_uncached(model, memory, request):
    """Same seed, same actions: identical tokens; pixels equal up to float rounding.
    memory 5 crosses the window limit several times (the cache is rebuilt after sliding)."""
    wm = request.getfixturevalue(model)
    actions = [3, 1, 4, 1, 5, 0, 2, 6, 5, 3]
    runs = {}
    for cached in (True, False):
        session = wm.start(frames(2), prompt_actions=[2], seed=7, sampling=FAST, memory=memory, use_cache=cached)
        video = session.rollout(actions)
        runs[cached] = (video, generated_tokens(session))
    assert torch.equal(runs[True][1], runs[False][1])
    assert np.abs(runs[True][0].astype(int) - runs[False][0].astype(int)).max() <= 1
    assert runs[True][1].shape[1] == min(memory, 2 + len(actions))  # the window ends full


def test_a_cached_step_of_a_previous_tokens_model_needs_the_last_frame(wm_previous_tokens):
    dynamics = wm_previous_tokens.dynamics
    ids = torch.zeros(1, 2, dynamics.config.grid, dynamics.config.grid, dtype=torch.long)
    cache = dynamics.new_cache(1)
    dynamics.remember(ids, torch.tensor([[dynamics.config.no_action_id, 0]]), cache)
    with pytest.raises(ValueError, match="previous_B1hw"):
        dynamics.frame_logits(ids[:, :1], torch.tensor([[1]]), cache, commit=False)


def test_same_seed_same_frames_other_seed_differs(wm):
    a = wm.start(frames(1), seed=3, sampling=FAST).rollout([1, 2, 3])
    b = wm.start(frames(1), seed=3, sampling=FAST).rollout([1, 2, 3])
    c = wm.start(frames(1), seed=4, sampling=FAST).rollout([1, 2, 3])
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_batched_rows_equal_single_sessions(wm):
    batch = wm.start(frames(2), prompt_actions=[0], seed=[11, 12, 13], batch=3, sampling=FAST)
    video = batch.rollout(np.array([[1, 2], [3, 4], [5, 6]]))
    assert video.shape == (3, 2, 16, 16, 3)
    single = wm.start(frames(2), prompt_actions=[0], seed=12, sampling=FAST).rollout([3, 4])
    assert np.abs(video[1].astype(int) - single.astype(int)).max() <= 1
    assert batch.step(0).shape == (3, 16, 16, 3)  # one action for every row


def test_actions_move_the_prediction(wm):
    """The action embedding reaches the generated frame (greedy, so only the action differs)."""
    greedy = SamplingConfig(steps=2, temperature=0)
    out = {a: wm.start(frames(1), seed=0, sampling=greedy).step(a) for a in range(wm.num_actions)}
    assert len({o.tobytes() for o in out.values()}) > 1


def test_median_draw_needs_fsq_tokens(wm, tiny_run):
    from genie_robot.models import MODELS
    from genie_robot.models.world_model import WorldModel

    median = SamplingConfig(steps=4, temperature=1.0, draw="median")
    assert wm.start(frames(1), seed=0, sampling=median).rollout([1, 2]).shape == (2, 16, 16, 3)
    config_cls, model_cls = MODELS["tokenizer"]
    learned_codebook = model_cls(config_cls.preset("tiny", quantizer="vq"))
    with pytest.raises(InputError, match="draw 'median' needs ordered tokens"):
        WorldModel(learned_codebook, wm.dynamics).start(frames(1), sampling=median)
    # The default draw ("auto") samples a learned codebook's tokens.
    assert WorldModel(learned_codebook, wm.dynamics).start(frames(1), sampling=FAST).step(0).shape == (16, 16, 3)


def test_bad_input_is_refused_and_session_stays_usable(wm):
    session = wm.start(frames(1), seed=0, sampling=FAST)
    for bad, match in [(8, "out of range"), (-1, "out of range"), (1.5, "integers"), ("up", "integers")]:
        with pytest.raises(InputError, match=match):
            session.step(bad)
    with pytest.raises(InputError, match="one action per session row"):
        session.step([1, 2])
    assert session.steps_taken == 0 and session.history == 1
    assert session.step(1).shape == (16, 16, 3)
    with pytest.raises(InputError, match="empty"):
        wm.start(np.zeros((0, 16, 16, 3), np.uint8))
    with pytest.raises(InputError, match="smaller than the model"):
        wm.start(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(InputError, match="uint8"):
        wm.start(np.zeros((16, 16, 3), np.float32))
    with pytest.raises(InputError, match="needs 2 actions"):
        wm.start(frames(3), prompt_actions=[1])
    with pytest.raises(InputError, match="memory"):
        wm.start(frames(1), memory=17)


def test_prompt_resize_and_channels(wm):
    big = np.random.default_rng(0).integers(0, 256, (48, 64, 4), dtype=np.uint8)  # RGBA, not square
    assert wm.start(big, sampling=FAST).prompt_frames.shape == (1, 16, 16, 3)
    grey = np.zeros((32, 32), np.uint8)
    assert wm.start(grey, sampling=FAST).step(0).shape == (16, 16, 3)


def test_run_directory_errors(tmp_path, tiny_run):
    with pytest.raises(CheckpointError, match="no such run directory"):
        Run.load(tmp_path / "nope").world_model()
    (tmp_path / "tokenizer").mkdir()
    with pytest.raises(CheckpointError, match="needs a trained tokenizer"):
        Run.load(tmp_path).world_model()
    no_lam = tmp_path / "no_lam"
    for kind in ("tokenizer", "dynamics"):
        (no_lam / kind).mkdir(parents=True)
        for f in (tiny_run / kind).iterdir():
            (no_lam / kind / f.name).write_bytes(f.read_bytes())
    wm = Run.load(no_lam).world_model()
    assert wm.start(frames(1), sampling=FAST).step(0).shape == (16, 16, 3)
    with pytest.raises(CheckpointError, match="no trained LAM"):
        wm.infer_actions(frames(3))
    with pytest.raises(CheckpointError, match="no trained LAM"):
        wm.start(frames(3))  # transitions inside the prompt need actions


def test_rows_with_their_own_prompts_equal_single_sessions(wm):
    prompts = [frames(2), 255 - frames(2)]
    rows = wm.start_rows(prompts, prompt_actions=[[1], [4]], seed=3, sampling=FAST)
    assert rows.row_prompt_frames.shape == (2, 2, 16, 16, 3)
    together = rows.rollout(np.array([[0, 5, 2], [7, 7, 1]]))
    for b, (prompt, actions) in enumerate(zip(prompts, ([0, 5, 2], [7, 7, 1]))):
        alone = wm.start(prompt, prompt_actions=[[1], [4]][b], seed=3 + b, sampling=FAST)
        np.testing.assert_array_equal(alone.rollout(actions), together[b])
    with pytest.raises(InputError, match="prompts of one length"):
        wm.start_rows([frames(2), frames(3)])
