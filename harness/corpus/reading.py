"""What every corpus reader does the same way: a wav's header, checked, and the per-group label table.

The readers (IEMOCAP, a manifest, CREMA-D, MSP-Podcast) differ in where their labels and wavs are; these
steps are shared so that a wav is judged, and a ``Corpus.label_counts`` table laid out, alike for all of them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import soundfile


def wav_header(wav: Path | str) -> Any:
    """The wav's header (soundfile reads only that: a reader runs on 10,000 wavs), or why the wav cannot be
    used, as a string: ``"unreadable wav (ERROR)"`` (missing, or a corrupt header) or ``"empty wav"``."""
    try:
        info = soundfile.info(str(wav))
    except (soundfile.SoundFileError, RuntimeError, OSError) as err:  # LibsndfileError on corrupt headers
        return f"unreadable wav ({err})"
    return info if info.frames else "empty wav"


def label_table(
    counts: Mapping[int, Counter[str]], first: Sequence[str], labels: Iterable[str] | None = None
) -> pd.DataFrame:
    """Label counts per group (rows, named ``session``): the ``first`` labels in their order, then the others
    sorted; ``labels`` (default: those counted) may add labels seen but never kept (a zero column)."""
    seen = set(labels) if labels is not None else {label for c in counts.values() for label in c}
    columns = [label for label in first if label in seen] + sorted(seen - set(first))
    return pd.DataFrame(
        [[counts[g].get(label, 0) for label in columns] for g in counts],
        index=pd.Index(list(counts), name="session"),
        columns=columns,
    )
