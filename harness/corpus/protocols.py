"""What is scored and how it is split: label policy, class set and protocol, each a function of the manifest.

Label policies (``apply_labels``):
    ``release``  the EmoEvaluation summary labels as read: 7,380 six-class utterances in the full release.
    ``erc``      also the 53 utterances labelled ``xxx`` in the release that earlier work relabelled ``hap``
                 (per session S1 8, S2 8, S3 36, S4 0, S5 1): the 7,433 of the ERC papers. The list is data,
                 ``erc_relabel.csv`` next to this module, with its provenance in the header.

Class sets (``apply_class_set``):
    6  neu ang hap sad fru exc (the ERC benchmark, weighted F1).
    4  neu ang hap sad, with exc merged into hap and fru dropped: 5,531 utterances (speech-only work, which
       reports weighted / unweighted accuracy).

Protocols (``make_protocol_folds`` for the test folds, ``selection_folds`` for what chooses configs):
    ``loso``      nested leave-one-session-out (the default). Fold k tests on Session k. Its config is chosen
                  on inner folds of the other four sessions only (each validated on in turn,
                  ``harness.corpus.folds.inner_folds``); the chosen config is re-trained on the three sessions
                  other than k and its validation session (the next one), which early-stops it, and tested
                  once on Session k. No label of Session k chooses, trains, stops or prunes anything of fold k.
    ``loso-flat`` the same five test folds, but one config for all of them, chosen on the mean validation F1
                  over the five folds, whose validation sessions are the other folds' test sessions
                  (non-nested, optimistic; kept to reproduce earlier runs, never ranked with nested ones).
    ``session5``  one fold: train on Sessions 1-4, test on Session 5, as the ERC papers do. Validation is a
                  set of whole dialogs held out of the training sessions, never Session 5: per training
                  session, ``max(1, round(10%))`` of its dialogs, the ones whose names hash first (SHA-1), so
                  the choice is deterministic and does not depend on row order. Validation dialogs share
                  speakers with training (the ERC papers' validation does too); the test session does not.

Presets (``harness.corpus.presets``): ``speaker-dependent``, ``random-val`` and ``test-selected`` reproduce
what popular toolkits do (random utterance split; random validation from the training speakers; epoch
and config chosen on the test fold). Their configs are chosen per test fold, on that fold's validation
set; they are never ranked with honest runs and every header says so (``describe_protocol``).

The usual order is ``benchmark_manifest(corpus, labels, classes)`` and then
``make_protocol_folds(manifest, protocol)``.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from harness.corpus.dialogs import DIALOG_TYPES
from harness.corpus.folds import Fold, inner_folds, make_folds
from harness.corpus.iemocap import EMOTIONS, SESSIONS, Corpus
from harness.corpus.presets import NOT_RANKED, PRESETS, WARNINGS, describe, preset_fold
from harness.errors import UserError

log = logging.getLogger(__name__)

CLASS_SETS: dict[int, tuple[str, ...]] = {6: EMOTIONS, 4: ("neu", "ang", "hap", "sad")}
FOUR_CLASS_MERGE: dict[str, str] = {"exc": "hap"}
LABEL_POLICIES: tuple[str, ...] = ("release", "erc")
PROTOCOLS: tuple[str, ...] = ("loso", "loso-flat", "session5", *PRESETS)
NESTED_PROTOCOLS: tuple[str, ...] = ("loso",)
# Protocols whose configs are chosen per test fold (one Optuna study and ASHA bracket each).
PER_FOLD_SELECTION: tuple[str, ...] = (*NESTED_PROTOCOLS, *PRESETS)
# What a table header says of a protocol whose selection saw the test sessions, or a preset's test speakers.
OPTIMISTIC = {"loso-flat": "non-nested: configs chosen on all five sessions (optimistic)"} | {
    p: f"{WARNINGS[p]}; {NOT_RANKED}" for p in PRESETS
}
SUBSETS: tuple[str, ...] = ("all", *DIALOG_TYPES)
ERC_RELABEL_PATH = Path(__file__).with_name("erc_relabel.csv")
ERC_RELABEL_PER_SESSION: dict[int, int] = {1: 8, 2: 8, 3: 36, 4: 0, 5: 1}
RELABEL_COLUMNS: tuple[str, ...] = ("utterance_id", "from_label", "to_label", "source")
SESSION5_TEST = 5
VALIDATION_DIALOG_FRACTION = 0.1


class ProtocolError(UserError):
    """An unknown protocol, class set or label policy, or a relabel list that does not fit the corpus."""


def class_set(classes: int) -> tuple[str, ...]:
    """The label tuple of a class set (6 or 4); model outputs and metrics follow its order."""
    if classes not in CLASS_SETS:
        raise ProtocolError(f"unknown class set {classes!r}; choose one of {sorted(CLASS_SETS)}")
    return CLASS_SETS[classes]


def apply_class_set(manifest: pd.DataFrame, classes: int) -> pd.DataFrame:
    """Rows (re-indexed from 0) and labels of ``classes``: 4 merges exc into hap and drops fru."""
    wanted = class_set(classes)
    unknown = sorted(set(manifest["label"]) - set(EMOTIONS))
    if unknown:
        raise ProtocolError(f"labels {unknown} are outside the six classes; apply_labels first")
    out = manifest.copy()
    if classes == 4:
        out["label"] = out["label"].replace(FOUR_CLASS_MERGE)
    return out[out["label"].isin(wanted)].reset_index(drop=True)


def read_relabel_list(path: str | Path | None = None) -> pd.DataFrame:
    """The relabel list at ``path`` (default: the shipped ``erc_relabel.csv``); ``#`` lines are provenance."""
    path = Path(path) if path is not None else ERC_RELABEL_PATH
    try:
        table = pd.read_csv(path, comment="#", dtype=str, keep_default_na=False)
    except (OSError, pd.errors.EmptyDataError) as err:
        raise ProtocolError(f"{path}: cannot read the relabel list ({err})") from None
    if tuple(table.columns) != RELABEL_COLUMNS:
        raise ProtocolError(f"{path}: columns must be {','.join(RELABEL_COLUMNS)}, got {','.join(table.columns)}")
    return table


