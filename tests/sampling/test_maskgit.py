import math

import pytest
import torch

from genie_robot.sampling import ORDERS, SCHEDULES, SamplingConfig, masked_counts, maskgit_decode

MASK = 10  # vocabulary 0..9, mask id 10


@pytest.mark.parametrize("schedule", list(SCHEDULES))
@pytest.mark.parametrize("n,steps", [(256, 25), (256, 8), (16, 16), (5, 1), (3, 8), (1, 4)])
def test_schedule_keeps_one_masked_and_unmasks_one_per_step(schedule, n, steps):
    counts = masked_counts(n, steps, schedule)
    assert len(counts) == steps and counts[-1] == 0
    effective = min(n, steps)
    previous = n
    for i, remaining in enumerate(counts[:effective]):
        assert remaining < previous  # at least one token fixed per step
        assert remaining >= (1 if i < effective - 1 else 0)  # one stays masked until the last step
        previous = remaining
    assert counts[effective:] == [0] * (steps - effective)


def test_cosine_schedule_follows_the_curve():
    counts = masked_counts(1000, 10, "cosine")
    for i, remaining in enumerate(counts):
        assert remaining == math.floor(1000 * math.cos(math.pi / 2 * (i + 1) / 10))


def counting_logits(calls):
    """Fake model: prefers token (position % 10) with a sharp distribution; records each call."""
    def logits_fn(tokens_BN):
        calls.append(tokens_BN.clone())
        B, N = tokens_BN.shape
        logits = torch.full((B, N, 10), -5.0)
        logits[:, torch.arange(N), torch.arange(N) % 10] = 5.0
        return logits
    return logits_fn


def gens(*seeds):
    return [torch.Generator().manual_seed(s) for s in seeds]


@pytest.mark.parametrize("order", ORDERS)
def test_decode_fills_every_mask_and_never_changes_fixed_tokens(order):
    tokens = torch.full((2, 20), MASK)
    tokens[:, :5] = 7  # already known: must survive
    calls = []
    config = SamplingConfig(steps=6, temperature=1.0, order=order)
    out = maskgit_decode(counting_logits(calls), tokens, MASK, config, gens(0, 1))
    assert (out != MASK).all() and (out[:, :5] == 7).all()
    assert len(calls) == 6
    masked_per_call = [int((c[0] == MASK).sum()) for c in calls]
    assert masked_per_call == [15] + masked_counts(15, 6, "cosine")[:-1]
    for before, after in zip(calls, calls[1:] + [out]):
        fixed = before != MASK
        assert torch.equal(after[fixed], before[fixed])  # once fixed, a token never changes


def test_greedy_decode_takes_the_argmax():
    out = maskgit_decode(counting_logits([]), torch.full((1, 12), MASK), MASK, SamplingConfig(steps=4, temperature=0), gens(0))
    assert torch.equal(out[0], torch.arange(12) % 10)


def test_confidence_order_fixes_most_confident_first():
    def logits_fn(tokens_BN):
        logits = torch.zeros(1, 4, 10)
        logits[0, :, 3] = torch.tensor([1.0, 9.0, 2.0, 5.0])  # position 1 most confident, then 3
        return logits
    seen = []
    def recording(tokens_BN):
        seen.append(tokens_BN.clone())
        return logits_fn(tokens_BN)
    maskgit_decode(recording, torch.full((1, 4), MASK), MASK, SamplingConfig(steps=4, temperature=0, order="confidence",
                                                                              schedule="linear"), gens(0))
    assert (seen[0] == MASK).all()
    assert (seen[1][0] != MASK).nonzero().flatten().tolist() == [1]
    assert (seen[2][0] != MASK).nonzero().flatten().tolist() == [1, 3]


def test_annealed_order_draws_its_first_positions_at_random_and_its_last_by_confidence():
    """MaskGIT's order: Gumbel noise on the confidence, scaled down to zero at the last step."""
    def logits_fn(tokens_BN):
        logits = torch.zeros(1, 4, 10)
        logits[0, :, 3] = torch.tensor([1.0, 9.0, 2.0, 5.0])
        return logits
    def first_fixed(order, seed):
        seen = []
        maskgit_decode(lambda t: seen.append(t.clone()) or logits_fn(t), torch.full((1, 4), MASK), MASK,
                       SamplingConfig(steps=4, temperature=0, order=order, schedule="linear"), gens(seed))
        return (seen[1][0] != MASK).nonzero().flatten().tolist()
    assert {tuple(first_fixed("confidence", s)) for s in range(20)} == {(1,)}
    assert len({tuple(first_fixed("annealed", s)) for s in range(20)}) > 1


