"""Speaker-independent leave-one-session-out folds, derived from the manifest.

Fold k tests on Session k and never looks at it before the final score. Model selection and early
stopping use the next session (cyclically) as validation, both of its speakers, and train on the other
three. Validation is speaker-disjoint from training and test. It is a whole session, not one speaker of
it, because the two speakers of a session share every dialog: with one validation speaker, its partner's
turns would stay in training, and a model with dialogue context would read turns it was fitted on (with
their labels) as the context of validation turns but never of test turns, inflating validation scores
for context models only. A whole session validates under the same conditions as the test.

Nested selection (``inner_folds``): for outer test session k, configs are compared on inner folds that
validate on each of the other sessions in turn and train on the remaining ones. Nothing in them holds a
row of Session k, so a config chosen on them never saw the test speakers' labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.corpus.iemocap import SESSIONS

# Bumped when the split of the same corpus changes, so that a stored run is never resumed on other folds.
# 2: loso validates on the whole next session (1 validated on one of its speakers).
# 3: loso selects configs on inner folds that never hold the test session (nested); loso-flat is the old split.
SPLIT_VERSION = 3


@dataclass(frozen=True)
class Fold:
    test_session: int
    validation_speaker: str  # who is validated on: a session (loso, both speakers), or held-out dialogs
    train: np.ndarray  # row indices into the manifest
    validation: np.ndarray
    test: np.ndarray
    protocol: str = "loso"  # see harness.corpus.protocols
    validation_dialogs: tuple[str, ...] = ()  # session5: the held-out training dialogs validated on

    @property
    def name(self) -> str:
        return f"fold{self.test_session}"


def validation_session_for(test_session: int, sessions: tuple[int, ...] = SESSIONS) -> int:
    return sessions[(sessions.index(test_session) + 1) % len(sessions)]


def make_fold(manifest: pd.DataFrame, test_session: int, sessions: tuple[int, ...] = SESSIONS) -> Fold:
    if test_session not in sessions:
        raise ValueError(f"test session {test_session} is not one of {sessions}")
    validation = validation_session_for(test_session, sessions)
    session = manifest["session"].to_numpy()
    is_test = session == test_session
    is_validation = session == validation
    if not is_validation.any():
        raise ValueError(f"validation Session {validation} has no utterances in the manifest")
    if not is_test.any():
        raise ValueError(f"Session {test_session} has no utterances in the manifest")
    is_train = ~is_test & ~is_validation
    return Fold(
        test_session,
        f"Ses{validation:02d}",  # both speakers
        np.flatnonzero(is_train),
        np.flatnonzero(is_validation),
        np.flatnonzero(is_test),
    )


def make_folds(manifest: pd.DataFrame, test_sessions: tuple[int, ...] = SESSIONS) -> list[Fold]:
    """One fold per test session; ``test_sessions`` picks a subset (e.g. ``(5,)`` for a smoke test).

    The cycle of validation sessions runs over the sessions (a manifest's groups) the manifest holds."""
    sessions = tuple(sorted(int(s) for s in set(manifest["session"])))
    return [make_fold(manifest, s, sessions) for s in test_sessions]


def inner_folds(manifest: pd.DataFrame, outer: int, sessions: tuple[int, ...] = SESSIONS) -> list[Fold]:
    """The inner folds of outer test session ``outer``: one per other session, in the cyclic order after
    ``outer`` (so every config of an outer fold runs them in the same order), validating on it and training
    on the rest. They hold no row of Session ``outer`` (their ``test`` is empty): what they train, stop
    early or rank never reads its labels."""
    if outer not in sessions:
        raise ValueError(f"outer test session {outer} is not one of {sessions}")
    session = manifest["session"].to_numpy()
    start = sessions.index(outer)
    others = [sessions[(start + i) % len(sessions)] for i in range(1, len(sessions))]
    out = []
    for validation in others:
        is_validation = session == validation
        if not is_validation.any():
            raise ValueError(f"inner validation Session {validation} has no utterances in the manifest")
        is_train = (session != outer) & ~is_validation
        out.append(
            Fold(
                outer,
                f"Ses{validation:02d}",
                np.flatnonzero(is_train),
                np.flatnonzero(is_validation),
                np.empty(0, dtype=np.int64),
                protocol="loso",
            )
        )
    return out
