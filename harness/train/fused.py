"""Train a fold's seeds as one fused model (``harness.models.fused``), then score, measure and explain each
member as the ordinary model it is: ``fit_members`` returns one ordinary ``FoldOutcome`` per seed.

Each member keeps what makes it its seed's model: its initial weights (built after ``seed_everything`` of
its own seed, as ``train_fold`` builds them) and its own batch order (its own ``np.random.default_rng``
over the same fold-resident buckets). A step takes every member's next batch, pads them to one shape and
sums the members' losses: each member's gradients are those of its own loss, clipped by its own norm, and
AdamW's state is per element, hence per member. Class weights come from the fold's training labels, the
same for every member. Early stopping is per member: a member keeps its best epoch's weights and stops
being judged after its patience runs out (it still rides along in the fused steps, which change nothing
kept); training ends when every member has stopped or at ``epochs``.

What is not the separate model's: dropout masks are drawn from one stream for the fused model (seeded
with the first member's seed), so with dropout on a member is a statistically equal, not bit-equal,
replica of its separately trained model. Costs are divided evenly among the members (time, CPU and
device seconds, energy); memory peaks are the fused run's.

Where the architecture does not fuse (``why_not_fused``: pretrained backbones, attention fusion, dialogue
context) or buckets are off, each seed trains alone through ``fit_fold`` and the reason is logged.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import psutil
import torch
import torch.nn.functional as F
from sklearn.utils.class_weight import compute_class_weight
from transformers import get_cosine_schedule_with_warmup

from harness.config import TrialConfig
from harness.corpus.folds import Fold
from harness.models.data import PairData
from harness.models.fused import FUSED_ENCODERS, FusedEmotionModel, why_not_fused
from harness.models.fusion import EmotionModel, build_pair_model
from harness.models.pairs import PairSpec
from harness.records import EpochStat, FoldRecord
from harness.train.batching import ResidentBuckets, batches
from harness.train.fit import (
    GB,
    FoldOutcome,
    NonFiniteLossError,
    Report,
    Trained,
    autocast_for,
    default_device,
    finish_fold,
    fit_fold,
    seed_everything,
)
from harness.train.measure import ResourceMonitor, count_params
from harness.train.metrics import compute_metrics

log = logging.getLogger(__name__)


def why_not_fused_configs(cfgs: list[TrialConfig]) -> str | None:
    """None when these configs can train as one fused model (same config but the seed, resident buckets)."""
    if len(cfgs) < 2:
        return "a single seed"
    if len({replace(c, seed=0) for c in cfgs}) > 1:
        return "the seeds' configs differ in more than the seed"
    if cfgs[0].bucket_size == 0 or cfgs[0].context.enabled:
        return "batches are collated per step (bucket_size 0 or dialogue context)"
    return None


def why_not_fused_pair(pair: PairSpec, cfg: TrialConfig) -> str | None:
    """``why_not_fused`` from the pair's registry and the config alone, before any model is built (what a
    final stage asks to decide whether to group a fold's seeds into one trial)."""
    for modality, variant in pair.variants.items():
        if variant.cls not in FUSED_ENCODERS:
            return f"the {modality} encoder {variant.name} has no fused form"
    if len(pair.variants) == 2 and cfg.fusion == "attention":
        return "cross-modal attention fusion has no batched form here"
    return why_not_fused_configs([cfg, replace(cfg, seed=cfg.seed + 1)])


def class_weights(cfg: TrialConfig, data: PairData, fold: Fold, device: torch.device) -> torch.Tensor | None:
    """``train_fold``'s "balanced" weights from the training labels (1 for a class with no training row)."""
    if not cfg.class_weighted:
        return None
    present = np.unique(data.labels[fold.train])
    balanced = np.ones(len(data.classes))
    balanced[present] = compute_class_weight("balanced", classes=present, y=data.labels[fold.train])
    return torch.tensor(balanced, dtype=torch.float32, device=device)


def stack_members(inputs: list[dict], labels: list[torch.Tensor]) -> tuple[dict, torch.Tensor, torch.Tensor]:
    """The members' batches as one: every tensor padded to the largest batch and length, stacked on a new
    leading member axis; returns the inputs, the labels [K, B] and which rows are real [K, B]."""

    def pad(tensors: list[torch.Tensor]) -> torch.Tensor:
        shape = [max(t.shape[d] for t in tensors) for d in range(tensors[0].ndim)]
        padded = []
        for t in tensors:
            if list(t.shape) != shape:
                full = t.new_zeros(shape)
                full[tuple(slice(0, n) for n in t.shape)] = t
                t = full
            padded.append(t)
        return torch.stack(padded)

    def merge(items: list[dict]) -> dict:
        return {
            k: merge([i[k] for i in items]) if isinstance(v, dict) else pad([i[k] for i in items])
            for k, v in items[0].items()
        }

    rows = max(len(y) for y in labels)
    valid = torch.stack([torch.arange(rows, device=labels[0].device) < len(y) for y in labels])
    return merge(inputs), pad(labels), valid


