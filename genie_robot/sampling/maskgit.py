"""MaskGIT iterative decoding (Chang et al. 2022) as pure functions.

A frame starts fully masked. Each step predicts every masked token, then fixes some of them
and leaves the rest masked for the next step; the schedule says how many stay masked.
Genie samples with 25 steps, temperature 2 (1 for CoinRun) and random unmasking order. Our
default temperature is 0.5: for the small CPU-trained model it kept imagined frames above the
copy baseline where 1.0 broke the background up (chosen on validation episodes, README).

What a step fixes at a position is a draw from the softmax (`draw="sample"`), or, for FSQ
tokens, whose ids are tuples of ordered levels, the median level of each dimension's marginal
(`draw="median"`; the default "auto" takes it for FSQ tokens): where the small model is unsure
how far the arm moved, a draw picks one guess and often lands on a wrong code, while the median
settles between the guesses (chosen on validation episodes, README).

Randomness comes only from the generators passed in, one per batch row when a list is given,
so a row of a batched decode equals the same decode run alone with that row's generator.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from genie_robot.nn.quantizer import FiniteScalarQuantizer

SCHEDULES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    # Fraction of tokens still masked after progress r in [0, 1] (a tensor: training draws
    # mask rates from the same curves, models/dynamics.py).
    "cosine": lambda r: torch.cos(r * (math.pi / 2)),
    "linear": lambda r: 1.0 - r,
    "square": lambda r: 1.0 - r**2,
    "cubic": lambda r: 1.0 - r**3,
    "sqrt": lambda r: 1.0 - r.sqrt(),
}
# random: Genie's; confidence: the most probable draws first; annealed: MaskGIT's own, confidence
# plus Gumbel noise of scale CHOICE_TEMPERATURE * (1 - progress): random-like early, confident late.
ORDERS = ("random", "confidence", "annealed")
CHOICE_TEMPERATURE = 4.5
# sample: a draw from the softmax; median: per FSQ dimension, the median level of the softmax's
# marginal (a point estimate: it needs ordered codes, so an FSQ tokenizer's levels); auto: median
# for FSQ tokens, a sample for a learned codebook's.
DRAWS = ("auto", "sample", "median")


@dataclass(frozen=True)
class SamplingConfig:
    steps: int = 25
    temperature: float = 0.5  # 0 = greedy (argmax)
    schedule: str = "cosine"
    order: str = "random"
    draw: str = "auto"  # what each step fixes at a position: a sample, or the median levels (DRAWS)

    def __post_init__(self):
        if self.steps < 1:
            raise ValueError(f"MaskGIT steps must be >= 1, got {self.steps}")
        if not self.temperature >= 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown mask schedule {self.schedule!r}; choose from {', '.join(SCHEDULES)}")
        if self.order not in ORDERS:
            raise ValueError(f"unknown unmasking order {self.order!r}; choose from {', '.join(ORDERS)}")
        if self.draw not in DRAWS:
            raise ValueError(f"unknown token draw {self.draw!r}; choose from {', '.join(DRAWS)}")


def masked_counts(num_masked: int, steps: int, schedule: str = "cosine") -> list[int]:
    """How many tokens remain masked after each of `steps` steps.

    Strictly decreasing, at least one masked until the last step, none after it. With more
    steps than masked tokens, the extra steps come first-come: one token each, then zeros."""
    effective = min(steps, num_masked)
    ratios = SCHEDULES[schedule](torch.arange(1, effective + 1, dtype=torch.float64) / effective).tolist()
    counts, previous = [], num_masked
    for i, ratio in enumerate(ratios):
        remaining = math.floor(num_masked * ratio)
        # Leave room for every later step to unmask at least one token.
        remaining = max(min(remaining, previous - 1), effective - 1 - i)
        counts.append(remaining)
        previous = remaining
    return counts + [0] * (steps - effective)


def uniform(shape: Sequence[int], generators, device: torch.device | str = "cpu") -> torch.Tensor:
    """U[0, 1) of [B, *shape], row b drawn from generators[b]."""
    rows = [torch.rand(tuple(shape), generator=g, device=g.device) for g in generators]
    return torch.stack(rows).to(device)


def sample_tokens(logits_BNV: torch.Tensor, temperature: float, generators) -> torch.Tensor:
    """Draw one token per position by inverting its CDF with one uniform number from its row's
    generator: a batch row draws exactly what it would alone, and a draw costs one random
    number per position rather than one per vocabulary entry (Gumbel-max)."""
    if temperature == 0:
        return logits_BNV.argmax(-1)
    cdf_BNV = (logits_BNV.float() / temperature).softmax(-1).cumsum(-1)
    u_BN1 = uniform(logits_BNV.shape[1:2], generators, logits_BNV.device)[..., None] * cdf_BNV[..., -1:]
    # right=True: the first entry whose CDF exceeds u, so tokens of probability 0 are never drawn.
    return torch.searchsorted(cdf_BNV, u_BN1, right=True)[..., 0].clamp_(max=logits_BNV.shape[-1] - 1)


def median_tokens(logits_BNV: torch.Tensor, temperature: float, fsq: FiniteScalarQuantizer) -> torch.Tensor:
    """Per position, the token whose level in each of `fsq`'s dimensions is the median of that
    dimension's marginal under softmax(logits / temperature) (temperature 0: the argmax token).
    Where the softmax hesitates between neighbouring levels it settles between them, where a
    draw would pick one side at random: the L1-optimal choice per dimension."""
    if temperature == 0:
        return logits_BNV.argmax(-1)
    digits_VD = fsq.digits(torch.arange(logits_BNV.shape[-1], device=logits_BNV.device))
    probs_BNV = (logits_BNV.float() / temperature).softmax(-1)
    median_BND = torch.stack([
        # dimension d's marginal: probabilities summed by level; its median is the first level
        # whose cumulative probability reaches one half.
        (probs_BNV.new_zeros(*probs_BNV.shape[:2], size).index_add_(2, digits_VD[:, d], probs_BNV).cumsum(-1) < 0.5).sum(-1)
        for d, size in enumerate(fsq.levels.tolist())], dim=-1)
    return (torch.minimum(median_BND, fsq.levels - 1) * fsq.basis).sum(-1)


def maskgit_decode(
    logits_fn: Callable[[torch.Tensor], torch.Tensor],
    tokens_BN: torch.Tensor,
    mask_id: int,
    config: SamplingConfig,
    generators: list[torch.Generator],
    fsq: FiniteScalarQuantizer | None = None,
) -> torch.Tensor:
    """Fill every `mask_id` position of tokens [B, N] and return the completed tokens.

    logits_fn(tokens [B, N]) -> logits [B, N, V] is called once per step with the partly
    decoded tokens. Every row must start with the same number of masked tokens (a new frame).
    `fsq`: the quantizer that made the tokens, which a median draw needs (and "auto" picks when given)."""
    if len(generators) != tokens_BN.shape[0]:
        raise ValueError(f"need one generator per batch row: {len(generators)} for {tokens_BN.shape[0]} rows")
    if config.draw == "median" and fsq is None:
        raise ValueError("draw 'median' needs ordered tokens: a tokenizer with an FSQ quantizer (draw 'sample' works with any)")
    median = config.draw == "median" or (config.draw == "auto" and fsq is not None)
    masked_BN = tokens_BN == mask_id
    per_row = masked_BN.sum(1)
    if (per_row != per_row[0]).any():
        raise ValueError("every row must start with the same number of masked tokens")
    tokens_BN = tokens_BN.clone()
    for step, remaining in enumerate(masked_counts(int(per_row[0]), config.steps, config.schedule)):
        if not masked_BN.any():
            break
        logits_BNV = logits_fn(tokens_BN)
        if median:
            proposed_BN = median_tokens(logits_BNV, config.temperature, fsq)
        else:
            proposed_BN = sample_tokens(logits_BNV, config.temperature, generators)
        if config.order == "random":
            score_BN = uniform(tokens_BN.shape[1:], generators, tokens_BN.device)
        else:
            score_BN = logits_BNV.float().log_softmax(-1).gather(-1, proposed_BN[..., None])[..., 0]
            if config.order == "annealed":
                gumbel_BN = -torch.log(-torch.log(uniform(tokens_BN.shape[1:], generators, tokens_BN.device).clamp_min(1e-20)))
                score_BN = score_BN + CHOICE_TEMPERATURE * (1 - (step + 1) / config.steps) * gumbel_BN
        # Fix the best-scoring masked positions; already fixed ones never compete.
        score_BN = score_BN.masked_fill(~masked_BN, -math.inf)
        to_fix = int(masked_BN[0].sum()) - remaining
        chosen_BK = score_BN.topk(to_fix, dim=1).indices
        fix_BN = torch.zeros_like(masked_BN).scatter_(1, chosen_BK, True)
        tokens_BN = torch.where(fix_BN, proposed_BN, tokens_BN)
        masked_BN = masked_BN & ~fix_BN
    return tokens_BN