def _check_shipped_list(table: pd.DataFrame) -> None:
    expected = sum(ERC_RELABEL_PER_SESSION.values())
    sessions = table["utterance_id"].str.slice(3, 5).astype(int).value_counts().to_dict() if len(table) else {}
    found = {s: int(sessions.get(s, 0)) for s in ERC_RELABEL_PER_SESSION}
    if len(table) != expected or found != ERC_RELABEL_PER_SESSION:
        raise ProtocolError(
            f"{ERC_RELABEL_PATH} lists {len(table)} of the {expected} utterances the ERC papers relabel xxx -> hap "
            f"(per session {found}, expected {ERC_RELABEL_PER_SESSION}); fill it in as its header says, or pass "
            f"a relabel list of your own"
        )


def apply_labels(
    manifest: pd.DataFrame, labels: str = "release", relabel_path: str | Path | None = None
) -> pd.DataFrame:
    """The six-class rows (re-indexed from 0) under a label policy.

    Args:
        manifest: ``Corpus.manifest(excluded=True)`` for ``erc`` (the relabelled rows are ``xxx`` rows);
            any manifest for ``release``.
        labels: ``release`` or ``erc``.
        relabel_path: a relabel list of one's own (same columns); it must name at least one utterance. The
            shipped list (the default) must hold exactly the 53 ids of the ERC papers, or this refuses.

    Exactly the listed utterances change label; each must be in the manifest with its ``from_label``.
    """
    if labels not in LABEL_POLICIES:
        raise ProtocolError(f"unknown label policy {labels!r}; choose one of {', '.join(LABEL_POLICIES)}")
    out = manifest.copy()
    if labels == "erc":
        table = read_relabel_list(relabel_path)
        if relabel_path is None:
            _check_shipped_list(table)
        elif table.empty:
            raise ProtocolError(f"{relabel_path}: the relabel list is empty")
        current = dict(zip(out["utterance_id"], out["label"]))
        for row in table.itertuples(index=False):
            if current.get(row.utterance_id) != row.from_label:
                raise ProtocolError(
                    f"relabel list: {row.utterance_id} is not labelled {row.from_label!r} in this corpus (found "
                    f"{current.get(row.utterance_id)!r}; relabelling needs Corpus.manifest(excluded=True))"
                )
        out["label"] = out["utterance_id"].map(dict(zip(table["utterance_id"], table["to_label"]))).fillna(out["label"])
        log.info("relabelled %d utterances (%s)", len(table), relabel_path or ERC_RELABEL_PATH.name)
    return out[out["label"].isin(EMOTIONS)].reset_index(drop=True)


def benchmark_manifest(
    corpus: Corpus, labels: str = "release", classes: int = 6, relabel_path: str | Path | None = None
) -> pd.DataFrame:
    """The rows a run scores: label policy first, then the class set. ``release`` + 6 = ``corpus.manifest()``."""
    manifest = apply_labels(corpus.manifest(excluded=labels == "erc"), labels, relabel_path)
    return apply_class_set(manifest, classes)


def validation_dialogs(
    manifest: pd.DataFrame, sessions: tuple[int, ...], fraction: float = VALIDATION_DIALOG_FRACTION
) -> tuple[str, ...]:
    """Per session, ``max(1, round(fraction * dialogs))`` dialogs, those whose names hash first."""
    chosen: list[str] = []
    for session in sessions:
        dialogs = sorted(
            set(manifest.loc[manifest["session"] == session, "dialog"]),
            key=lambda d: hashlib.sha1(d.encode()).hexdigest(),
        )
        chosen += dialogs[: max(1, round(fraction * len(dialogs)))] if dialogs else []
    return tuple(sorted(chosen))


