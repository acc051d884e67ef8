"""Protocol presets: what the popular toolkits do, reproduced so that their optimism can be measured.

Each preset is the protocol of a well-known recipe, run on the same pairs, search budget and final stage
as the honest protocol (nested ``loso``), so that ``python -m harness.benchmark --protocol-gap PRESET``
can put a number on the gap. A preset is never ranked with an honest run: its runs are a protocol group
of their own, and every table header says what it is (``describe``).

``speaker-dependent``  SpeechBrain's IEMOCAP recipe: utterances split at random, so the test speakers (and
                       their dialogs) are also in training. Five parts of the utterances, by SHA-1 of the
                       utterance id (deterministic, independent of row order); fold k tests on part k,
                       validates on part k+1 (cyclically) and trains on the other three.
``random-val``         s3prl's and emotion2vec's recipe: leave-one-session-out test, but validation is a random
                       20% of the training sessions' utterances (same speakers and dialogs as training). Fold
                       k tests on Session k; the 20% of the other sessions' utterances whose ids hash first
                       validate, the rest train.
``test-selected``      EmoBox's recipe: every epoch scored on the test fold and the best kept. Fold k trains on
                       the other four sessions and validates on Session k itself, so early stopping, the best
                       epoch and the config are all chosen on the test labels.

In every preset the config is chosen per test fold, on that fold's own validation set (a search trial runs
one fold, with no test rows); the final stage re-trains it on the same fold and tests once. So
``speaker-dependent`` and ``random-val`` read no test label when choosing (their optimism comes from the
speakers that validation and test share with training; ``harness audit`` passes them), and
``test-selected`` reads them all (``harness audit`` fails it).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from harness.corpus.folds import Fold

SPEAKER_DEPENDENT, RANDOM_VAL, TEST_SELECTED = "speaker-dependent", "random-val", "test-selected"
PRESETS: tuple[str, ...] = (SPEAKER_DEPENDENT, RANDOM_VAL, TEST_SELECTED)
RANDOM_VALIDATION_FRACTION = 0.2  # s3prl / emotion2vec: 20% of the training utterances validate
PARTS = 5  # speaker-dependent: five random parts, one per fold, as many folds as LOSO has

# Which toolkit each preset reproduces, and the one-line warning every table header carries.
SOURCES = {
    SPEAKER_DEPENDENT: "SpeechBrain's IEMOCAP recipe (random utterance split)",
    RANDOM_VAL: "s3prl / emotion2vec (validation: a random 20% of the training sessions' utterances)",
    TEST_SELECTED: "EmoBox (every epoch scored on the test fold, the best one kept)",
}
WARNINGS = {
    SPEAKER_DEPENDENT: "PRESET speaker-dependent: test speakers are also in training (optimistic)",
    RANDOM_VAL: "PRESET random-val: validation shares speakers with training (optimistic)",
    TEST_SELECTED: "PRESET test-selected: epoch and config chosen on the test labels (leaks)",
}
NOT_RANKED = "never ranked with honest (nested) runs"


def describe(protocol: str) -> str:
    """The header line of a preset's tables."""
    folds = {
        SPEAKER_DEPENDENT: "Five random parts of the utterances (SHA-1 of the id); fold k tests on part k, validates "
        "on part k+1 and trains on the other three.",
        RANDOM_VAL: "Fold k tests on Session k; a random 20% of the other sessions' utterances validates, the rest "
        "trains.",
        TEST_SELECTED: "Fold k trains on the other four sessions and validates on Session k, its test session: early "
        "stopping, best epoch and config are chosen on the test labels.",
    }[protocol]
    return (
        f"**{WARNINGS[protocol].upper()}; {NOT_RANKED.upper()}.** Reproduces {SOURCES[protocol]}. {folds} "
        "Configs are chosen per test fold on its validation set."
    )


def _hash_order(ids: pd.Series) -> np.ndarray:
    """Positions of ``ids`` ordered by the SHA-1 of each id: a fixed random order that does not depend on
    the manifest's row order."""
    keys = [hashlib.sha1(str(i).encode()).hexdigest() for i in ids]
    return np.argsort(np.asarray(keys), kind="stable")


def speaker_dependent_parts(manifest: pd.DataFrame) -> np.ndarray:
    """Per manifest row, its part 1..``PARTS`` (about equal sizes)."""
    parts = np.empty(len(manifest), dtype=np.int64)
    for index, chunk in enumerate(np.array_split(_hash_order(manifest["utterance_id"]), PARTS)):
        parts[chunk] = index + 1
    return parts


def speaker_dependent_fold(manifest: pd.DataFrame, part: int) -> Fold:
    if not 1 <= part <= PARTS:
        raise ValueError(f"speaker-dependent part {part} is not one of 1..{PARTS}")
    parts = speaker_dependent_parts(manifest)
    validation = part % PARTS + 1
    is_test, is_validation = parts == part, parts == validation
    return Fold(
        part,
        f"part {validation}",
        np.flatnonzero(~is_test & ~is_validation),
        np.flatnonzero(is_validation),
        np.flatnonzero(is_test),
        protocol=SPEAKER_DEPENDENT,
    )


def random_val_fold(manifest: pd.DataFrame, test_session: int) -> Fold:
    session = manifest["session"].to_numpy()
    is_test = session == test_session
    if not is_test.any():
        raise ValueError(f"Session {test_session} has no utterances in the manifest")
    training = np.flatnonzero(~is_test)
    order = training[_hash_order(manifest["utterance_id"].iloc[training])]
    n_validation = max(1, round(RANDOM_VALIDATION_FRACTION * len(order)))
    sessions = " ".join(f"Ses{s:02d}" for s in sorted(set(session[training])))
    return Fold(
        test_session,
        f"random {RANDOM_VALIDATION_FRACTION:.0%} of {sessions}",
        np.sort(order[n_validation:]),
        np.sort(order[:n_validation]),
        np.flatnonzero(is_test),
        protocol=RANDOM_VAL,
    )


def chosen_on_test_fold(manifest: pd.DataFrame, test_session: int) -> Fold:
    is_test = manifest["session"].to_numpy() == test_session
    if not is_test.any():
        raise ValueError(f"Session {test_session} has no utterances in the manifest")
    return Fold(
        test_session,
        f"Ses{test_session:02d}",  # the test session validates: selected_configs shows test_session_chose_it
        np.flatnonzero(~is_test),
        np.flatnonzero(is_test),
        np.flatnonzero(is_test),
        protocol=TEST_SELECTED,
    )


def preset_fold(manifest: pd.DataFrame, protocol: str, test_fold: int) -> Fold:
    """Test fold ``test_fold`` of a preset (a session, or a random part for ``speaker-dependent``)."""
    build = {SPEAKER_DEPENDENT: speaker_dependent_fold, RANDOM_VAL: random_val_fold, TEST_SELECTED: chosen_on_test_fold}
    return build[protocol](manifest, test_fold)
