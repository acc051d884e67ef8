"""Train and score one fold, in three steps read top to bottom:

    train_fold   -> a trained model (best validation epoch), epochs and the training resources
    score        -> validation and test metrics (the only use of the test session) and the predictions
    measure      -> parameters, memory, throughput and (when asked) latency as a ``Resources`` record

``fit_fold`` runs the three (and, when asked, the explanation) and returns a ``FoldRecord``. No Ray and no
Optuna here: ``report`` is any callable taking a dict (tests pass ``list.append``; the Ray trainable
passes a thin wrapper around ``tune.report``). ``train_step`` is the one optimiser step that training and
the benchmarks share.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import psutil
import torch
from sklearn.utils.class_weight import compute_class_weight
from torch import nn
from transformers import get_cosine_schedule_with_warmup

from harness.config import TrialConfig
from harness.corpus.folds import Fold
from harness.models.data import PairData
from harness.models.fusion import EmotionModel, build_pair_model
from harness.models.pairs import PairSpec
from harness.records import EpochStat, FoldRecord, Metrics, Resources
from harness.train.batching import (
    ResidentBuckets,
    batches,
    dialog_batches,
    length_grouped_batches,
    predict,
    to_device,
)
from harness.train.costs import (
    HEADLINE_SECONDS,
    LATENCY_SECONDS,
    RawPath,
    forward_gflops,
    measure_latencies,
    train_gflops_per_epoch,
)
from harness.train.explain import ExplainBudget, explain_fold
from harness.train.measure import ResourceMonitor, count_params, model_memory_bytes
from harness.train.metrics import compute_metrics

log = logging.getLogger(__name__)
Report = Callable[[dict], None]
GB = 1024**3


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or inf; the trial ends with this reason instead of poisoning results."""


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def autocast_for(cfg: TrialConfig, device: torch.device) -> torch.autocast:
    return torch.autocast(
        device_type=device.type, dtype=torch.bfloat16, enabled=cfg.mixed_precision and device.type == "cuda"
    )


def make_optimizer(model: EmotionModel, cfg: TrialConfig) -> torch.optim.Optimizer:
    """AdamW with ``encoder_lr`` for fine-tuned pretrained layers and ``lr`` for everything else."""
    backbone = model.pretrained_parameters()
    in_backbone = {id(p) for p in backbone}
    head = [p for p in model.parameters() if p.requires_grad and id(p) not in in_backbone]
    return torch.optim.AdamW(
        [{"params": head, "lr": cfg.lr}, {"params": backbone, "lr": cfg.encoder_lr}], weight_decay=cfg.weight_decay
    )


def train_step(
    model: EmotionModel,
    data: PairData,
    rows: np.ndarray,
    optimizer: torch.optim.Optimizer,
    criterion: nn.Module,
    device: torch.device,
    autocast: torch.autocast,
    grad_clip: float,
) -> float:
    """One optimiser step on ``rows``, collated now; returns the loss. Raises ``NonFiniteLossError`` on NaN/inf."""
    batch = to_device(model.collate(data.features, rows), device)
    labels = torch.as_tensor(data.labels[rows], device=device)
    loss = optimise(model, batch, labels, optimizer, criterion, autocast, grad_clip)
    if not torch.isfinite(loss):
        raise NonFiniteLossError(f"training loss is {loss.item()}")
    return float(loss.item())


def optimise(
    model: EmotionModel,
    batch: dict,
    labels: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    criterion: nn.Module,
    autocast: torch.autocast,
    grad_clip: float,
) -> torch.Tensor:
    """One optimiser step on a batch already on the device; returns the detached loss, still on the device.

    Nothing here waits for the device (no ``.item()``): the training loop checks the epoch's losses once,
    at its end, so a GPU runs steps back to back instead of stopping twice a step for the host. A step
    whose loss is not finite leaves NaN weights behind, and the epoch's check then ends the trial.
    """
    with autocast:
        logits = model(batch)
    loss = criterion(logits.to(torch.promote_types(logits.dtype, torch.float32)), labels)  # fp32, or fp64 as run
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return loss.detach()


