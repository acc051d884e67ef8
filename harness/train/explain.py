"""Explainability as numbers: modality ablation, Integrated Gradients attributions and their faithfulness.

* Modality contribution: the drop in test F1 (overall and per emotion) when one branch is zeroed at
  test time.
* Attributions: Integrated Gradients (captum) over the input of each branch's *trained* part, summed to one
  score per position (token, or frame: 10 ms log-mel frames, 20 ms speech-model frames):
    - small encoders (CNN-BiLSTM, BiLSTM) train whole: their input (log-mel frames, word embeddings);
    - fine-tuned pretrained encoders: their raw input (20 ms waveform chunks, subword embeddings);
    - frozen pretrained encoders: the frozen encoder's output, every layer's hidden state at every
      position, computed once per utterance. The downstream sees only their mean over positions (the
      cached layer means), so each Integrated Gradients step costs a head pass instead of a forward and
      backward through 95 M parameters: with real-size wav2vec2-base + ALBERT-base on 2 CPU cores one
      explained utterance went from about 100 s (raw-input IG, measured on a loaded machine) to about
      0.3 s, most of it the one backbone forward (benchmarks/bench_explain.py). The trade-off: these
      attributions say which positions *of the frozen representation* the trained model relies on, not
      which input samples the frozen encoder turned into them (self-attention mixes neighbouring
      positions), so a frozen branch's faithfulness measures the downstream, not the backbone.
      Comparisons across pairs should say so.
* Faithfulness (ERASER-style): comprehensiveness = drop in the predicted class's probability when the
  top 20% attributed positions of a branch are removed (set to the IG baseline, zero); sufficiency = the
  drop when only those are kept; the same removal of random positions is the control. A branch's
  faithfulness is comprehensiveness minus the random control: > 0 means the attributions find what the
  model actually uses.

Cost is bounded three ways: explained inputs are cut to ``explain_max_positions``; interpolation steps run
in batches of ``explain_batch`` (memory); and a time budget stops explaining further utterances once the
next would pass it, so ``Explanation.n_samples`` says how many were. The budget is a share of the trial's
time (``ExplainBudget``): ``explain_budget`` x the train+score+measure seconds of the trial's folds so far,
minus what earlier folds spent explaining. A trial's first fold explains at least one utterance; a later
fold may explain none when the budget is spent (its modality ablation still runs), which keeps the share
bounded where folds take about a second (frozen encoders on the demo corpus) and one Integrated-Gradients
utterance through a live 94 M-parameter backbone does not fit in a tenth of one.

A model with dialogue context is explained on the current turn only: attributions and faithfulness run
it with no other turn in the window (as at a dialog's first turn), while the modality ablation scores
the full model, neighbouring turns included.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from captum.attr import IntegratedGradients

from harness.config import TrialConfig
from harness.models.data import PairData
from harness.models.encoders.base import Embedded, Encoder
from harness.models.encoders.pretrained import PretrainedEncoder
from harness.models.fusion import EmotionModel
from harness.records import Explanation, FoldRecord
from harness.train.batching import predict, to_device
from harness.train.measure import ResourceMonitor
from harness.train.metrics import compute_metrics

TOP_FRACTION = 0.2


def modality_ablation(
    model: EmotionModel, data: PairData, rows: np.ndarray, device: torch.device, batch_size: int
) -> tuple[dict[str, float], dict[str, float]]:
    labels = data.labels[rows]
    full = compute_metrics(labels, predict(model, data, rows, device, batch_size).argmax(1), data.classes)
    overall, per_emotion = {}, {}
    for m in model.modalities if len(model.modalities) == 2 else []:
        ablated = compute_metrics(
            labels, predict(model, data, rows, device, batch_size, drop=m).argmax(1), data.classes
        )
        overall[m] = full.weighted_f1 - ablated.weighted_f1
        per_emotion.update({f"{m}.{e}": full.per_emotion_f1[e] - ablated.per_emotion_f1[e] for e in data.classes})
    return overall, per_emotion


@dataclass
class Explained:
    """One branch's explained input for one utterance.

    Attributions are per position of ``x``; Integrated Gradients runs over ``pool(x)``, what the model
    reads. For live branches ``pool`` is the identity. For a frozen pretrained branch ``x`` holds every
    layer's hidden state at every position and ``pool`` is their mean over real positions (the cached layer
    means); being linear, IG over ``x`` equals IG over the pooled means spread back over the positions in
    proportion to their share of the mean, which is how ``scores`` computes it: exact, and each IG step
    is a head pass on a [layers, hidden] input instead of on [positions, layers x hidden]."""

    x: torch.Tensor  # [1, T, F]: what the attributions are over; removals act here
    mask: torch.Tensor  # [1, T] bool: real positions
    pool: Callable[[torch.Tensor], torch.Tensor]  # x-like [n, T, F] -> what the model reads
    embed: Callable[[torch.Tensor], Embedded]  # pooled [n, ...] -> the branch's Embedded

    def scores(self, path_gradient: torch.Tensor) -> np.ndarray:
        """Per-position attribution from the path-averaged gradient with respect to ``pool(x)`` [1, ...]:
        Integrated Gradients with a zero baseline, summed over features."""
        if self.x.shape == path_gradient.shape:  # live: IG = x * averaged gradient
            return (self.x * path_gradient).sum(-1)[0].detach().cpu().numpy()
        weights = self.mask.to(self.x.dtype) / self.mask.sum().clamp(min=1)  # each position's share of the mean
        layers = self.x.view(*self.x.shape[:2], *path_gradient.shape[1:]) * weights[:, :, None, None]
        return (layers * path_gradient[:, None]).sum((2, 3))[0].detach().cpu().numpy()


def explained_input(encoder: Encoder, embedded: Embedded, max_positions: int) -> Explained:
    """The input of ``encoder``'s trained part for one utterance (see the module docstring)."""
    embedded = _crop(embedded, max_positions)
    if isinstance(encoder, PretrainedEncoder) and encoder.frozen:
        with torch.no_grad():
            states, mask = encoder.hidden_states(embedded)
        stacked = torch.stack(states, dim=2).float()  # [1, T, layers, hidden]
        layers = stacked.shape[2]
        weights = mask.to(stacked.dtype)[:, :, None, None]

        def pool(x: torch.Tensor) -> torch.Tensor:
            return (x.view(*x.shape[:2], layers, -1) * weights).sum(1) / weights.sum(1).clamp(min=1.0)

        def pooled(means: torch.Tensor) -> Embedded:
            ones = torch.ones(means.shape[:2], dtype=torch.bool, device=means.device)
            return Embedded(means, ones, pooled_layers=True)

        return Explained(stacked.flatten(2), mask, pool, pooled)

    def live(x: torch.Tensor) -> Embedded:
        n = x.shape[0]
        lengths = None if embedded.lengths is None else embedded.lengths.expand(n)
        return Embedded(x, embedded.mask.expand(n, -1), lengths=lengths)

    return Explained(embedded.x.detach().float(), embedded.mask, lambda x: x, live)


