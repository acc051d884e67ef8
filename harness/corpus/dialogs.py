"""Dialogue structure from the manifest: each dialog's turns in time order, and context windows over them.

Turns are ordered by start time (the EmoEvaluation ``[start - end]`` of each turn), ties broken by end
time and utterance id, and never by the order of lines in a file: the transcription order is not
reliable in every session of the real corpus. Both speakers' turns form one sequence.

Only rows of the manifest are turns. Utterances outside the class set (``xxx``, ``oth``; ``fru`` in the
four-class set) are therefore never read as context, as in the ERC papers' preprocessed IEMOCAP data,
which holds only the six-class turns of each dialog.

A window holds row indices only, so a model reads the audio and text of neighbouring turns and never
their labels. At test time the neighbours are other turns of the same (test) dialog, which is what the
published ERC models read too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

DIALOG_TYPES: tuple[str, ...] = ("improvised", "scripted")


def dialog_type(dialog: str) -> str:
    """``improvised`` or ``scripted``, from the dialog name (``Ses01F_impro01``, ``Ses05M_script01_1b``).

    IEMOCAP's five sessions perform the same three scripts (and the same improvisation scenarios), so a
    scripted test transcript often occurs verbatim in training, spoken by other actors."""
    name = dialog.lower()
    if "_impro" in name:
        return "improvised"
    if "_script" in name:
        return "scripted"
    return "other"  # not an IEMOCAP dialog name; in neither subset


@dataclass(frozen=True)
class Windows:
    """Context windows of target turns, at fixed positions: ``current`` (= past turns) is the target."""

    rows: np.ndarray  # [B, past + 1 + future] manifest row of each position, -1 beyond the dialog's ends
    same_speaker: np.ndarray  # [B, W] bool: the turn's speaker is the target's (False where rows is -1)
    current: int

    @property
    def mask(self) -> np.ndarray:
        return self.rows >= 0


@dataclass(frozen=True)
class DialogTurns:
    """Per manifest row: where its turn sits in its dialog's time-ordered sequence."""

    order: np.ndarray  # manifest rows, dialog by dialog, each dialog in time order
    position: np.ndarray  # per row: its index in ``order``
    first: np.ndarray  # per row: index in ``order`` of its dialog's first turn
    last: np.ndarray  # per row: index in ``order`` of its dialog's last turn
    speaker: np.ndarray  # per row: speaker code (equal codes = same speaker)

    @classmethod
    def from_manifest(cls, manifest: pd.DataFrame) -> DialogTurns:
        """Needs the manifest columns ``dialog``, ``start``, ``end``, ``speaker`` and ``utterance_id``."""
        dialog = pd.factorize(manifest["dialog"])[0]
        keys = (
            manifest["utterance_id"].to_numpy(),
            manifest["end"].to_numpy(float),
            manifest["start"].to_numpy(float),
            dialog,
        )
        order = np.lexsort(keys)  # the last key sorts first: dialog, then start, end and id
        position = np.empty(len(order), dtype=np.int64)
        position[order] = np.arange(len(order))
        sorted_dialog = dialog[order]
        starts = np.flatnonzero(np.r_[True, sorted_dialog[1:] != sorted_dialog[:-1]])
        ends = np.r_[starts[1:], len(order)] - 1
        run = np.cumsum(np.r_[True, sorted_dialog[1:] != sorted_dialog[:-1]]) - 1  # dialog run per position
        first, last = np.empty_like(position), np.empty_like(position)
        first[order], last[order] = starts[run], ends[run]
        return cls(order, position, first, last, pd.factorize(manifest["speaker"])[0])

    def dialog_order(self, row: int) -> np.ndarray:
        """The rows of ``row``'s dialog in time order."""
        return self.order[self.first[row] : self.last[row] + 1]

    def windows(self, rows: np.ndarray, past: int, future: int) -> Windows:
        rows = np.asarray(rows, dtype=np.int64)
        at = self.position[rows][:, None] + np.arange(-past, future + 1)[None, :]
        inside = (at >= self.first[rows][:, None]) & (at <= self.last[rows][:, None])
        window = np.where(inside, self.order[np.clip(at, 0, len(self.order) - 1)], -1)
        same = inside & (self.speaker[np.maximum(window, 0)] == self.speaker[rows][:, None])
        return Windows(window, same, past)