@dataclass
class Trained:
    model: EmotionModel
    best_epoch: int
    epochs_run: int
    stopped: str  # "early_stopping" or "max_epochs"
    train_seconds: float  # inside training steps only
    trained_utterances: int
    monitor: ResourceMonitor
    rss_before_gb: float
    history: list[EpochStat] = field(default_factory=list)  # train loss and validation F1 per epoch


def train_fold(
    cfg: TrialConfig, pair: PairSpec, data: PairData, fold: Fold, report: Report, device: torch.device
) -> Trained:
    """Train on the fold's training rows; early-stop on its validation rows; keep the best epoch."""
    seed_everything(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    rss_before = psutil.Process().memory_info().rss / GB
    model = build_pair_model(pair, cfg, data, fold.train).to(device)
    params = count_params(model)
    optimizer = make_optimizer(model, cfg)
    # +1: dialog batches (context models) are cut at a random offset, one partial batch more than
    # ceil(n / size) in some epochs; the schedule must not run past its end (the cosine would rise again)
    steps = cfg.epochs * (math.ceil(len(fold.train) / cfg.batch_size) + 1)
    scheduler = get_cosine_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * steps), steps)
    weights = None
    if cfg.class_weighted:  # "balanced" weights from the training speakers' label counts
        # A class with no training utterance (possible in a small subset, e.g. --subset improvised of the demo
        # corpus) has no loss term to weight: weight 1.
        present = np.unique(data.labels[fold.train])
        balanced = np.ones(len(data.classes))
        balanced[present] = compute_class_weight("balanced", classes=present, y=data.labels[fold.train])
        weights = torch.tensor(balanced, dtype=torch.float32, device=device)
    criterion = nn.CrossEntropyLoss(weight=weights)
    autocast = autocast_for(cfg, device)
    # Only trainable tensors change, so only they are copied when a new best epoch is kept.
    keep = {n for n, p in model.named_parameters() if p.requires_grad} | {n for n, _ in model.named_buffers()}
    lengths = model.input_lengths(data.features)
    # Length buckets: the fold's training and validation inputs go to the device once, here, and every
    # batch of a bucket has the same shape, so cuDNN's autotuner (benchmark) pays off; with per-step
    # collation each new length would be tuned again, so it stays off there.
    resident = cfg.bucket_size > 0 and not cfg.context.enabled
    train_store = val_store = None
    if resident:
        train_store = ResidentBuckets(model, data, fold.train, cfg.bucket_size, cfg.batch_size, device)
        val_store = ResidentBuckets(model, data, fold.validation, cfg.bucket_size, cfg.batch_size, device)
    torch.backends.cudnn.benchmark = resident and device.type == "cuda"

    def epoch_batches() -> Iterator[tuple[dict, torch.Tensor, int]]:
        """(inputs on the device, labels, utterances) per step of this epoch, made as the steps ask."""
        if train_store is not None:
            store = train_store
            return ((*store.take(b, index), len(index)) for b, index in store.epoch_indices(rng))
        if cfg.context.enabled:
            chunks = dialog_batches(fold.train, data.dialogs, cfg.batch_size, rng)
        elif cfg.group_by_length:
            chunks = length_grouped_batches(fold.train, lengths, cfg.batch_size, rng)
        else:
            chunks = batches(rng.permutation(fold.train), cfg.batch_size)
        return (
            (
                to_device(model.collate(data.features, c), device),
                torch.as_tensor(data.labels[c], device=device),
                len(c),
            )
            for c in chunks
        )

    best_f1, best_epoch, best_state, stopped, epoch = -1.0, 0, None, "max_epochs", 0
    train_seconds, trained_utterances, history = 0.0, 0, []
    with ResourceMonitor(device) as monitor:
        for epoch in range(1, cfg.epochs + 1):
            model.train()
            started, step_losses = time.perf_counter(), []
            for inputs, labels, n in epoch_batches():
                step_losses.append(optimise(model, inputs, labels, optimizer, criterion, autocast, cfg.grad_clip))
                scheduler.step()
                trained_utterances += n
            losses = torch.stack(step_losses).float().cpu().numpy()  # the epoch's one wait for the device
            train_seconds += time.perf_counter() - started
            if not np.isfinite(losses).all():
                bad = int(np.flatnonzero(~np.isfinite(losses))[0])
                raise NonFiniteLossError(
                    f"fold {fold.test_session} epoch {epoch}: training loss is {losses[bad]} at step {bad + 1} "
                    f"(lr={cfg.lr:g}); trial stopped"
                )

            if val_store is not None:
                probabilities = val_store.predict(model, fold.validation)
                validation = compute_metrics(data.labels[fold.validation], probabilities.argmax(1), data.classes)
            else:
                validation = evaluate(model, data, fold.validation, device, cfg.batch_size)
            history.append(EpochStat(epoch, float(np.mean(losses)), validation.weighted_f1))
            report(
                {
                    "fold": fold.test_session,
                    "epoch": epoch,
                    "params": params.total,
                    "train_loss": float(np.mean(losses)),
                    "val_weighted_f1": validation.weighted_f1,
                    "val_macro_f1": validation.macro_f1,
                }
            )
            if validation.weighted_f1 > best_f1:
                best_f1, best_epoch = validation.weighted_f1, epoch
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items() if k in keep}
            elif epoch - best_epoch >= cfg.patience:
                stopped = "early_stopping"
                break
    if best_state is not None:
        model.load_state_dict(best_state, strict=False)
    return Trained(model, best_epoch, epoch, stopped, train_seconds, trained_utterances, monitor, rss_before, history)