def member_losses(
    logits: torch.Tensor, labels: torch.Tensor, valid: torch.Tensor, weights: torch.Tensor | None
) -> torch.Tensor:
    """Each member's ``CrossEntropyLoss(weight=weights)`` (mean over its real rows, class-weighted) [K]."""
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
    nll = -F.log_softmax(logits, -1).gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    w = valid.to(nll.dtype) if weights is None else weights.to(nll.dtype)[labels] * valid
    return (nll * w).sum(1) / w.sum(1)


def fused_step(
    model: FusedEmotionModel,
    batch: dict,
    labels: torch.Tensor,
    valid: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    weights: torch.Tensor | None,
    autocast: torch.autocast,
    grad_clip: float,
) -> torch.Tensor:
    """One optimiser step of every member (``fit.optimise`` for K models); returns their losses [K],
    detached, on the device (nothing here waits for the device)."""
    with autocast:
        logits = model(batch)
    losses = member_losses(logits, labels, valid, weights)
    optimizer.zero_grad(set_to_none=True)
    losses.sum().backward()
    model.mask_gradients()
    model.clip_member_gradients(grad_clip)
    optimizer.step()
    return losses.detach()


@torch.no_grad()
def predict_members(model: FusedEmotionModel, store: ResidentBuckets, rows: np.ndarray) -> np.ndarray:
    """Every member's class probabilities [K, len(rows), classes] on one store's rows (all members read the
    same batches: the inputs are expanded along the member axis, not copied)."""
    model.eval()
    probs, held = [], []
    for i, bucket in enumerate(store.buckets):
        for chunk in batches(np.arange(len(bucket.rows)), store.batch_size):
            inputs, _ = store.take(i, slice(int(chunk[0]), int(chunk[-1]) + 1))
            expanded = _expand(inputs, model.k)
            probs.append(torch.softmax(model(expanded).float(), -1))
            held.append(bucket.rows[chunk])
    out = np.empty((model.k, len(rows), model.n_classes), dtype=np.float32)
    if probs:
        where = {int(r): i for i, r in enumerate(rows)}
        out[:, [where[int(r)] for r in np.concatenate(held)]] = torch.cat(probs, 1).cpu().numpy()
    return out


def _expand(batch: dict, k: int) -> dict:
    return {
        key: _expand(v, k) if isinstance(v, dict) else v.unsqueeze(0).expand(k, *v.shape) for key, v in batch.items()
    }


def build_members(cfgs: list[TrialConfig], pair: PairSpec, data: PairData, fold: Fold) -> list[EmotionModel]:
    """One model per config, each built right after ``seed_everything`` of its own seed (as ``train_fold``)."""
    models = []
    for cfg in cfgs:
        seed_everything(cfg.seed)
        models.append(build_pair_model(pair, cfg, data, fold.train))
    return models


