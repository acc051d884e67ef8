"""Simulated predictions of two models with a known architecture-level difference, to check intervals'
coverage (``benchmarks/bench_coverage.py`` and ``tests/unit/test_stats_coverage.py``).

**Generative model.** A dataset is ``n_sessions`` test sessions (speaker pairs) of ``n_dialogs`` dialogs
of ``sizes`` utterances each, scored by ``n_seeds`` trained models per session and architecture (LOSO: every
(seed, session) is its own training run). Each dialog has its own mix of the six emotions (Dirichlet around
IEMOCAP-like shares). Model m predicts an utterance of class k right when

    MU[m][k] + session_m + seed_{m,r,s} + dialog_d + dialog_{m,d} + noise > 0      (probit)

and otherwise a class drawn from a fixed confusion profile. ``session_m`` holds a difficulty shared by both
architectures plus, for architecture a only, the **session-level random effect of the a-b difference**
(speaker pairs on which a gains more or less than on average); ``seed`` is the training-run noise, ``dialog``
terms are dialog difficulty (shared and model-specific), and the utterance noise is correlated between the
two models and across seeds. With ``training_sd`` > 0, architecture a also gets a **training-set effect**
per fold: ``sum of a_j over the fold's training sessions / sqrt(size)``, one ``a_j`` per session, so folds
whose training sets share sessions share that part of their difference (LOSO here: adjacent folds share
two of their three training sessions, the others one; ``training_sets``), each fold's effect with SD
``training_sd`` in weighted-F1 units; ``training_sets=None`` gives every fold a training set of its own
(independent folds, the same SD). ``session_sd`` is stated in weighted-F1 units: the latent SD is
``session_sd`` divided by the slope of the population weighted F1 in the latent shift.

**The truth.** The architecture-level difference is the expected per-session difference over the
population of sessions, seeds and dialogs. Given a model's latent shift z (session + seed), the expected
confusion matrix of a session is in closed form (the dialog and utterance terms integrate out:
P(right | k, z) = Phi((MU_k + z) / sqrt(1 + SD_DIALOG^2 + SD_DIALOG_MODEL^2)), labels independent of the
latents); weighted F1 and UA follow from it, and their expectation over z ~ N(0, sd^2) is a Gauss-Hermite
sum. UA's per-session recall is unbiased for it; weighted F1's per-session ratio has a finite-sample bias
of the order of 1e-3 that mostly cancels in the difference (checked in the tests against long runs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as _scipy_stats

from harness.report.predictions import EMOTIONS, Aligned, metric_from_counts

BASE = np.array([0.23, 0.15, 0.08, 0.15, 0.25, 0.14])  # IEMOCAP-like class shares (neu ang hap sad fru exc)
MU = {"a": np.array([0.45, 0.65, 0.10, 0.75, 0.30, 0.40]), "b": np.array([0.40, 0.55, 0.05, 0.70, 0.15, 0.25])}
_ERRORS = np.array(
    [
        [0, 1, 1, 3, 4, 1],
        [2, 0, 1, 1, 5, 1],
        [3, 1, 0, 1, 1, 5],
        [5, 1, 1, 0, 2, 1],
        [4, 3, 1, 2, 0, 1],
        [2, 1, 5, 1, 1, 0],
    ],
    float,
)
CONFUSION = _ERRORS / _ERRORS.sum(axis=1, keepdims=True)  # where an error on class k goes
SD_DIALOG, SD_DIALOG_MODEL = 0.5, 0.25  # dialog difficulty shared by both models / specific to each
SD_SESSION_SHARED = 0.15  # session difficulty shared by both architectures
RHO = 0.6  # share of the utterance noise common to both models and all seeds
CONCENTRATION = 3.0  # Dirichlet concentration of a dialog's emotion mix
_HERMITE = np.polynomial.hermite_e.hermegauss(64)  # nodes and weights for E[f(Z)], Z ~ N(0, 1)


@dataclass(frozen=True)
class Design:
    """The size and noise of one simulated dataset.

    Attributes:
        session_sd: SD of the session-level random effect of the a-b difference, in weighted-F1 units.
        n_sessions: Test sessions (speaker pairs).
        n_dialogs: Dialogs per session.
        sizes: Smallest and largest number of utterances of a dialog (uniform).
        n_seeds: Seeds (training runs per session) per architecture.
        seed_sd: SD of a training run's latent shift (seed-level noise).
        training_sd: SD of a fold's training-set effect on the a-b difference, in weighted-F1 units.
        training_sets: Per fold (test session 0..n_sessions-1), the sessions (0-based) it trains on; None:
            independent training sets.
    """

    session_sd: float = 0.0
    n_sessions: int = 5
    n_dialogs: int = 30
    sizes: tuple[int, int] = (6, 14)
    n_seeds: int = 3
    seed_sd: float = 0.05
    training_sd: float = 0.0
    training_sets: tuple[tuple[int, ...], ...] | None = None


def _population(metric: str, model: str, z: np.ndarray) -> np.ndarray:
    """Population weighted F1 or UA of ``model`` at latent shifts ``z`` (any shape)."""
    scale = np.sqrt(1.0 + SD_DIALOG**2 + SD_DIALOG_MODEL**2)
    right = _scipy_stats.norm.cdf((MU[model] + np.asarray(z)[..., None]) / scale)  # (..., 6)
    support = np.broadcast_to(BASE, right.shape)
    tp = BASE * right
    predicted = tp + ((BASE * (1 - right))[..., :, None] * CONFUSION).sum(axis=-2)
    return metric_from_counts(metric, support, tp, predicted)


def slope(metric: str = "weighted_f1") -> float:
    """d(population metric of model a)/d(latent shift) at 0: converts a metric-scale SD to the latent scale."""
    h = 1e-4
    return float((_population(metric, "a", np.array(h)) - _population(metric, "a", np.array(-h))) / (2 * h))


def latent_sds(design: Design) -> dict[str, float]:
    """Latent SDs of each model's per-run shift (session + seed) and of the difference's session effect."""
    effect = np.hypot(design.session_sd, design.training_sd) / slope("weighted_f1")
    shared = SD_SESSION_SHARED**2 + design.seed_sd**2
    return {"effect": effect, "a": float(np.sqrt(shared + effect**2)), "b": float(np.sqrt(shared))}


def true_difference(design: Design, metric: str = "weighted_f1") -> float:
    """The architecture-level difference a - b: E[metric_a(z_a)] - E[metric_b(z_b)] over the run shifts."""
    nodes, weights = _HERMITE
    weights = weights / weights.sum()
    sd = latent_sds(design)
    return float(
        weights @ _population(metric, "a", sd["a"] * nodes) - weights @ _population(metric, "b", sd["b"] * nodes)
    )


@dataclass(frozen=True)
class Dataset:
    """One simulated dataset as arrays (:meth:`aligned`) or as two predictions tables (:meth:`frames`)."""

    labels: np.ndarray  # (n,)
    sessions: np.ndarray  # (n,) 0..n_sessions-1
    dialogs: np.ndarray  # (n,) 0..n_dialogs_total-1, numbered session by session
    preds: np.ndarray  # (2, n_seeds, n): model a, model b
    n_sessions: int
    n_dialogs: int

    def dialog_names(self) -> np.ndarray:
        """IEMOCAP-like name of each dialog (``Ses01F_impro00``; every third one scripted)."""
        per_session = self.n_dialogs // self.n_sessions
        return np.array(
            [
                f"Ses{d // per_session + 1:02d}{'FM'[d % 2]}_{'script' if d % 3 == 2 else 'impro'}{d % per_session:02d}"
                for d in range(self.n_dialogs)
            ],
            dtype=object,
        )

    def aligned(self) -> Aligned:
        """The arrays :func:`harness.report.predictions.align` gives for :meth:`frames` (dialogs numbered by
        session, then name, as it numbers them)."""
        rank = np.empty(self.n_dialogs, dtype=np.int64)
        rank[np.argsort(self.dialog_names(), kind="stable")] = np.arange(self.n_dialogs)  # names start Ses<s>
        return Aligned(
            labels=self.labels,
            sessions=self.sessions,
            session_values=tuple(range(1, self.n_sessions + 1)),
            dialogs=rank[self.dialogs],
            n_dialogs=self.n_dialogs,
            preds=self.preds,
            seeds=tuple(range(self.preds.shape[1])),
        )

    def frames(self, rng: np.random.Generator | None = None) -> list[pd.DataFrame]:
        """The two models' predictions tables in the documented schema (``pair`` "a"/"b", ``fold`` = session
        1..S, IEMOCAP-like dialog names, class probabilities ``p_<emotion>`` whose argmax is ``pred``)."""
        rng = rng or np.random.default_rng(0)
        n_seeds, n = self.preds.shape[1:]
        names = self.dialog_names()[self.dialogs]
        position = np.arange(n) - np.searchsorted(self.dialogs, self.dialogs)
        ids = np.array([f"{name}_{'FM'[p % 2]}{p:03d}" for name, p in zip(names, position)], dtype=object)
        out = []
        for m, pair in enumerate(("a", "b")):
            pred = self.preds[m].ravel()
            scores = rng.gamma(1.0, 1.0, (len(pred), len(EMOTIONS)))
            scores[np.arange(len(pred)), pred] = scores.max(axis=1) + rng.gamma(1.0, 1.0, len(pred))
            probs = scores / scores.sum(axis=1, keepdims=True)
            frame = pd.DataFrame(
                {
                    "pair": pair,
                    "seed": np.repeat(np.arange(n_seeds), n),
                    "fold": np.tile(self.sessions + 1, n_seeds),
                    "utterance_id": np.tile(ids, n_seeds),
                    "dialog": np.tile(names, n_seeds),
                    "label": np.tile(self.labels, n_seeds),
                    "pred": pred,
                }
            )
            for k, emotion in enumerate(EMOTIONS):
                frame[f"p_{emotion}"] = probs[:, k]
            out.append(frame)
        return out


def simulate(rng: np.random.Generator, design: Design) -> Dataset:
    """One dataset from the generative model (see the module docstring)."""
    n_dialogs = design.n_sessions * design.n_dialogs
    size = rng.integers(design.sizes[0], design.sizes[1] + 1, n_dialogs)
    dialog = np.repeat(np.arange(n_dialogs), size)
    session = dialog // design.n_dialogs
    n = len(dialog)
    mix = rng.dirichlet(CONCENTRATION * BASE, n_dialogs)
    labels = (rng.random(n)[:, None] > np.cumsum(mix, axis=1)[dialog, :-1]).sum(axis=1)
    shared_session = rng.normal(0.0, SD_SESSION_SHARED, design.n_sessions)
    effect = rng.normal(0.0, design.session_sd / slope("weighted_f1"), design.n_sessions)  # a-b session effect
    effect = effect + training_effects(rng, design)
    shared_dialog = rng.normal(0.0, SD_DIALOG, n_dialogs)
    common_noise = rng.normal(size=n)
    cumulative = np.cumsum(CONFUSION, axis=1)[labels, :-1]
    preds = np.empty((2, design.n_seeds, n), dtype=np.int64)
    for m, model in enumerate(("a", "b")):
        session_shift = shared_session + (effect if model == "a" else 0.0)
        dialog_shift = shared_dialog + rng.normal(0.0, SD_DIALOG_MODEL, n_dialogs)
        base = MU[model][labels] + session_shift[session] + dialog_shift[dialog]
        run_shift = rng.normal(0.0, design.seed_sd, (design.n_seeds, design.n_sessions))[:, session]
        noise = np.sqrt(RHO) * common_noise + np.sqrt(1 - RHO) * rng.normal(size=(design.n_seeds, n))
        error = (rng.random((design.n_seeds, n))[..., None] > cumulative).sum(axis=-1)
        preds[m] = np.where(base + run_shift + noise > 0, labels, error)
    return Dataset(labels, session, dialog, preds, design.n_sessions, n_dialogs)


def training_effects(rng: np.random.Generator, design: Design) -> np.ndarray:
    """Each fold's training-set effect on the a-b difference (latent scale; zeros when ``training_sd`` is 0)."""
    sd = design.training_sd / slope("weighted_f1")
    if sd == 0:
        return np.zeros(design.n_sessions)
    if design.training_sets is None:
        return rng.normal(0.0, sd, design.n_sessions)
    share = rng.normal(0.0, sd, design.n_sessions)  # one per session used for training
    return np.array([share[list(t)].sum() / np.sqrt(len(t)) for t in design.training_sets])