def evaluate(
    model: EmotionModel,
    data: PairData,
    rows: np.ndarray,
    device: torch.device,
    batch_size: int,
    drop: str | None = None,
) -> Metrics:
    return compute_metrics(
        data.labels[rows], predict(model, data, rows, device, batch_size, drop).argmax(1), data.classes
    )


@dataclass
class Scores:
    validation: Metrics
    test: Metrics | None  # None for a fold with no test rows (a nested search's inner fold)
    test_probabilities: np.ndarray  # [len(fold.test), classes], in fold.test order


def score(model: EmotionModel, data: PairData, fold: Fold, device: torch.device, batch_size: int) -> Scores:
    """Validation and test metrics of the trained model; the test session is read here and nowhere else."""
    validation = evaluate(model, data, fold.validation, device, batch_size)
    if not len(fold.test):
        return Scores(validation, None, np.empty((0, len(data.classes)), dtype=np.float32))
    probabilities = predict(model, data, fold.test, device, batch_size)
    return Scores(
        validation, compute_metrics(data.labels[fold.test], probabilities.argmax(1), data.classes), probabilities
    )


def measure(
    trained: Trained, cfg: TrialConfig, data: PairData, fold: Fold, device: torch.device, latency: bool = True
) -> Resources:
    """Resource figures: size, memory (process peak, above idle, and the model's own), training speed and
    device use and, with ``latency`` (a trial's first fold: they depend on the config, not the fold), the
    isolated latency step and FLOPs of ``harness.train.costs``."""
    model = trained.model.eval()
    costs: dict[str, float | int | None] = {}
    if latency:
        path = RawPath(model, data, device, autocast_for(cfg, device))
        lengths = LATENCY_SECONDS if cfg.latency_all_lengths else (HEADLINE_SECONDS,)
        timed = measure_latencies(path, cfg.latency_repeats, lengths=lengths)
        for seconds, figures in timed.items():
            costs[f"latency_{seconds:g}s_ms"] = figures.median_ms
            costs[f"latency_{seconds:g}s_iqr_ms"] = figures.iqr_ms
        costs["rtf_4s"] = timed[HEADLINE_SECONDS].rtf
        costs["latency_repeats"] = cfg.latency_repeats
        costs["gflops_4s"] = forward_gflops(path)
        costs["train_gflops_per_epoch"] = train_gflops_per_epoch(model, data, fold.train, device)
    monitor, params = trained.monitor, count_params(model)
    return Resources(
        params_total=params.total,
        params_trainable=params.trainable,
        peak_gpu_gb=monitor.peak_gpu_bytes / GB if monitor.peak_gpu_bytes is not None else None,
        peak_nvml_gb=monitor.peak_nvml_bytes / GB if monitor.peak_nvml_bytes is not None else None,
        peak_rss_gb=monitor.peak_rss_bytes / GB,
        rss_above_idle_gb=max(0.0, monitor.peak_rss_bytes / GB - trained.rss_before_gb),
        model_memory_gb=model_memory_bytes(model) / GB,
        train_utterances_per_s=trained.trained_utterances / max(trained.train_seconds, 1e-9),
        latency_ms=costs.get("latency_4s_ms"),  # the 4-s input of the protocol
        train_wall_s=monitor.wall_s,
        energy_j=monitor.energy_j,
        device=str(device),
        device_seconds=monitor.device_seconds(),
        device_busy_share=monitor.busy_share,
        attributed_energy_j=monitor.attributed_energy_j,
        params_by_modality={m: count_params(e).total for m, e in model.branches.items()},
        **costs,  # type: ignore[arg-type]
    )