@dataclass(frozen=True)
class ExplainBudget:
    """What one fold may spend explaining: a share of the trial's time, carried over its folds."""

    share: float  # cfg.explain_budget; 0: no bound
    carried_s: float = 0.0  # share x earlier folds' train+score+measure seconds, minus their explanations
    per_utterance_s: float = 0.0  # the slowest earlier explanation per utterance (a conservative estimate)
    min_samples: int = 1  # the trial's first fold explains at least one utterance

    @classmethod
    def after(cls, share: float, earlier: list[FoldRecord]) -> ExplainBudget:
        explained = [f.explanation for f in earlier if f.explanation is not None]
        work = sum(v for f in earlier for k, v in f.seconds.items() if k != "explain")
        return cls(
            share,
            share * work - sum(e.seconds for e in explained),
            max((e.seconds / e.n_samples for e in explained if e.n_samples), default=0.0),
            0 if explained else 1,
        )

    def seconds(self, fold_work_s: float) -> float | None:
        """The budget of a fold whose train+score+measure took ``fold_work_s``; None when unbounded."""
        return None if self.share <= 0 else self.carried_s + self.share * fold_work_s


def explain_fold(
    model: EmotionModel,
    data: PairData,
    rows: np.ndarray,
    cfg: TrialConfig,
    device: torch.device,
    budget_s: float | None = None,
    min_samples: int = 1,
    per_utterance_s: float = 0.0,
) -> Explanation:
    """Ablation on every row; attributions and faithfulness on up to ``cfg.explain_samples`` random rows,
    fewer when ``budget_s`` (seconds for the whole explanation) would otherwise be passed, but at least
    ``min_samples``. ``per_utterance_s``: the expected cost of one utterance before any is timed here."""
    started = time.perf_counter()
    with ResourceMonitor(device) as monitor:
        ablation, ablation_emotion, drops, n = _explain(
            model, data, rows, cfg, device, started, budget_s, min_samples, per_utterance_s
        )
    mean = {kind: {m: float(np.mean(v)) if v else float("nan") for m, v in per.items()} for kind, per in drops.items()}
    faithfulness = float(np.mean([mean["comprehensive"][m] - mean["random"][m] for m in model.modalities]))
    peak = (monitor.peak_gpu_bytes if monitor.peak_gpu_bytes is not None else monitor.peak_rss_bytes) / 1024**3
    return Explanation(
        ablation,
        ablation_emotion,
        mean["comprehensive"],
        mean["sufficient"],
        mean["random"],
        faithfulness,
        n,
        round(time.perf_counter() - started, 3),
        round(peak, 3),
        cfg.explain_max_positions,
        None if budget_s is None else round(budget_s, 3),
    )


