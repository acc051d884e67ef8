"""A run's books (``STORAGE/RUN/harness/*.json``) as typed, versioned dataclasses: what the stages write and
the report reads, never by string key.

- ``run.json``: ``RunIdentity``, what makes a run the run it is (a rerun into the same folder must match).
- ``search.json``: ``SearchSummary``, the run's summary (wall time kept across resumes, trial counts).
- ``final_configs.json``: ``FinalConfigs``, a final stage's trials (per test fold, the config chosen for
  it) and what chose them.

Each carries ``schema``. A book without one was written before books were versioned (schema 0): its fields
are those of schema 1, so it is read as schema 1 (``convert``). A book of a newer schema is refused with one
line, and so is an unknown key (``harness.records.from_dict``, strict).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from harness.errors import UserError
from harness.records import RunMeta, from_dict
from harness.resume_check import check_run_files
from harness.store import RunStore

BOOK_SCHEMA = 1
RUN_BOOK, SUMMARY_BOOK, FINAL_BOOK = "run.json", "search.json", "final_configs.json"
B = TypeVar("B")


@dataclass(frozen=True)
class RunIdentity:
    """What makes a run the run it is (``run.json``). A rerun into the same folder must match, else it is
    refused."""

    pair: str
    data_source: str
    fingerprint: str
    space: dict[str, Any]  # {"fixed": {...}, "params": [{"name": ...}, ...]}
    test_sessions: tuple[int, ...]
    protocol: str
    classes: int
    labels: str
    num_samples: int
    seed: int
    stage: str
    final: dict[str, Any] | None = None  # final stage: {"seeds": S, "top_k": K[, "select": rule]}
    # harness.corpus.folds.SPLIT_VERSION when the run was planned (passed in: books sit below the corpus)
    split_version: int = field(kw_only=True)
    subset: str = "all"
    fidelity: str = "epochs"
    inner_folds: int = 0  # nested: inner folds per outer fold (0: all)
    objectives: tuple[str, ...] = ("weighted_f1",)
    schema: int = BOOK_SCHEMA

    @classmethod
    def of(
        cls,
        meta: RunMeta,
        fingerprint: str,
        space: dict[str, Any],
        num_samples: int,
        stage: str,
        final: dict[str, Any] | None,
        split_version: int,
    ) -> RunIdentity:
        """The identity of the run ``meta`` describes: its settings come from the meta, once."""
        return cls(
            meta.pair,
            meta.data_source,
            fingerprint,
            space,
            tuple(meta.test_sessions),
            meta.protocol,
            meta.classes,
            meta.labels,
            num_samples,
            meta.seed,
            stage,
            final,
            split_version=split_version,
            subset=meta.subset,
            fidelity=meta.fidelity,
            inner_folds=meta.inner_folds,
            objectives=tuple(meta.objectives),
        )

    @property
    def searched(self) -> tuple[str, ...]:
        """The search space's searched parameters."""
        return tuple(str(p["name"]) for p in self.space.get("params", []) if "name" in p)

    def check_against(self, store: RunStore) -> None:
        """Store this identity in the run's books, or compare it with the stored one; raise ``UserError``
        naming what differs."""
        mine = json.loads(json.dumps(asdict(self), default=list))
        try:
            raw = store.read(RUN_BOOK)
            if raw is None:
                if store.trial_paths() or any(
                    f == TUNER_STATE or f.startswith(EXPERIMENT_STATE) for f in store.files()
                ):
                    raise UserError(
                        f"{store.uri}: holds a Ray Tune experiment but not this harness's harness/run.json "
                        f"(damaged, or another tool's); run with --name NEW, or delete {store.uri} to start again"
                    )
                store.write(RUN_BOOK, mine)
                return
            stored = convert(raw, f"{store.uri}/harness/{RUN_BOOK}")
            check_resumable(store)
        except UserError:
            raise
        except (OSError, ValueError) as err:
            raise UserError(f"{store.uri}: cannot keep the run's books there ({str(err).splitlines()[0]})") from None
        differ = [k for k in mine if stored.get(k) != mine[k]]
        if not differ:
            return
        detail = "; ".join(f"{k}: stored {_short(stored.get(k))}, now {_short(mine[k])}" for k in differ)
        hint = "run with --name NEW for a new run"
        if differ == ["num_samples"]:
            hint += (
                " (a Ray Tune experiment cannot be extended with more trials honestly: its search state "
                "and ASHA rungs were built for the stored number)"
            )
        raise UserError(
            f"{store.uri}: this run was started with other options ({detail}); {hint}, or delete "
            f"{store.uri} to start it again"
        )


