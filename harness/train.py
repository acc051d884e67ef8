"""Train and score one fold. No Ray, no Optuna: ``report`` is any callable taking a dict (tests pass
``list.append``; the Ray trainable passes a thin wrapper around ``tune.report``)."""
from __future__ import annotations

import itertools
import logging
import math
import random
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from sklearn.utils.class_weight import compute_class_weight
from torch import nn
from transformers import get_cosine_schedule_with_warmup

from harness.config import TrialConfig
from harness.corpus import EMOTIONS
from harness.dataset import PairData
from harness.explain import Explanation, explain_fold
from harness.folds import Fold
from harness.inference import batches, length_grouped_batches, predict, to_device
from harness.measure import ResourceMonitor, count_params, measure_latency
from harness.metrics import Metrics, compute_metrics
from harness.model import EmotionModel, build_model
from harness.pairs import PairSpec

log = logging.getLogger(__name__)
Report = Callable[[dict], None]


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or inf; the trial ends with this reason instead of poisoning results."""


@dataclass(frozen=True)
class Resources:
    params_total: int
    params_trainable: int
    peak_gpu_gb: float | None  # torch peak allocated during training (reset first)
    peak_nvml_gb: float | None  # device memory in use, as NVML sees it (includes the CUDA context)
    peak_rss_gb: float
    train_utterances_per_s: float
    latency_ms: float  # one utterance from raw inputs (features already extracted), batch size 1
    train_wall_s: float
    energy_j: float | None
    device: str


@dataclass(frozen=True)
class FoldResult:
    fold: int  # the test session
    validation_speaker: str
    best_epoch: int
    epochs_run: int
    stopped: str  # "early_stopping" or "max_epochs"
    validation: Metrics
    test: Metrics
    resources: Resources
    explanation: Explanation | None


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def evaluate(model: EmotionModel, data: PairData, rows: np.ndarray, device: torch.device, batch_size: int,
             drop: str | None = None) -> Metrics:
    return compute_metrics(data.labels[rows], predict(model, data, rows, device, batch_size, drop).argmax(1))


def fit_fold(cfg: TrialConfig, pair: PairSpec, data: PairData, fold: Fold, report: Report,
             device: torch.device | None = None) -> FoldResult:
    """Train on the fold's training speakers, early-stop on its validation speaker, score its test session."""
    device = device or default_device()
    seed_everything(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    model = build_model(pair, cfg, data.features, fold.train).to(device)
    params = count_params(model)

    backbone = model.pretrained_parameters()
    in_backbone = {id(p) for p in backbone}
    head = [p for p in model.parameters() if p.requires_grad and id(p) not in in_backbone]
    optimizer = torch.optim.AdamW([{"params": head, "lr": cfg.lr}, {"params": backbone, "lr": cfg.encoder_lr}],
                                  weight_decay=cfg.weight_decay)
    steps = cfg.epochs * math.ceil(len(fold.train) / cfg.batch_size)
    scheduler = get_cosine_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * steps), steps)
    weights = None
    if cfg.class_weighted:  # "balanced" weights from the training speakers' label counts
        weights = torch.tensor(compute_class_weight("balanced", classes=np.arange(len(EMOTIONS)),
                                                    y=data.labels[fold.train]), dtype=torch.float32, device=device)
    criterion = nn.CrossEntropyLoss(weight=weights)
    autocast = dict(device_type=device.type, dtype=torch.bfloat16,
                    enabled=cfg.mixed_precision and device.type == "cuda")
    # Only trainable tensors change, so only they are copied when a new best epoch is kept.
    keep = {n for n, p in model.named_parameters() if p.requires_grad} | {n for n, _ in model.named_buffers()}

    lengths = model.input_lengths(data.features)

    def epoch_batches() -> list[np.ndarray]:
        if cfg.group_by_length:
            return length_grouped_batches(fold.train, lengths, cfg.batch_size, rng)
        return batches(rng.permutation(fold.train), cfg.batch_size)

    best_f1, best_epoch, best_state, stopped = -1.0, 0, None, "max_epochs"
    train_seconds, trained_utterances = 0.0, 0
    with ResourceMonitor(device) as monitor:
        for epoch in range(1, cfg.epochs + 1):
            model.train()
            started, losses = time.perf_counter(), []
            for chunk in epoch_batches():
                batch = to_device(model.collate(data.features, chunk), device)
                labels = torch.as_tensor(data.labels[chunk], device=device)
                with torch.autocast(**autocast):
                    logits = model(batch)
                loss = criterion(logits.float(), labels)
                if not torch.isfinite(loss):
                    raise NonFiniteLossError(f"fold {fold.test_session} epoch {epoch}: training loss is "
                                             f"{loss.item()} (lr={cfg.lr:g}); trial stopped")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                optimizer.step()
                scheduler.step()
                losses.append(loss.item())
                trained_utterances += len(chunk)
            train_seconds += time.perf_counter() - started

            validation = evaluate(model, data, fold.validation, device, cfg.batch_size)
            report({"fold": fold.test_session, "epoch": epoch, "params": params.total,
                    "train_loss": float(np.mean(losses)),
                    "val_weighted_f1": validation.weighted_f1, "val_macro_f1": validation.macro_f1})
            if validation.weighted_f1 > best_f1:
                best_f1, best_epoch = validation.weighted_f1, epoch
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items() if k in keep}
            elif epoch - best_epoch >= cfg.patience:
                stopped = "early_stopping"
                break

    model.load_state_dict(best_state, strict=False)
    validation = evaluate(model, data, fold.validation, device, cfg.batch_size)
    test = evaluate(model, data, fold.test, device, cfg.batch_size)  # the only use of the test session

    model.eval()
    sample = fold.test[: min(8, len(fold.test))]
    live = [to_device(model.collate(data.features, sample[i:i + 1], live=True), device) for i in range(len(sample))]
    utterances = itertools.cycle(live)

    def one_utterance() -> None:
        with torch.no_grad(), torch.autocast(**autocast):
            model(next(utterances))

    latency = measure_latency(one_utterance, device, warmup=3, repeats=2 * len(live))
    gb = 1024**3
    resources = Resources(
        params_total=params.total, params_trainable=params.trainable,
        peak_gpu_gb=monitor.peak_gpu_bytes / gb if monitor.peak_gpu_bytes is not None else None,
        peak_nvml_gb=monitor.peak_nvml_bytes / gb if monitor.peak_nvml_bytes is not None else None,
        peak_rss_gb=monitor.peak_rss_bytes / gb,
        train_utterances_per_s=trained_utterances / max(train_seconds, 1e-9),
        latency_ms=latency * 1000, train_wall_s=monitor.wall_s, energy_j=monitor.energy_j, device=str(device),
    )
    explanation = explain_fold(model, data, fold.test, cfg, device) if cfg.explain_samples > 0 else None
    log.info("fold %d: best epoch %d, val wF1 %.3f, test wF1 %.3f", fold.test_session, best_epoch,
             validation.weighted_f1, test.weighted_f1)
    return FoldResult(fold.test_session, fold.validation_speaker, best_epoch, epoch, stopped, validation, test,
                      resources, explanation)