@dataclass
class FoldOutcome:
    record: FoldRecord
    test_probabilities: np.ndarray  # per-utterance class probabilities, rows in fold.test order
    explanations: pd.DataFrame | None = None  # per-utterance explanation rows (harness.train.explain.COLUMNS)
    model: EmotionModel | None = None  # the trained model (best epoch): what --keep-models keeps (harness.train.keep)


def fit_fold(
    cfg: TrialConfig,
    pair: PairSpec,
    data: PairData,
    fold: Fold,
    report: Report,
    device: torch.device | None = None,
    explain: bool = False,
    earlier: list[FoldRecord] | None = None,
    measure_costs: bool | None = None,
) -> FoldOutcome:
    """Train, score and measure one fold; explain the trained model too when ``explain`` (final stage).

    ``earlier``: the trial's folds done before this one. Latency and FLOPs depend on the config, not the
    fold: ``measure_costs`` says whether to measure them here (the caller: each distinct config's first
    fold; never in a search that does not optimise them, nor for a final-stage seed after the first);
    None: on a trial's first fold only. The explanation budget is carried over the trial's folds
    (``ExplainBudget``)."""
    device = device or default_device()
    started = time.perf_counter()
    trained = train_fold(cfg, pair, data, fold, report, device)
    return finish_fold(
        trained, cfg, pair, data, fold, device, time.perf_counter() - started, explain, earlier, measure_costs
    )


def finish_fold(
    trained: Trained,
    cfg: TrialConfig,
    pair: PairSpec,
    data: PairData,
    fold: Fold,
    device: torch.device,
    train_s: float,
    explain: bool = False,
    earlier: list[FoldRecord] | None = None,
    measure_costs: bool | None = None,
) -> FoldOutcome:
    """Score, measure and (when asked) explain a trained model: the rest of ``fit_fold`` (a fused member
    of ``harness.train.fused`` goes through it too, with its share of the fused training time)."""
    earlier = earlier or []
    seconds: dict[str, float] = {"train": train_s}
    started = time.perf_counter()
    scores = score(trained.model, data, fold, device, cfg.batch_size)
    seconds["score"] = time.perf_counter() - started
    started = time.perf_counter()
    latency = not earlier if measure_costs is None else measure_costs
    resources = measure(trained, cfg, data, fold, device, latency=latency)
    seconds["measure"] = time.perf_counter() - started
    explained = None
    if explain and cfg.explain_samples > 0 and len(fold.test):
        budget = ExplainBudget.after(cfg.explain_budget, earlier)
        started = time.perf_counter()
        explained = explain_fold(
            trained.model,
            data,
            fold.test,
            fold.train,
            cfg,
            device,
            pair.name,
            fold.test_session,
            budget.seconds(sum(seconds.values())),
            budget.per_utterance_s,
        )
        seconds["explain"] = time.perf_counter() - started
    explanation = explained.record if explained is not None else None
    log.info(
        "fold %d (validation %s): best epoch %d, val wF1 %.3f%s",
        fold.test_session,
        fold.validation_speaker,
        trained.best_epoch,
        scores.validation.weighted_f1,
        f", test wF1 {scores.test.weighted_f1:.3f}" if scores.test is not None else "",
    )
    record = FoldRecord(
        fold.test_session,
        fold.validation_speaker,
        trained.best_epoch,
        trained.epochs_run,
        trained.stopped,
        scores.validation,
        scores.test,
        resources,
        explanation,
        {k: round(v, 3) for k, v in seconds.items()},
        trained.history,
    )
    return FoldOutcome(
        record, scores.test_probabilities, explained.frame if explained is not None else None, trained.model
    )
