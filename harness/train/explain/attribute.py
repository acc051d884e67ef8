"""Integrated Gradients with a completeness check, and the randomisation sanity check.

Completeness (Sundararajan et al. 2017): Integrated-Gradients attributions sum to f(x) - f(baseline). The
numerical integral only approximates it; ``converged_ig`` starts at ``steps`` and doubles them until the
completeness error, |sum of attributions - (f(x) - f(baseline))| / max(|f(x) - f(baseline)|, ``DROP_FLOOR``),
is under ``TOLERANCE`` or the next doubling would pass ``ceiling`` (then the result says it did not
converge and its error is reported as is).

Sanity check (Adebayo et al. 2018, model-parameter randomisation): the attributions of the trained model
are compared with those computed after the trained head's weights are re-drawn at random. An attribution
method that explains the model must change: a high Spearman rank correlation between the two
(``sanity_rank_corr`` above ``SANITY_MAX_RANK_CORR``) flags attributions that do not depend on what the
head learned (an edge detector, the input's magnitude).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from captum.attr import IntegratedGradients
from scipy.stats import spearmanr
from torch import nn

TOLERANCE = 0.05  # relative completeness error accepted
MAX_STEPS = 128  # steps are doubled up to this many
MIN_STEPS = 4  # a budget never lowers steps below this
DROP_FLOOR = 0.05  # probability: below this a whole-input drop is too small to normalise by
SANITY_MAX_RANK_CORR = 0.5  # above this, attributions barely changed when the head was randomised
RANDOM_HEAD_SEED = 2018


@dataclass(frozen=True)
class IgResult:
    attributions: torch.Tensor  # like x
    steps: int
    error: float  # relative completeness error
    converged: bool
    drop: float  # f(x) - f(baseline)


def completeness_error(total: float, drop: float) -> float:
    return abs(total - drop) / max(abs(drop), DROP_FLOOR)


def integrated_gradients(
    forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, baseline: torch.Tensor, steps: int, batch: int
) -> IgResult:
    """One Integrated-Gradients run of ``forward`` ([n, ...] -> [n] scores) from ``baseline`` to ``x``."""
    attributions, delta = IntegratedGradients(forward).attribute(
        x, baselines=baseline, n_steps=steps, internal_batch_size=batch, return_convergence_delta=True
    )
    total = float(attributions.detach().double().sum())
    drop = total - float(delta.detach().double().sum())  # captum's delta = sum - (f(x) - f(baseline))
    error = completeness_error(total, drop)
    return IgResult(attributions.detach(), steps, error, error <= TOLERANCE, drop)


def converged_ig(
    forward: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    baseline: torch.Tensor,
    steps: int,
    batch: int,
    ceiling: int = MAX_STEPS,
) -> IgResult:
    """Integrated Gradients with steps doubled from ``steps`` until the completeness error is under
    ``TOLERANCE``, at most ``ceiling`` steps (``converged`` False when it never was)."""
    result = integrated_gradients(forward, x, baseline, steps, batch)
    while not result.converged and result.steps * 2 <= ceiling:
        result = integrated_gradients(forward, x, baseline, result.steps * 2, batch)
    return result


@contextmanager
def randomised(module: nn.Module, seed: int = RANDOM_HEAD_SEED) -> Iterator[None]:
    """Re-draw every parameter of ``module`` with its layers' own initialisation (a fixed seed), and put
    the trained weights back afterwards."""
    saved = {k: v.detach().clone() for k, v in module.state_dict().items()}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for layer in module.modules():
            reset = getattr(layer, "reset_parameters", None)
            if callable(reset):
                reset()
    try:
        yield
    finally:
        module.load_state_dict(saved)


def rank_corr(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation; NaN for fewer than two units or a constant vector."""
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def sanity_rank_corr(trained: np.ndarray, attribute: Callable[[], np.ndarray], head: nn.Module) -> float:
    """Rank correlation between ``trained`` unit attributions and ``attribute()``'s with ``head`` randomised."""
    with randomised(head):
        randomised_scores = attribute()
    return rank_corr(trained, randomised_scores)


def flagged(corr: float) -> bool:
    """Whether a sanity rank correlation says the attributions ignore the trained weights."""
    return bool(np.isfinite(corr) and corr > SANITY_MAX_RANK_CORR)