@dataclass(frozen=True)
class SearchSummary:
    """``search.json``: how a run went, written as it goes (``running``) and when it ends."""

    pair: str = ""
    run: str = ""
    data_source: str = ""
    stage: str = "search"
    gpus_per_trial: float = 0.0
    cpus_per_trial: float = 1.0
    max_concurrent: int = 0
    num_samples: int = 0
    protocol: str = "loso"
    fidelity: str = "epochs"
    trials: int | None = None
    errors: int | None = None
    interrupted: bool = False
    extraction: list[dict[str, Any]] = field(default_factory=list)  # harness.tune.prebuild: one per feature spec
    skipped: list[str] = field(default_factory=list)
    wall_s: float = 0.0  # added up across resumes
    running: bool = False
    schema: int = BOOK_SCHEMA


@dataclass(frozen=True)
class FinalTrial:
    """One final-stage trial: one seed over every test fold, each fold with the config chosen for it."""

    seed: int
    measure_costs: bool  # latency and FLOPs: once per config, by one of its seeds (``measure_folds``)
    per_fold: dict[str, dict[str, Any]]  # str(test session) -> that fold's flat config (its seed included)
    # The test sessions whose config this trial measures. A fold's config is measured by one of its seeds, and
    # the folds are dealt out over the seeds so that trials running side by side share the step; None (books
    # written before this field): every fold, when ``measure_costs``.
    measure_folds: tuple[int, ...] | None = None

    def ray_config(self) -> dict[str, Any]:
        """What Ray Tune hands the trainable (``harness.tune.ray_search.run_trial``)."""
        return asdict(self)


def fold_config(config: dict[str, Any], session: int, final: bool) -> dict[str, Any]:
    """The flat config a trial's fold for test ``session`` trains with, from the config Ray hands the trial:
    a final-stage trial's ``per_fold`` entry (``FinalTrial``), a search trial's one config. The trainable
    stores it on the fold's record (``FoldRecord.config``)."""
    return dict(config["per_fold"][str(session)]) if final else dict(config)


@dataclass(frozen=True)
class Selected:
    """What chose one test fold's config (the report's selected_configs)."""

    pair: str
    test_session: int
    rank: int
    trial_id: str
    selected_on_sessions: str
    val_weighted_f1: float | None


@dataclass(frozen=True)
class FinalConfigs:
    """``final_configs.json``: the final stage's trials, the search run they came from and its budget."""

    budget: str
    search_run: str
    configs: list[FinalTrial]
    selected: list[Selected] = field(default_factory=list)
    schema: int = BOOK_SCHEMA


def convert(data: Any, where: str) -> dict[str, Any]:
    """A stored book as the current schema: schema 0 (no ``schema`` key; the same fields) is read as 1; a
    newer schema, or what is not a JSON object, is refused with one line."""
    if not isinstance(data, dict):
        raise UserError(f"{where}: not a book of this harness (a JSON object expected, got {type(data).__name__})")
    version = data.get("schema", 0)
    if not isinstance(version, int) or version > BOOK_SCHEMA:
        raise UserError(
            f"{where}: schema {version!r} is newer than this harness reads ({BOOK_SCHEMA}); use the harness "
            "version that wrote it"
        )
    return data | {"schema": BOOK_SCHEMA}


def read_book(store: RunStore, name: str, kind: type[B]) -> B | None:
    """The run's book ``name`` as ``kind`` (None when absent); ``UserError`` naming the file when it is
    damaged, newer, or holds a key ``kind`` does not know."""
    raw = store.read(name)
    if raw is None:
        return None
    where = f"{store.uri}/harness/{name}"
    return from_dict(kind, convert(raw, where), where=where)


def write_book(store: RunStore, name: str, book: Any) -> None:
    store.write(name, asdict(book))


# What Ray Tune restores an experiment from, at the top of its folder
TUNER_STATE, EXPERIMENT_STATE = "tuner.pkl", "experiment_state-"


def check_resumable(store: RunStore) -> None:
    """A started run whose trials exist must resume from Ray Tune's state: without it Ray would start the
    experiment afresh and the run would lose (and then drop) its trials; a half-written state is a Ray
    traceback after Ray started. Checked before Ray, from the files alone."""
    files = store.files()
    if store.trial_paths() and TUNER_STATE not in files:
        raise UserError(
            f"{store.uri}/{TUNER_STATE}: missing, so Ray Tune cannot resume this run's trials; run with "
            f"--name NEW, or delete {store.uri} to start again"
        )
    check_run_files(store)  # a file cut short (tuner.pkl, JSON, optuna.db): one line naming it (issue 30)


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."