@dataclass(frozen=True)
class Coverage:
    """Share of simulated datasets whose 95% interval holds the true difference, per method.

    Attributes:
        design: The simulated design.
        metric: ``"weighted_f1"`` or ``"ua"``.
        truth: The true architecture-level difference.
        n_datasets: Datasets simulated.
        session_t: Coverage of the speaker-level interval (:func:`harness.report.inference.primary_difference`).
        overlap_t: Coverage of the overlap-aware interval (Nadeau-Bengio corrected t, same estimate).
        dialog_bootstrap: Coverage of the dialog bootstrap (NaN when not run).
        mean_width: Mean width of each method's interval.
        mean_estimate: Mean estimate of the speaker-level method (its bias is this minus ``truth``).
    """

    design: Design
    metric: str
    truth: float
    n_datasets: int
    session_t: float
    overlap_t: float
    dialog_bootstrap: float
    mean_width: dict[str, float]
    mean_estimate: float


def coverage(
    design: Design,
    metric: str,
    n_datasets: int,
    seed: int = 0,
    bootstrap_datasets: int | None = None,
    n_boot: int = 1000,
    confidence: float = 0.95,
) -> Coverage:
    """Simulate ``n_datasets`` datasets and count how often each method's interval covers the truth.

    The speaker-level interval is computed on every dataset, batched (each dataset's per-session differences
    come from one set of counts); the dialog bootstrap on the first ``bootstrap_datasets`` (default all;
    0 skips it), with ``n_boot`` resamples each. Both call the library's own code on the arrays that
    :func:`harness.report.predictions.align` would give (the tests check that they match the DataFrame path).
    """
    from harness.report.bootstrap import contrast_bootstrap
    from harness.report.inference import overlap_summary, per_session_contrast, t_summary

    truth = true_difference(design, metric)
    rng = np.random.default_rng(seed)
    n_boot_sets = n_datasets if bootstrap_datasets is None else min(bootstrap_datasets, n_datasets)
    per_session = np.empty((n_datasets, design.n_sessions))
    boot_hits, boot_width = 0, 0.0
    for i in range(n_datasets):
        data = simulate(rng, design)
        per_session[i] = per_session_contrast(
            data.labels, data.sessions, data.n_sessions, data.preds, (1.0, -1.0), metric
        )
        if i < n_boot_sets:
            boot = contrast_bootstrap(data.aligned(), (1.0, -1.0), metric, n_boot, rng, confidence)
            boot_hits += boot.ci_low <= truth <= boot.ci_high
            boot_width += boot.ci_high - boot.ci_low
    summary = t_summary(per_session, confidence)
    overlap = overlap_summary(per_session, confidence)
    hits = (summary["low"] <= truth) & (truth <= summary["high"])
    return Coverage(
        design=design,
        metric=metric,
        truth=truth,
        n_datasets=n_datasets,
        session_t=float(hits.mean()),
        overlap_t=float(((overlap["low"] <= truth) & (truth <= overlap["high"])).mean()),
        dialog_bootstrap=boot_hits / n_boot_sets if n_boot_sets else float("nan"),
        mean_width={
            "session_t": float((summary["high"] - summary["low"]).mean()),
            "overlap_t": float((overlap["high"] - overlap["low"]).mean()),
            "dialog_bootstrap": boot_width / n_boot_sets if n_boot_sets else float("nan"),
        },
        mean_estimate=float(summary["mean"].mean()),
    )
