"""Explainability as numbers: modality ablation, Integrated Gradients attributions and their faithfulness.

* Modality contribution: the drop in test F1 (overall and per emotion) when one branch is zeroed at
  test time.
* Attributions: Integrated Gradients (captum) over each branch's input representation, summed to one
  score per token (text) or per frame (audio: 10 ms log-mel frames or 20 ms waveform chunks).
* Faithfulness (ERASER-style): comprehensiveness = drop in the predicted class's probability when the
  top 20% attributed positions of a branch are removed (set to the IG baseline, zero); sufficiency = the
  drop when only those are kept; the same removal of random positions is the control. A branch's
  faithfulness is comprehensiveness minus the random control: > 0 means the attributions find what the
  model actually uses.

A model with dialogue context is explained on the current turn only: attributions and faithfulness run
it with no other turn in the window (as at a dialog's first turn), while the modality ablation scores
the full model, neighbouring turns included.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from captum.attr import IntegratedGradients

from harness.config import TrialConfig
from harness.models.data import PairData
from harness.models.encoders import Embedded
from harness.models.fusion import EmotionModel
from harness.records import Explanation
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


def _probability(model: EmotionModel, xs: dict[str, torch.Tensor], template: dict[str, Embedded]) -> torch.Tensor:
    n = next(iter(xs.values())).shape[0]
    embedded = {
        m: Embedded(
            x,
            template[m].mask.expand(n, -1),
            lengths=None if template[m].lengths is None else template[m].lengths.expand(n),
        )
        for m, x in xs.items()
    }
    return torch.softmax(model.forward_embedded(embedded).float(), -1)


def explain_fold(
    model: EmotionModel, data: PairData, rows: np.ndarray, cfg: TrialConfig, device: torch.device
) -> Explanation:
    started = time.perf_counter()
    with ResourceMonitor(device) as monitor:
        ablation, ablation_emotion, drops, n = _explain(model, data, rows, cfg, device)
    mean = {kind: {m: float(np.mean(v)) for m, v in per.items()} for kind, per in drops.items()}
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
    )


def _explain(
    model: EmotionModel, data: PairData, rows: np.ndarray, cfg: TrialConfig, device: torch.device
) -> tuple[dict, dict, dict[str, dict[str, list[float]]], int]:
    model.eval()
    ablation, ablation_emotion = modality_ablation(model, data, rows, device, cfg.batch_size)
    modalities = model.modalities
    rng = np.random.default_rng(cfg.seed)
    picked = rng.choice(rows, size=min(cfg.explain_samples, len(rows)), replace=False)
    drops: dict[str, dict[str, list[float]]] = {
        k: {m: [] for m in modalities} for k in ("comprehensive", "sufficient", "random")
    }
    # cuDNN's RNN backward refuses eval mode; the native kernels give the same gradients.
    with torch.backends.cudnn.flags(enabled=False):
        for row in picked:
            batch = to_device(model.collate(data.features, np.array([row]), live=True, context=False), device)
            template = {m: _crop(e, cfg.explain_max_positions) for m, e in model.embed(batch).items()}
            inputs = tuple(template[m].x.detach().float() for m in modalities)

            def forward(*xs: torch.Tensor) -> torch.Tensor:
                return _probability(model, dict(zip(modalities, xs)), template)

            with torch.no_grad():
                probs = forward(*inputs)[0]
            target = int(probs.argmax())
            attributions = IntegratedGradients(forward).attribute(
                inputs,
                baselines=tuple(torch.zeros_like(x) for x in inputs),
                target=target,
                n_steps=cfg.explain_steps,
                internal_batch_size=cfg.explain_batch,
            )
            for i, m in enumerate(modalities):
                real = template[m].mask[0].cpu().numpy()
                scores = attributions[i][0].sum(-1).detach().cpu().numpy()
                positions = np.flatnonzero(real)
                k = max(1, int(round(TOP_FRACTION * len(positions))))
                top = positions[np.argsort(-scores[positions])[:k]]
                rest = np.setdiff1d(positions, top)
                chosen = {"comprehensive": top, "sufficient": rest, "random": rng.choice(positions, k, replace=False)}
                for kind, removed in chosen.items():
                    x = inputs[i].clone()
                    x[0, torch.as_tensor(removed, dtype=torch.long)] = 0.0
                    with torch.no_grad():
                        p = forward(*(x if j == i else inputs[j] for j in range(len(inputs))))[0, target]
                    drops[kind][m].append(float(probs[target] - p))
    return ablation, ablation_emotion, drops, len(picked)


def _crop(embedded: Embedded, max_positions: int) -> Embedded:
    """At most ``max_positions`` positions of an explained input: bounds the cost of Integrated Gradients
    (which runs the live encoder ``explain_steps`` times) on long utterances."""
    if max_positions <= 0 or embedded.x.shape[1] <= max_positions:
        return embedded
    lengths = None
    if embedded.lengths is not None:  # waveform chunks: samples
        lengths = embedded.lengths.clamp(max=max_positions * embedded.x.shape[-1])
    return Embedded(embedded.x[:, :max_positions], embedded.mask[:, :max_positions], embedded.pooled_layers, lengths)