def train_members(
    cfgs: list[TrialConfig],
    pair: PairSpec,
    data: PairData,
    fold: Fold,
    report: Report,
    device: torch.device,
    models: list[EmotionModel],
) -> list[Trained]:
    """``train_fold`` for every config at once, as one fused model of ``models`` (``build_members``)."""
    cfg, k = cfgs[0], len(cfgs)
    rngs = [np.random.default_rng(c.seed) for c in cfgs]
    rss_before = psutil.Process().memory_info().rss / GB
    fused = FusedEmotionModel(models).to(device)
    seed_everything(cfg.seed)  # the fused model's dropout stream
    optimizer = torch.optim.AdamW(fused.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * (math.ceil(len(fold.train) / cfg.batch_size) + 1)  # as train_fold's schedule
    scheduler = get_cosine_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * steps), steps)
    weights = class_weights(cfg, data, fold, device)
    autocast = autocast_for(cfg, device)
    train_store = ResidentBuckets(models[0], data, fold.train, cfg.bucket_size, cfg.batch_size, device)
    val_store = ResidentBuckets(models[0], data, fold.validation, cfg.bucket_size, cfg.batch_size, device)
    torch.backends.cudnn.benchmark = device.type == "cuda"
    params = count_params(models[0])

    best_f1, best_epoch = [-1.0] * k, [0] * k
    best_state: list[dict[str, torch.Tensor] | None] = [None] * k
    stopped, epochs_run = ["max_epochs"] * k, [0] * k
    active = set(range(k))
    histories: list[list[EpochStat]] = [[] for _ in range(k)]
    train_seconds, utterances = 0.0, [0] * k
    with ResourceMonitor(device) as monitor:
        for epoch in range(1, cfg.epochs + 1):
            fused.train()
            started, step_losses = time.perf_counter(), []
            picks = [train_store.epoch_indices(rng) for rng in rngs]
            for step in zip(*picks, strict=True):
                taken = [train_store.take(b, index) for b, index in step]
                batch, labels, valid = stack_members([t[0] for t in taken], [t[1] for t in taken])
                step_losses.append(fused_step(fused, batch, labels, valid, optimizer, weights, autocast, cfg.grad_clip))
                scheduler.step()
                for m, (_, index) in enumerate(step):
                    utterances[m] += len(index) if m in active else 0
            losses = torch.stack(step_losses).float().cpu().numpy()  # [steps, K]: the epoch's one wait
            train_seconds += time.perf_counter() - started
            bad = [m for m in active if not np.isfinite(losses[:, m]).all()]
            if bad:
                raise NonFiniteLossError(
                    f"fold {fold.test_session} epoch {epoch}: training loss is not finite for seed(s) "
                    f"{' '.join(str(cfgs[m].seed) for m in bad)} (lr={cfg.lr:g}, fused seeds); trial stopped"
                )
            probabilities = predict_members(fused, val_store, fold.validation)
            scores = [
                compute_metrics(data.labels[fold.validation], probabilities[m].argmax(1), data.classes)
                for m in range(k)
            ]
            for m in sorted(active):
                f1 = scores[m].weighted_f1
                histories[m].append(EpochStat(epoch, float(np.mean(losses[:, m])), f1))
                epochs_run[m] = epoch
                if f1 > best_f1[m]:
                    best_f1[m], best_epoch[m] = f1, epoch
                    best_state[m] = {n: t.detach().clone() for n, t in fused.member_state(m).items()}
                elif epoch - best_epoch[m] >= cfg.patience:
                    stopped[m] = "early_stopping"
                    active.discard(m)
            report(
                {
                    "fold": fold.test_session,
                    "epoch": epoch,
                    "params": params.total,
                    "members": k,
                    "train_loss": float(np.mean(losses)),
                    "val_weighted_f1": float(np.mean([s.weighted_f1 for s in scores])),
                    "val_macro_f1": float(np.mean([s.macro_f1 for s in scores])),
                }
            )
            if not active:
                break
    trained = []
    for m, model in enumerate(models):
        state = best_state[m] or {n: t.detach().clone() for n, t in fused.member_state(m).items()}
        model.load_state_dict(state)
        trained.append(
            Trained(
                model.to(device),
                best_epoch[m],
                epochs_run[m],
                stopped[m],
                train_seconds / k,
                utterances[m],
                monitor.shared(k),
                rss_before,
                histories[m],
            )
        )
    return trained


def fit_members(
    cfgs: list[TrialConfig],
    pair: PairSpec,
    data: PairData,
    fold: Fold,
    report: Report,
    device: torch.device | None = None,
    explain: bool = False,
    earlier: list[list[FoldRecord]] | None = None,
    measure_costs: Sequence[bool | None] | None = None,
    fuse: bool | None = None,
) -> list[FoldOutcome]:
    """``fit_fold`` for each of ``cfgs`` (one fold's seeds), trained as one fused model where the
    architecture allows (and ``fuse``), else one after another; one ordinary ``FoldOutcome`` per config.

    ``earlier``: each member's folds done before this one; ``measure_costs``: per member (latency and
    FLOPs depend on the config, so a final stage measures them for one seed). ``fuse``: None fuses on a
    GPU only, where a step is bound by the host's dispatch; a CPU is bound by arithmetic, which the
    block-diagonal LSTMs multiply by K (``benchmarks/bench_fused.py`` measured fused steps slower there)."""
    device = device or default_device()
    fuse = device.type == "cuda" if fuse is None else fuse
    earlier = earlier or [[] for _ in cfgs]
    costs: list[bool | None] = list(measure_costs or [None] * len(cfgs))
    reason = why_not_fused_configs(cfgs) if fuse else f"not fused on {device.type}"
    models: list[EmotionModel] = []
    if reason is None:
        models = build_members(cfgs, pair, data, fold)
        reason = why_not_fused(models)
    if reason is not None:
        if len(cfgs) > 1:
            log.info("%s fold %d: %d seeds trained one by one (%s)", pair.name, fold.test_session, len(cfgs), reason)
        return [
            fit_fold(c, pair, data, fold, report, device, explain, e, m)
            for c, e, m in zip(cfgs, earlier, costs, strict=True)
        ]
    started = time.perf_counter()
    trained = train_members(cfgs, pair, data, fold, report, device, models)
    share = (time.perf_counter() - started) / len(cfgs)
    log.info("%s fold %d: %d seeds trained as one fused model", pair.name, fold.test_session, len(cfgs))
    return [
        finish_fold(t, c, pair, data, fold, device, share, explain, e, m)
        for t, c, e, m in zip(trained, cfgs, earlier, costs, strict=True)
    ]