def session5_fold(manifest: pd.DataFrame) -> Fold:
    session = manifest["session"].to_numpy()
    is_test = session == SESSION5_TEST
    if not is_test.any():
        raise ProtocolError(f"Session {SESSION5_TEST} has no utterances in the manifest")
    training_sessions = tuple(int(s) for s in sorted(set(session[~is_test])))
    held_out = validation_dialogs(manifest, training_sessions)
    is_validation = manifest["dialog"].isin(held_out).to_numpy() & ~is_test
    is_train = ~is_test & ~is_validation
    if not is_train.any() or not is_validation.any():
        raise ProtocolError("protocol session5 needs training sessions with at least two dialogs in total")
    return Fold(
        SESSION5_TEST,
        f"{len(held_out)} held-out dialogs of Sessions {training_sessions}",
        np.flatnonzero(is_train),
        np.flatnonzero(is_validation),
        np.flatnonzero(is_test),
        protocol="session5",
        validation_dialogs=held_out,
    )


def apply_subset(manifest: pd.DataFrame, subset: str = "all") -> pd.DataFrame:
    """Rows (re-indexed from 0) of the dialogs of ``subset``: ``all``, ``improvised`` or ``scripted``.

    IEMOCAP's sessions perform the same three scripts, so a scripted test line often occurs verbatim in
    training (other actors, usually a similar label): LOSO is speaker-independent but not
    content-independent there. ``improvised`` trains, selects and tests on improvised dialogs only."""
    if subset not in SUBSETS:
        raise ProtocolError(f"unknown subset {subset!r}; choose one of {', '.join(SUBSETS)}")
    if subset == "all":
        return manifest
    kept = manifest[manifest["dialog_type"] == subset].reset_index(drop=True)
    if kept.empty:
        raise ProtocolError(f"--subset {subset}: the corpus has no {subset} dialog")
    return kept


def is_nested(protocol: str) -> bool:
    return protocol in NESTED_PROTOCOLS


def is_preset(protocol: str) -> bool:
    """A toolkit's protocol reproduced (``harness.corpus.presets``): never ranked with honest runs."""
    return protocol in PRESETS


def selects_per_fold(protocol: str) -> bool:
    """Whether each test fold gets its own config (nested LOSO and the presets) rather than one for all."""
    return protocol in PER_FOLD_SELECTION


def describe_protocol(protocol: str) -> str:
    """A preset's header line (what it reproduces, and that it is not ranked with honest runs); else the name."""
    return describe(protocol) if is_preset(protocol) else protocol


def selection_units(protocol: str, test_sessions: tuple[int, ...]) -> tuple[int | None, ...]:
    """What configs are chosen for: each test fold (nested, presets), or all folds at once (``None``)."""
    return tuple(test_sessions) if selects_per_fold(protocol) else (None,)


def selection_folds(
    manifest: pd.DataFrame,
    protocol: str,
    test_sessions: tuple[int, ...],
    unit: int | None,
    inner: int | None = None,
) -> list[Fold]:
    """The folds a search trial of selection unit ``unit`` runs, in the order every config runs them.

    Nested: the inner folds of outer session ``unit`` (the first ``inner`` of them when given: a smoke
    test's budget); their ``test`` is empty. A preset: its fold ``unit`` with the test rows left out (the
    search validates; only the final stage tests). Otherwise the protocol's own folds (test scored, for the
    report only)."""
    if selects_per_fold(protocol) and unit is None:
        raise ValueError(f"protocol {protocol} chooses configs per test fold; no unit given")
    if is_nested(protocol):
        assert unit is not None
        folds = inner_folds(manifest, unit, tuple(int(s) for s in sorted(set(manifest["session"]))))
        return folds[:inner] if inner else folds
    if is_preset(protocol):
        assert unit is not None
        fold = preset_fold(manifest, protocol, unit)
        return [replace(fold, test=np.empty(0, dtype=np.int64))]
    return make_protocol_folds(manifest, protocol, test_sessions)


def make_protocol_folds(
    manifest: pd.DataFrame, protocol: str = "loso", test_sessions: tuple[int, ...] = SESSIONS
) -> list[Fold]:
    """The test folds of ``protocol``; ``test_sessions`` picks loso folds, and for session5 must include 5.
    ``loso`` and ``loso-flat`` test on the same folds; they differ in how configs are chosen."""
    if protocol in ("loso", "loso-flat"):
        return make_folds(manifest, test_sessions)
    if protocol == "session5":
        if SESSION5_TEST not in test_sessions:
            raise ProtocolError(
                f"protocol session5 tests on Session {SESSION5_TEST}; the test sessions "
                f"{tuple(test_sessions)} do not include it"
            )
        return [session5_fold(manifest)]
    if is_preset(protocol):
        return [preset_fold(manifest, protocol, k) for k in test_sessions]
    raise ProtocolError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
