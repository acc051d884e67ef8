"""Speaker-independent leave-one-session-out folds, derived from the manifest.

Fold k tests on Session k and never looks at it before the final score. Model selection and early
stopping use a validation speaker carved out of the training sessions: one speaker of the next session
(cyclically), alternating F and M across folds. That speaker is removed from training, so validation is
speaker-disjoint from both training and test data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.corpus.iemocap import SESSIONS


@dataclass(frozen=True)
class Fold:
    test_session: int
    validation_speaker: str
    train: np.ndarray  # row indices into the manifest
    validation: np.ndarray
    test: np.ndarray
    protocol: str = "loso"  # see harness.corpus.protocols
    validation_dialogs: tuple[str, ...] = ()  # session5: the held-out training dialogs validated on

    @property
    def name(self) -> str:
        return f"fold{self.test_session}"


def validation_speaker_for(test_session: int, sessions: tuple[int, ...] = SESSIONS) -> str:
    position = sessions.index(test_session)
    next_session = sessions[(position + 1) % len(sessions)]
    return f"Ses{next_session:02d}{'FM'[position % 2]}"


def make_fold(manifest: pd.DataFrame, test_session: int, sessions: tuple[int, ...] = SESSIONS) -> Fold:
    if test_session not in sessions:
        raise ValueError(f"test session {test_session} is not one of {sessions}")
    speaker = validation_speaker_for(test_session, sessions)
    session = manifest["session"].to_numpy()
    is_test = session == test_session
    is_validation = (manifest["speaker"] == speaker).to_numpy()
    if not is_validation.any():
        raise ValueError(f"validation speaker {speaker} has no utterances in the manifest")
    if not is_test.any():
        raise ValueError(f"Session {test_session} has no utterances in the manifest")
    is_train = ~is_test & ~is_validation
    return Fold(test_session, speaker, np.flatnonzero(is_train), np.flatnonzero(is_validation), np.flatnonzero(is_test))


def make_folds(manifest: pd.DataFrame, test_sessions: tuple[int, ...] = SESSIONS) -> list[Fold]:
    """One fold per test session; ``test_sessions`` picks a subset (e.g. ``(5,)`` for a smoke test)."""
    return [make_fold(manifest, s) for s in test_sessions]
