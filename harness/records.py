"""Typed records: what training produces, what the tune stage stores and what the report stage reads.

Plain data (no torch, no Ray): ``to_dict`` for JSON, ``record_from_dict`` to read it back, so the report
never reaches into nested dicts by string paths.

Versioned: a record carries ``schema`` (``RECORD_SCHEMA``). Schema 0 (records without the key) kept a
final-stage trial's configs as ``{seed, measure_costs, per_fold: {session: config}}`` on the trial and none
on its folds; it is converted on reading (each fold gets its own config). A newer schema is refused, and so
is a key the dataclass does not know (``from_dict`` is strict).
"""

from __future__ import annotations

import dataclasses
import json
import types
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

from harness.errors import UserError

T = TypeVar("T")
RECORD_SCHEMA = 1
PER_FOLD = "per_fold"  # schema 0: a final-stage trial's config per test session (keys are str(session))
DERIVED = ("mean_val_weighted_f1",)  # written by ``TrialRecord.to_dict`` for readers of the JSON, not a field


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
    energy_j: float | None  # device-wide NVML energy during training (every process on the device)
    device: str
    # Added later (defaults: records written before them still load). See harness.train.costs.
    latency_1s_ms: float | None = None  # median, raw waveform + text string through front ends and model
    latency_4s_ms: float | None = None
    latency_10s_ms: float | None = None
    latency_1s_iqr_ms: float | None = None
    latency_4s_iqr_ms: float | None = None
    latency_10s_iqr_ms: float | None = None
    rtf_4s: float | None = None  # real-time factor: 4-s latency / 4 s
    latency_repeats: int = 0  # timed calls per length (after warm-up)
    gflops_4s: float | None = None  # forward GFLOPs, one 4-s utterance + 12 words
    train_gflops_per_epoch: float | None = None  # estimate: 3 x forward x training utterances
    device_seconds: float | None = None  # training's device use: GPU wall x own busy share, or CPU core-seconds
    device_busy_share: float | None = None  # GPU: own mean SM utilisation (NVML, per process); None: not measured
    attributed_energy_j: float | None = None  # this process's share of the device energy (None: not measurable)
    params_by_modality: dict[str, int] = field(default_factory=dict)  # each encoder branch's parameters


@dataclass(frozen=True)
class Explanation:
    ablation_f1_drop: dict[str, float]  # modality -> weighted-F1 drop when that modality is removed (``ablation``)
    ablation_emotion_f1_drop: dict[str, float]  # "audio.ang" -> that emotion's F1 drop
    # Older records: raw probability drops at the top 20% positions. Now: normalised by the whole-modality
    # drop and averaged over k = 5, 10, 20, 50% of units; faithfulness = mean aopc_comprehensiveness.
    comprehensiveness: dict[str, float]  # modality -> mean drop, top units removed
    sufficiency: dict[str, float]  # modality -> mean drop, only top units kept
    random_comprehensiveness: dict[str, float]  # modality -> the same drop for random units
    faithfulness: float  # mean over modalities of comprehensiveness - random control
    n_samples: int
    seconds: float = 0.0  # wall time of the explanation
    peak_rss_gb: float | None = None  # peak resident memory while explaining
    max_frames: int = 0  # cap on positions per explained utterance (0: none; older records)
    budget_s: float | None = None  # time budget it was given (None: none)
    # Issue 19 (defaults: older records still load, and say what they were). harness.train.explain.
    level: dict[str, str] = field(default_factory=dict)  # modality -> "end_to_end" or "head_level" ({}: older)
    set_size: int = 0  # utterances in the fold's explanation set (0: older records, a budget-sized sample)
    within_budget: bool = True  # False: the set was explained, but past the fold's time budget
    completeness_error: dict[str, float] = field(default_factory=dict)  # modality -> mean relative IG error
    sanity_rank_corr: dict[str, float] = field(default_factory=dict)  # modality -> mean, head randomised
    ig_steps: dict[str, int] = field(default_factory=dict)  # modality -> most IG steps one utterance needed
    ablation: str = "zero"  # how ablation_f1_drop removed a modality: "permutation" (now) or "zero" (older)
    crop_s: float = 0.0  # audio crop of explained utterances in seconds (0: as scored)


@dataclass(frozen=True)
class EpochStat:
    epoch: int
    train_loss: float
    val_weighted_f1: float