def _explain(
    model: EmotionModel,
    data: PairData,
    rows: np.ndarray,
    cfg: TrialConfig,
    device: torch.device,
    started: float,
    budget_s: float | None,
    min_samples: int,
    per_utterance: float,
) -> tuple[dict, dict, dict[str, dict[str, list[float]]], int]:
    model.eval()
    ablation, ablation_emotion = modality_ablation(model, data, rows, device, cfg.batch_size)
    modalities = model.modalities
    rng = np.random.default_rng(cfg.seed)
    picked = rng.choice(rows, size=min(cfg.explain_samples, len(rows)), replace=False)
    drops: dict[str, dict[str, list[float]]] = {
        k: {m: [] for m in modalities} for k in ("comprehensive", "sufficient", "random")
    }
    done = 0
    # cuDNN's RNN backward refuses eval mode; the native kernels give the same gradients.
    with torch.backends.cudnn.flags(enabled=False):
        for row in picked:
            elapsed = time.perf_counter() - started
            if budget_s is not None and done >= min_samples and elapsed + per_utterance > budget_s:
                break  # the next utterance would pass the budget: the explained ones are a random subset
            one_started = time.perf_counter()
            _explain_one(model, data, int(row), modalities, cfg, device, rng, drops)
            done += 1
            per_utterance = max(per_utterance, time.perf_counter() - one_started)
    return ablation, ablation_emotion, drops, done


def _explain_one(
    model: EmotionModel,
    data: PairData,
    row: int,
    modalities: list[str],
    cfg: TrialConfig,
    device: torch.device,
    rng: np.random.Generator,
    drops: dict[str, dict[str, list[float]]],
) -> None:
    batch = to_device(model.collate(data.features, np.array([row]), live=True, context=False), device)
    embedded = model.embed(batch)
    branches = [explained_input(model.branches[m], embedded[m], cfg.explain_max_positions) for m in modalities]
    pooled = tuple(b.pool(b.x).detach() for b in branches)

    def forward(*xs: torch.Tensor) -> torch.Tensor:
        n = max(x.shape[0] for x in xs)
        inputs = {m: b.embed(x.expand(n, *x.shape[1:])) for m, b, x in zip(modalities, branches, xs)}
        return torch.softmax(model.forward_embedded(inputs).float(), -1)

    with torch.no_grad():
        probs = forward(*pooled)[0]
    target = int(probs.argmax())
    # multiply_by_inputs=False: the path-averaged gradients, turned into per-position attributions by each
    # branch (x * gradient for live inputs, spread over positions for pooled frozen ones)
    gradients = IntegratedGradients(forward, multiply_by_inputs=False).attribute(
        pooled,
        baselines=tuple(torch.zeros_like(x) for x in pooled),
        target=target,
        n_steps=cfg.explain_steps,
        internal_batch_size=cfg.explain_batch,
    )
    for i, m in enumerate(modalities):
        branch = branches[i]
        scores = branch.scores(gradients[i])
        positions = np.flatnonzero(branch.mask[0].cpu().numpy())
        k = max(1, round(TOP_FRACTION * len(positions)))
        top = positions[np.argsort(-scores[positions])[:k]]
        chosen = {
            "comprehensive": top,
            "sufficient": np.setdiff1d(positions, top),
            "random": rng.choice(positions, k, replace=False),
        }
        removed = branch.x.expand(len(chosen), *branch.x.shape[1:]).clone()  # one batch: the three removals
        for j, rows in enumerate(chosen.values()):
            removed[j, torch.as_tensor(rows, dtype=torch.long)] = 0.0
        with torch.no_grad():
            p = forward(*(branch.pool(removed) if j == i else pooled[j] for j in range(len(pooled))))[:, target]
        for j, kind in enumerate(chosen):
            drops[kind][m].append(float(probs[target] - p[j]))


def _crop(embedded: Embedded, max_positions: int) -> Embedded:
    """At most ``max_positions`` positions of an explained input: bounds the cost of Integrated Gradients
    (which runs the live encoder ``explain_steps`` times) on long utterances."""
    if max_positions <= 0 or embedded.x.shape[1] <= max_positions:
        return embedded
    lengths = None
    if embedded.lengths is not None:  # waveform chunks: samples
        lengths = embedded.lengths.clamp(max=max_positions * embedded.x.shape[-1])
    return Embedded(embedded.x[:, :max_positions], embedded.mask[:, :max_positions], embedded.pooled_layers, lengths)
