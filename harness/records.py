"""Typed records: what training produces, what the tune stage stores and what the report stage reads.

Plain data (no torch, no Ray): ``to_dict`` for JSON, ``from_dict`` to read it back, so the report never
reaches into nested dicts by string paths.
"""

from __future__ import annotations

import dataclasses
import json
import types
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

T = TypeVar("T")


@dataclass(frozen=True)
class Metrics:
    weighted_f1: float
    macro_f1: float
    unweighted_accuracy: float  # mean per-class recall (UA), the usual IEMOCAP figure
    weighted_accuracy: float  # plain accuracy (WA)
    per_emotion_f1: dict[str, float]
    confusion: list[list[int]]  # rows = true class, columns = predicted, in EMOTIONS order
    n: int


@dataclass(frozen=True)
class Resources:
    params_total: int
    params_trainable: int
    peak_gpu_gb: float | None  # torch peak allocated during training (reset first)
    peak_nvml_gb: float | None  # device memory in use, as NVML sees it (includes the CUDA context)
    peak_rss_gb: float  # the whole process's peak resident memory (mostly the runtime on CPU)
    rss_above_idle_gb: float  # peak RSS minus the process's RSS just before the model was built
    model_memory_gb: float  # parameters + gradients + optimiser state of the trainable part, computed
    train_utterances_per_s: float
    # One utterance from raw inputs (features already extracted), batch size 1: measured on a trial's first
    # fold only (it depends on the architecture and config, not on the fold's data); None on later folds.
    latency_ms: float | None
    train_wall_s: float
    energy_j: float | None
    device: str


@dataclass(frozen=True)
class Explanation:
    ablation_f1_drop: dict[str, float]  # modality -> weighted-F1 drop when that modality is removed
    ablation_emotion_f1_drop: dict[str, float]  # "audio.ang" -> that emotion's F1 drop
    comprehensiveness: dict[str, float]  # modality -> mean probability drop, top positions removed
    sufficiency: dict[str, float]  # modality -> mean probability drop, only top positions kept
    random_comprehensiveness: dict[str, float]  # modality -> the same drop for random positions
    faithfulness: float  # mean over modalities of comprehensiveness - random control
    n_samples: int
    seconds: float = 0.0  # wall time of the explanation
    peak_rss_gb: float | None = None  # peak resident memory while explaining
    max_frames: int = 0  # cap on positions per explained utterance (0: none)
    budget_s: float | None = None  # time budget it was given (None: none)


@dataclass(frozen=True)
class FoldRecord:
    fold: int  # the test session
    validation_speaker: str
    best_epoch: int
    epochs_run: int
    stopped: str  # "early_stopping" or "max_epochs"
    validation: Metrics
    test: Metrics
    resources: Resources
    explanation: Explanation | None = None
    seconds: dict[str, float] = field(default_factory=dict)  # train / score / measure / explain wall times


@dataclass(frozen=True)
class RunMeta:
    pair: str
    run: str
    data_source: str  # "demo" or the IEMOCAP path
    git_hash: str
    versions: dict[str, str]
    test_sessions: tuple[int, ...]
    seed: int
    smoke_test: bool
    protocol: str = "loso"
    classes: int = 6
    labels: str = "release"
    checkpoints: dict[str, str] = field(default_factory=dict)  # modality -> checkpoint used
    stand_in: bool = False  # a random-init stand-in checkpoint replaced an unavailable pretrained one
    skipped: tuple[str, ...] = ()  # corpus problems --skip-bad skipped

    @property
    def group(self) -> tuple[str, str, int, tuple[int, ...]]:
        """Runs that may be ranked together: same data, protocol, class set and fold set."""
        return (self.data_source, self.protocol, self.classes, tuple(self.test_sessions))

    @property
    def is_real(self) -> bool:
        """False for smoke tests and runs on tiny or stand-in checkpoints: never in the real tables."""
        return not (self.smoke_test or self.stand_in)


@dataclass(frozen=True)
class TrialRecord:
    meta: RunMeta
    trial_id: str
    config: dict[str, Any]
    status: str  # "running", "finished", "stopped_early" or "failed"
    folds: list[FoldRecord]
    reason: str = ""
    retryable: bool = True
    device_name: str = "cpu"
    hostname: str = ""
    node_id: str = ""  # the Ray node that ran the trial's last fold
    written_at: str = ""
    stage: str = "search"  # "search" or "final"

    @property
    def mean_val_weighted_f1(self) -> float | None:
        if not self.folds:
            return None
        return sum(f.validation.weighted_f1 for f in self.folds) / len(self.folds)

    @property
    def complete(self) -> bool:
        return self.status == "finished" and len(self.folds) == len(self.meta.test_sessions)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"mean_val_weighted_f1": self.mean_val_weighted_f1}


def read_record(path: str | Path) -> TrialRecord:
    """A stored trial record (``trial_<id>.json``)."""
    return from_dict(TrialRecord, json.loads(Path(path).read_text()))


def from_dict(cls: type[T], data: Any) -> T:
    """Rebuild a dataclass (nested ones, lists, tuples, dicts and optionals included) from ``asdict`` output."""
    return _build(cls, data)


def _build(kind: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = get_origin(kind)
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(kind) if a is not type(None)]
        return _build(options[0], value) if len(options) == 1 else value
    if dataclasses.is_dataclass(kind) and isinstance(kind, type):
        hints = get_type_hints(kind)
        names = {f.name for f in dataclasses.fields(kind)}
        return kind(**{k: _build(hints[k], v) for k, v in value.items() if k in names})
    if origin in (list, tuple):
        args = get_args(kind)
        items = [_build(args[0] if args else Any, v) for v in value]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        _, value_kind = get_args(kind)
        return {k: _build(value_kind, v) for k, v in value.items()}
    return value
