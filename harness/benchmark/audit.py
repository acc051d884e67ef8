"""The label-permutation leak probe (``harness audit``): does anything that chose, trained or stopped the
model tested on a fold read that fold's test labels?

Black box, on a run's own design and corpus (Varma & Simon 2006's point, made testable): the labels of one
test fold's utterances are shuffled among them, and that fold's selection (search) and final stage are
run again, once on the original labels and once on the permuted ones, with everything else equal. If no
test label reaches selection, early stopping or training, every prediction on the test fold is identical
(bit for bit: CPU, one trial at a time, the same seeds). A control fold, one whose training reads the
permuted utterances, is run beside it and must move: it shows the permutation reached the pipeline at all.

Verdicts: ``pass`` (test fold unchanged, control moved), ``leak`` (a test prediction moved: exit 1),
``inconclusive`` (the control did not move either: the probe could not see anything; exit 1).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import pyarrow.fs as pafs

from harness.benchmark.plan import PairPlan, RunData, default_run_name, plan_pair
from harness.benchmark.spec import BenchmarkSpec
from harness.benchmark.stage import Interrupts, execute, final_stage
from harness.corpus.protocols import make_protocol_folds, selects_per_fold
from harness.errors import UserError
from harness.store import Storage

log = logging.getLogger(__name__)
TOLERANCE = 1e-6  # probabilities are compared to this (identical runs give identical bits on CPU)
PASS, LEAK, INCONCLUSIVE = "pass", "leak", "inconclusive"


class AuditError(UserError):
    """A design the probe cannot run (one fold only, nothing to permute)."""


def control_fold(manifest: pd.DataFrame, protocol: str, folds: tuple[int, ...], fold: int) -> int:
    """The first fold after ``fold`` (cyclically) whose final-stage training reads ``fold``'s test rows."""
    built = {f.test_session: f for f in make_protocol_folds(manifest, protocol, folds)}
    if fold not in built:
        raise AuditError(f"--fold {fold} is not a test fold of this design ({' '.join(map(str, folds))})")
    tested = set(built[fold].test.tolist())
    order = list(folds)
    for step in range(1, len(order)):
        other = order[(order.index(fold) + step) % len(order)]
        if tested & set(built[other].train.tolist()):
            return other
    raise AuditError(
        f"protocol {protocol} with folds {' '.join(map(str, folds))}: no other fold trains on fold {fold}'s test "
        "utterances, so no control fold can show that the permutation reached the pipeline"
    )


PERMUTATIONS = ("rotate", "shuffle")


def permute_labels(
    manifest: pd.DataFrame, rows: np.ndarray, seed: int = 0, how: str = "rotate"
) -> tuple[pd.DataFrame, int]:
    """``manifest`` with the labels of ``rows`` permuted; and how many utterances changed label.

    ``rotate`` (the default) renames the classes present among ``rows`` cyclically (a permutation of the
    label set: every utterance changes label). ``shuffle`` shuffles the labels among the rows (a random
    permutation of the utterances: the class shares stay, but some labels stay too). Rotation is the
    stronger probe: scored against rotated labels, a model that learns the true classes gets worse as it
    learns, so a choice made on them (best epoch, config) moves; against shuffled labels, a model that
    leaves the constant prediction of its first epochs also gains, and a choice may by chance stay."""
    if how not in PERMUTATIONS:
        raise AuditError(f"--permutation {how!r}: choose one of {', '.join(PERMUTATIONS)}")
    labels = manifest["label"].to_numpy().copy()
    if how == "rotate":
        present = sorted(set(labels[rows]))
        rename = {c: present[(i + 1) % len(present)] for i, c in enumerate(present)}
        shuffled = np.array([rename[c] for c in labels[rows]], dtype=labels.dtype)
    else:
        shuffled = np.random.default_rng(seed).permutation(labels[rows])
    changed = int((shuffled != labels[rows]).sum())
    labels[rows] = shuffled
    out = manifest.copy()
    out["label"] = labels
    return out, changed


@dataclass(frozen=True)
class Movement:
    """How far a fold's predictions moved between the original and the permuted run."""

    fold: int
    utterances: int  # compared (utterance x seed)
    moved: int  # of them, with some probability changed by more than TOLERANCE
    max_abs_diff: float


def movement(original: pd.DataFrame, permuted: pd.DataFrame, fold: int) -> Movement:
    """Compare the two runs' predictions on ``fold`` (by seed and utterance)."""
    probabilities = [c for c in original.columns if c.startswith("p_")]
    key = ["seed", "utterance_id"]
    a = original[original.fold == fold].set_index(key).sort_index()
    b = permuted[permuted.fold == fold].set_index(key).sort_index()
    if len(a) == 0 or not a.index.equals(b.index):
        raise AuditError(f"fold {fold}: the original and permuted runs did not predict the same utterances")
    diff = np.abs(a[probabilities].to_numpy() - b[probabilities].to_numpy()).max(axis=1)
    return Movement(fold, len(a), int((diff > TOLERANCE).sum()), float(diff.max()))


