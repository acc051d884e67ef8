"""The one run loader of the report stage, and the one rule for which runs a pair's rows rest on.

``load_runs(storage)`` reads every run of the storage into ``Run`` objects (typed books, typed records). It
reads what it can: a damaged ``record.json`` (not JSON, not an object, wrong types, unknown keys) is
skipped with one log line naming it, a trial stored in two folders (a copied run) is counted once, and a
run folder without its books (``harness/run.json``) is listed as skipped; ``Loaded.skipped`` says what was
left out, for the report's header.

``groups(runs)`` groups the real runs (no smoke test) by (data source, protocol, class set, fold set) and
picks, per pair, the runs every table of the group rests on (``Group``): the row's run (its latest final
stage with a complete trial, else its search run) and ``searches[pair]``, the search run, chosen by ONE
rule (``search_run_of``): the search the row's final stage came from, else the pair's latest search run
with a complete trial. comparison_full, selected_configs, pareto and report.md all read these.

Imports neither torch nor Ray.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.fs as pafs

from harness.books import FINAL_BOOK, RUN_BOOK, SUMMARY_BOOK, FinalConfigs, RunIdentity, SearchSummary, read_book
from harness.errors import UserError
from harness.logs import LOG_FOLDER
from harness.models.pairs import stored_pair
from harness.records import FoldRecord, RunMeta, TrialRecord
from harness.store import BOOKS, RunStore, Storage, trial_record

log = logging.getLogger(__name__)


@dataclass
class Run:
    """One run: where it is stored, its meta, its trial records, its summary and (final stage) its predictions."""

    location: str
    meta: RunMeta
    records: list[TrialRecord]
    summary: dict[str, Any] = field(default_factory=dict)  # search.json (harness.books.SearchSummary) as a dict
    predictions: pd.DataFrame | None = None
    budget: str = ""
    search_run: str = ""  # final stage: the search run its configs came from
    searched: tuple[str, ...] = ()  # the search space's searched parameters (run.json)
    selected: list[dict[str, Any]] = field(default_factory=list)  # final stage: what chose each fold's config
    other_ranks: dict[int, pd.DataFrame] = field(default_factory=dict)  # --top-k > 1: rank r >= 2, kept apart

    @property
    def written_at(self) -> str:
        return max((r.written_at for r in self.records), default="")

    @property
    def stage(self) -> str:
        return "final" if any(r.stage == "final" for r in self.records) else "search"

    def best(self) -> TrialRecord | None:
        """The complete trial with the best mean validation weighted F1 (ties: lowest trial id)."""
        complete = [r for r in self.records if r.complete]
        return min(complete, key=lambda r: (-(r.mean_val_weighted_f1 or 0.0), r.trial_id), default=None)


@dataclass
class Loaded:
    """The runs read, and one line per thing left out (a damaged record, a run without its books)."""

    runs: list[Run]
    skipped: list[str] = field(default_factory=list)


def _trials(store: RunStore, skipped: list[str]) -> list[tuple[str, TrialRecord]]:
    """The run's trials, each once: a damaged record is skipped (one line), and a trial found in two folders
    (a copied or half-moved run) is counted once, the copy with more folds (then the later) kept."""
    found: dict[str, tuple[str, TrialRecord]] = {}
    for path in store.trial_paths():
        try:
            record = trial_record(store.fs, path)
        except UserError as err:
            line = str(err).splitlines()[0]
            log.warning("skipped a damaged trial record: %s", line)
            skipped.append(line)
            continue
        if record is None:
            continue
        kept = found.get(record.trial_id)
        if kept is None or (len(record.folds), record.written_at) > (len(kept[1].folds), kept[1].written_at):
            found[record.trial_id] = (path, record)
    return sorted(found.values(), key=lambda item: item[1].trial_id)


def _unbooked(storage: Storage) -> list[str]:
    """Run folders of the storage without their books (``harness/run.json``)."""
    info = storage.fs.get_file_info(storage.path)
    if info.type != pafs.FileType.Directory:
        return []
    folders = [i.path for i in storage.fs.get_file_info(pafs.FileSelector(storage.path)) if i.type == info.type]
    missing = []
    for folder in sorted(folders):
        if folder.rstrip("/").rsplit("/", 1)[-1] == LOG_FOLDER:  # the commands' log files, not a run
            continue
        books = storage.fs.get_file_info(f"{folder}/{BOOKS}/{RUN_BOOK}")
        if books.type == pafs.FileType.NotFound:
            missing.append(f"{folder}: no {BOOKS}/{RUN_BOOK} (not a run of this harness, or its books are lost)")
    return missing


def load(storage: str | Path) -> Loaded:
    """Every run in the storage with at least one readable trial record, and what was skipped."""
    store_root = Storage(storage)
    skipped = _unbooked(store_root)
    for line in skipped:
        log.warning("skipped a run: %s", line)
    runs = []
    for store in store_root.runs():
        try:
            identity = read_book(store, RUN_BOOK, RunIdentity)
            summary = read_book(store, SUMMARY_BOOK, SearchSummary) or SearchSummary()
            final = read_book(store, FINAL_BOOK, FinalConfigs)
        except UserError as err:
            line = str(err).splitlines()[0]
            log.warning("skipped a run with damaged books: %s", line)
            skipped.append(line)
            continue
        trials = _trials(store, skipped)
        records = [r for _, r in trials]
        if not records:
            continue
        stored_pair(records[0].meta.pair)  # a --grid run's composed pair: known to the tables that follow
        predictions = None
        if records[0].stage == "final":
            try:
                predictions = store.predictions(trials)
            except UserError as err:
                skipped.append(str(err).splitlines()[0])
                log.warning("%s", skipped[-1])
        other_ranks: dict[int, pd.DataFrame] = {}
        if predictions is not None and final is not None:
            predictions, other_ranks = split_ranks(predictions, final)
        runs.append(
            Run(
                store.uri,
                records[0].meta,
                records,
                asdict(summary),
                predictions,
                final.budget if final else "",
                final.search_run if final else "",
                identity.searched if identity else (),
                [asdict(s) for s in final.selected] if final else [],
                other_ranks,
            )
        )
    return Loaded(runs, skipped)


def split_ranks(predictions: pd.DataFrame, final: FinalConfigs) -> tuple[pd.DataFrame, dict[int, pd.DataFrame]]:
    """``--top-k > 1``: the final stage trains the r-th best config of every test fold with seeds of its own
    (rank-major, ``harness.cli.benchmark.seeded``). Rank 1's predictions are the pair's; each further rank is
    returned apart, never pooled with rank 1 as extra seeds (issue 27)."""
    top_k = max((s.rank for s in final.selected), default=1)
    if top_k <= 1 or not final.configs:
        return predictions, {}
    per_rank = max(1, len(final.configs) // top_k)
    rank_of = {c.seed: i // per_rank + 1 for i, c in enumerate(final.configs)}
    ranks = predictions["seed"].map(rank_of).fillna(1).astype(int)
    others = {int(r): predictions[ranks == r] for r in sorted(set(ranks)) if r > 1}
    return predictions[ranks == 1], others


def load_runs(storage: str | Path) -> list[Run]:
    """Every run in the storage with at least one readable trial record (``load`` also says what it skipped)."""
    return load(storage).runs


def test_folds(run: Run) -> list[FoldRecord]:
    """The fold records a row rests on: every seed's folds (final stage) or the best search trial's. A
    nested search's folds are inner folds with no test session: none (its test scores come only from the
    final stage, ``python -m harness.benchmark``)."""
    if run.stage == "final":
        return [f for r in run.records if r.complete for f in r.folds]
    best = run.best()
    return [f for f in best.folds if f.test is not None] if best else []


@dataclass
class Group:
    key: tuple
    rows: list[Run]  # one run per pair: its latest final-stage run if any, else its search run (with test scores)
    searches: dict[str, Run]  # per pair, THE search run its rows rest on (``search_run_of``)


def search_run_of(mine: list[Run], final: Run | None) -> Run | None:
    """The one rule for a pair's search run: the search ``final`` (the pair's row, final stage) came from;
    with no final stage, the pair's latest search run with a complete trial."""
    searches = [r for r in mine if r.stage == "search"]
    if final is not None and final.search_run:
        return next((r for r in searches if r.meta.run == final.search_run), None)
    complete = [r for r in searches if r.best() is not None]
    return max(complete, key=lambda r: (r.written_at, r.meta.run), default=None)


def groups(runs: list[Run]) -> list[Group]:
    """Real runs grouped by (data source, protocol, classes, folds): per pair its row's run and its search
    run (never mixing runs inside one row, and every table of the group on the same search run)."""
    out = []
    keys = sorted({r.meta.group for r in runs if r.meta.smoke_test is False}, key=str)
    for key in keys:
        members = [r for r in runs if r.meta.group == key and not r.meta.smoke_test]
        chosen, searches = [], {}
        for pair in sorted({r.meta.pair for r in members}):
            mine = [r for r in members if r.meta.pair == pair]
            finals = [r for r in mine if r.stage == "final" and any(t.complete for t in r.records)]
            final = max(finals, key=lambda r: r.written_at) if finals else None
            search = search_run_of(mine, final)
            if search is not None:
                searches[pair] = search
            # a nested search has no test score of its own (its trials never see the test sessions): no row
            row = final or (search if search is not None and test_folds(search) else None)
            if row is not None:
                chosen.append(row)
        out.append(Group(key, chosen, searches))
    return out