def test_same_seed_same_tokens_and_rows_are_independent():
    config = SamplingConfig(steps=5, temperature=2.0)
    flat = lambda tokens_BN: torch.zeros(tokens_BN.shape[0], tokens_BN.shape[1], 10)  # uniform: all randomness
    tokens = torch.full((3, 30), MASK)
    a = maskgit_decode(flat, tokens, MASK, config, gens(1, 2, 3))
    b = maskgit_decode(flat, tokens, MASK, config, gens(1, 2, 3))
    assert torch.equal(a, b)
    alone = maskgit_decode(flat, tokens[:1], MASK, config, gens(2))
    assert torch.equal(a[1:2], alone)  # a batch row equals the same decode run alone
    assert not torch.equal(a[0], a[1])


def test_sampled_tokens_follow_the_softmax_at_the_temperature():
    from genie_robot.sampling.maskgit import sample_tokens

    probs = torch.tensor([0.1, 0.2, 0.0, 0.3, 0.4])
    logits = probs.clamp_min(1e-30).log().expand(2, 40_000, 5)
    drawn = sample_tokens(logits, 1.0, gens(0, 1))
    assert drawn.min() >= 0 and drawn.max() <= 4 and not (drawn == 2).any()  # probability 0: never drawn
    frequencies = torch.bincount(drawn.flatten(), minlength=5).float() / drawn.numel()
    assert torch.allclose(frequencies, probs, atol=0.005)
    sharpened = torch.bincount(sample_tokens(logits, 0.5, gens(2, 3)).flatten(), minlength=5).float() / drawn.numel()
    expected = probs**2 / (probs**2).sum()  # temperature 0.5 squares the probabilities
    assert torch.allclose(sharpened, expected, atol=0.005)


def test_bad_arguments():
    with pytest.raises(ValueError, match="schedule"):
        SamplingConfig(schedule="zigzag")
    with pytest.raises(ValueError, match="steps"):
        SamplingConfig(steps=0)
    with pytest.raises(ValueError, match="temperature"):
        SamplingConfig(temperature=-1)
    with pytest.raises(ValueError, match="one generator per batch row"):
        maskgit_decode(counting_logits([]), torch.full((2, 4), MASK), MASK, SamplingConfig(), gens(0))


def test_median_draw_takes_each_fsq_dimensions_median_level():
    from genie_robot.nn.quantizer import FiniteScalarQuantizer
    from genie_robot.sampling.maskgit import median_tokens

    fsq = FiniteScalarQuantizer(64)  # levels (4, 4, 4); id = d0 + 4 d1 + 16 d2
    token = lambda d0, d1, d2: d0 + 4 * d1 + 16 * d2  # noqa: E731
    probs = torch.zeros(64)
    # Dimension 0 split between levels 0 and 3 with a little on 2: the median is level 2,
    # a token that holds only 20% of the mass; dimensions 1 and 2 sit at level 1 and 3.
    probs[token(0, 1, 3)], probs[token(2, 1, 3)], probs[token(3, 1, 3)] = 0.4, 0.2, 0.4
    logits = probs.clamp_min(1e-30).log().expand(1, 2, 64)
    assert median_tokens(logits, 1.0, fsq).tolist() == [[token(2, 1, 3)] * 2]
    # Against a direct count over random distributions, and temperature 0 = argmax.
    logits = torch.randn(3, 50, 64) * 3
    digits = fsq.digits(torch.arange(64))
    probs = (logits / 0.7).softmax(-1)
    expected = torch.zeros(3, 50, dtype=torch.long)
    for d in range(3):
        marginal = torch.stack([probs[..., digits[:, d] == level].sum(-1) for level in range(4)], -1)
        expected += (marginal.cumsum(-1) < 0.5).sum(-1).clamp(max=3) * fsq.basis[d]
    assert torch.equal(median_tokens(logits, 0.7, fsq), expected)
    assert torch.equal(median_tokens(logits, 0.0, fsq), logits.argmax(-1))


def test_median_draw_needs_the_quantizer_and_draws_are_checked():
    config = SamplingConfig(steps=2, draw="median")
    with pytest.raises(ValueError, match="FSQ quantizer"):
        maskgit_decode(counting_logits([]), torch.full((1, 4), MASK), MASK, config, gens(0))
    with pytest.raises(ValueError, match="unknown token draw 'mean'"):
        SamplingConfig(draw="mean")


def test_auto_draw_takes_the_median_of_fsq_tokens_and_samples_others():
    from genie_robot.nn.quantizer import FiniteScalarQuantizer

    fsq = FiniteScalarQuantizer(64)
    logits = torch.randn(1, 12, 64) * 2
    model = lambda tokens_BN: logits  # noqa: E731
    decode = lambda draw, generator_seed, quantizer: maskgit_decode(  # noqa: E731
        model, torch.full((1, 12), 64), 64, SamplingConfig(steps=3, temperature=1.0, draw=draw), gens(generator_seed), quantizer)
    assert torch.equal(decode("auto", 0, fsq), decode("median", 0, fsq))
    assert torch.equal(decode("auto", 0, None), decode("sample", 0, None))
    assert not torch.equal(decode("median", 0, fsq), decode("sample", 0, fsq))