@dataclass(frozen=True)
class AuditResult:
    pair: str
    protocol: str
    fold: int
    control: int
    permuted: int  # test utterances whose label the permutation changed
    how: str  # the permutation (``PERMUTATIONS``)
    test: Movement
    control_moved: Movement

    @property
    def verdict(self) -> str:
        if self.test.moved:
            return LEAK
        return PASS if self.control_moved.moved else INCONCLUSIVE

    @property
    def passed(self) -> bool:
        return self.verdict == PASS

    def paragraph(self) -> str:
        """The one-paragraph verdict ``harness audit`` prints."""
        head = (
            f"Leak audit of {self.pair} under protocol {self.protocol}: the labels of {self.permuted} of fold "
            f"{self.fold}'s test utterances were permuted ({self.how}), and fold {self.fold}'s selection and final "
            f"stage were run again on the original and the permuted labels (one trial at a time, the same seeds)."
        )
        test = (
            f"{self.test.moved} of {self.test.utterances} predictions on fold {self.fold} moved (largest change "
            f"{self.test.max_abs_diff:.2g})"
        )
        control = (
            f"{self.control_moved.moved} of {self.control_moved.utterances} on control fold {self.control}, which "
            f"trains on those utterances, moved (largest {self.control_moved.max_abs_diff:.2g})"
        )
        tail = {
            PASS: "PASS: no test label of the fold chose, trained, stopped or pruned anything that predicts it, "
            "and the control shows the permutation reached the pipeline.",
            LEAK: f"FAIL (leak): the test labels of fold {self.fold} reach what predicts it (selection, early "
            "stopping or training reads them); its scores are optimistic.",
            INCONCLUSIVE: "FAIL (inconclusive): the control fold did not move either, so the probe could not see "
            "the permutation; rerun with more epochs or trials.",
        }[self.verdict]
        return f"{head} {test}; {control}. {tail}"


def audit_spec(spec: BenchmarkSpec, fold: int, control: int) -> BenchmarkSpec:
    """The design re-run by the probe: the run's own, with one seed, one trial at a time (so that the
    searcher sees results in the same order in both runs), on the test and control folds (every fold when
    the protocol chooses one config for all)."""
    folds = (fold, control) if selects_per_fold(spec.run.protocol) else spec.run.folds
    run = replace(spec.run, folds=tuple(sorted(set(folds))), max_concurrent=1, keep_models=False, no_report=True)
    return replace(spec, run=run, seeds=1, top_k=1)


def _run_once(spec: BenchmarkSpec, pair: str, data: RunData, storage: Storage, name: str) -> pd.DataFrame:
    """One search + final stage, from scratch: an audit re-runs (its own runs of an earlier audit of the same
    design, in the audit's storage, are deleted first)."""
    for run in (name, f"{name}_final"):
        store = storage.run(run)
        if store.fs.get_file_info(store.path).type != pafs.FileType.NotFound:
            log.info("audit: deleting the earlier audit run %s", store.uri)
            store.fs.delete_dir(store.path)
    search: PairPlan = plan_pair(spec.run, pair, data, storage, name, stage="search", stand_ins=True)
    final: PairPlan = plan_pair(
        spec.run, pair, data, storage, f"{name}_final", stage="final", stand_ins=True, final=spec.final
    )
    with Interrupts() as interrupts:
        if execute(search, data, spec.run, interrupts).interrupted:
            raise KeyboardInterrupt
        outcome = final_stage(spec, search, final, data, interrupts)
        if outcome.interrupted:
            raise KeyboardInterrupt
    if not outcome.ran:
        raise AuditError(f"{pair}: no config completed every fold for test fold(s) {outcome.missing}; no final stage")
    predictions = final.store.predictions()
    if predictions is None:
        raise AuditError(f"{final.store.uri}: the final stage stored no predictions")
    return predictions


def run_audit(
    spec: BenchmarkSpec,
    pair: str,
    data: RunData,
    storage: Storage,
    fold: int,
    control: int | None = None,
    seed: int = 0,
    how: str = "rotate",
) -> AuditResult:
    """Permute fold ``fold``'s test labels, run its selection and final stage on both label sets (runs
    ``PAIR_SOURCE[_PROTOCOL]_NAME_audit<fold>_original`` / ``_permuted`` and their ``_final`` in ``storage``;
    deleted first if an earlier audit left them), compare."""
    protocol = spec.run.protocol
    all_folds = make_protocol_folds(data.manifest, protocol, spec.run.folds)
    if len(all_folds) < 2:
        raise AuditError(f"protocol {protocol} has one test fold: the probe needs a second one as its control")
    control = control if control is not None else control_fold(data.manifest, protocol, spec.run.folds, fold)
    if control == fold:
        raise AuditError(f"--control {control} is the audited fold itself")
    test_rows = next(f.test for f in all_folds if f.test_session == fold)
    manifest, changed = permute_labels(data.manifest, test_rows, seed, how)
    if changed == 0:
        raise AuditError(f"fold {fold}: shuffling its labels changed none (one class only?)")
    design = audit_spec(spec, fold, control)
    predictions = {}
    for variant, rows in (("original", data.manifest), ("permuted", manifest)):
        # PAIR_SOURCE[_PROTOCOL...]_NAME_audit<K>_<original|rotate|shuffle>
        suffix = f"_{spec.name}_audit{fold}_{variant if variant == 'original' else how}"
        log.info("audit: %s labels of fold %d (%s, protocol %s)", variant, fold, pair, protocol)
        predictions[variant] = _run_once(
            design, pair, replace(data, manifest=rows), storage, default_run_name(pair, data.source, spec.run, suffix)
        )
    return AuditResult(
        pair,
        protocol,
        fold,
        control,
        changed,
        how,
        movement(predictions["original"], predictions["permuted"], fold),
        movement(predictions["original"], predictions["permuted"], control),
    )