@dataclass(frozen=True)
class FoldRecord:
    fold: int  # the test session
    validation_speaker: str
    best_epoch: int
    epochs_run: int
    stopped: str  # "early_stopping" or "max_epochs"
    validation: Metrics
    test: Metrics | None  # None on a nested search's inner folds, which hold no test session
    resources: Resources
    explanation: Explanation | None = None
    seconds: dict[str, float] = field(default_factory=dict)  # train / score / measure / explain wall times
    history: list[EpochStat] = field(default_factory=list)  # per epoch, in order (learning curves)
    # The flat config this fold trained with (a final-stage trial's folds each have their own; its seed
    # included). The one place a report reads a fold's config.
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def tested(self) -> Metrics:
        """The test metrics of a fold that has a test session (every fold but a nested search's inner ones)."""
        if self.test is None:
            raise ValueError(f"fold {self.fold} (validation {self.validation_speaker}) has no test session")
        return self.test


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
    subset: str = "all"  # dialogs trained, chosen and tested on: all, improvised or scripted
    fidelity: str = "folds"  # what ASHA's rungs count: "epochs" (of the first inner fold, then folds) or "folds"
    inner_folds: int = 0  # nested search: inner folds per outer fold (0: every other session)
    objectives: tuple[str, ...] = ("weighted_f1",)  # what the search optimises (harness.tune.objectives)
    text_source: str = "gold"  # transcripts the text encoder read: gold, or asr (harness.features.asr)
    asr_model: str = ""  # the ASR checkpoint, when text_source is asr
    wer: dict[str, float] = field(default_factory=dict)  # errors_S, words_S per session S (harness.report.wer)

    @property
    def protocol_group(self) -> str:
        """The protocol as tables group it: a subset is a protocol group of its own."""
        return self.protocol if self.subset == "all" else f"{self.protocol} ({self.subset} only)"

    @property
    def group(self) -> tuple[str, str, int, tuple[int, ...]]:
        """Runs that may be ranked together: same data (and text source), protocol (and subset), class set and
        fold set."""
        source = self.data_source if self.text_source == "gold" else f"{self.data_source} [text: ASR {self.asr_model}]"
        return (source, self.protocol_group, self.classes, tuple(self.test_sessions))

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
    # Nested search: the outer test session this config is a candidate for (its folds are that session's
    # inner folds); None for a non-nested search and the final stage.
    outer_fold: int | None = None
    n_folds: int = 0  # folds the trial runs when it finishes (0: one per test session)
    partial_epochs: int = 0  # epochs of a fold it did not finish (stopped by ASHA within its first fold)
    schema: int = RECORD_SCHEMA

    @property
    def fold_configs(self) -> list[dict[str, Any]]:
        """The configs its folds trained with (a trial without a finished fold: the trial's config)."""
        return [f.config for f in self.folds if f.config] or [self.config]

    @property
    def epochs_trained(self) -> int:
        """Every epoch the trial trained, finished folds and a stopped one's partial fold."""
        return sum(f.epochs_run for f in self.folds) + self.partial_epochs

    @property
    def mean_val_weighted_f1(self) -> float | None:
        if not self.folds:
            return None
        return sum(f.validation.weighted_f1 for f in self.folds) / len(self.folds)

    @property
    def expected_folds(self) -> int:
        return self.n_folds or len(self.meta.test_sessions)

    @property
    def complete(self) -> bool:
        return self.status == "finished" and len(self.folds) == self.expected_folds

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"mean_val_weighted_f1": self.mean_val_weighted_f1}


def read_record(path: str | Path) -> TrialRecord:
    """A stored trial record (``record.json``)."""
    try:
        data = json.loads(Path(path).read_text())
    except ValueError as err:
        raise UserError(f"{path}: not valid JSON ({err})") from None
    return record_from_dict(data, str(path))


def record_from_dict(data: Any, where: str = "record") -> TrialRecord:
    """A stored trial record, converted from an older schema (``UserError`` naming ``where`` otherwise)."""
    if not isinstance(data, dict):
        raise UserError(f"{where}: not a trial record (a JSON object expected, got {type(data).__name__})")
    version = data.get("schema", 0)
    if not isinstance(version, int) or version > RECORD_SCHEMA:
        raise UserError(f"{where}: record schema {version!r} is newer than this harness reads ({RECORD_SCHEMA})")
    data = {k: v for k, v in data.items() if k not in DERIVED}
    if version == 0:
        data = _from_schema_0(data)
    return from_dict(TrialRecord, data, where=where)


def _from_schema_0(data: dict[str, Any]) -> dict[str, Any]:
    """Schema 0 -> 1: each fold gets the config it trained with (a final-stage trial's ``per_fold`` entry
    for its test session, a search trial's one config)."""
    config = data.get("config") or {}
    per_fold = config.get(PER_FOLD) if isinstance(config, dict) else None
    folds = []
    for fold in data.get("folds") or []:
        if isinstance(fold, dict) and "config" not in fold:
            own = per_fold.get(str(fold.get("fold"))) if isinstance(per_fold, dict) else config
            fold = fold | {"config": own or {}}
        folds.append(fold)
    return data | {"folds": folds, "schema": RECORD_SCHEMA}


def from_dict(cls: type[T], data: Any, where: str = "") -> T:
    """Rebuild a dataclass (nested ones, lists, tuples, dicts and optionals included) from ``asdict`` output.
    Strict: a key the dataclass does not know, a missing field or a value of the wrong shape is a
    ``UserError`` naming ``where`` (the file) and the key."""
    try:
        return _build(cls, data, where or cls.__name__)
    except (TypeError, AttributeError, ValueError) as err:
        raise UserError(f"{where or cls.__name__}: not a valid {cls.__name__} ({err})") from None


def _build(kind: Any, value: Any, where: str = "") -> Any:
    if value is None:
        return None
    origin = get_origin(kind)
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(kind) if a is not type(None)]
        return _build(options[0], value, where) if len(options) == 1 else value
    if dataclasses.is_dataclass(kind) and isinstance(kind, type):
        if not isinstance(value, dict):
            raise TypeError(f"{kind.__name__} expects an object, got {type(value).__name__}")
        hints = get_type_hints(kind)
        names = {f.name for f in dataclasses.fields(kind)}
        unknown = sorted(set(value) - names)
        if unknown:
            raise UserError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))} in {kind.__name__}")
        return kind(**{k: _build(hints[k], v, where) for k, v in value.items()})
    if origin in (list, tuple):
        args = get_args(kind)
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"expected a list, got {type(value).__name__}")
        items = [_build(args[0] if args else Any, v, where) for v in value]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise TypeError(f"expected an object, got {type(value).__name__}")
        _, value_kind = get_args(kind)
        return {k: _build(value_kind, v, where) for k, v in value.items()}
    return value
