"""On-disk feature cache: a plain store, one folder per (corpus fingerprint, FeatureSpec).

``FeatureCache.get(spec, manifest, compute)`` loads the stored features, or first stores what
``compute(manifest)`` yields (one value per manifest row, in order) under a file lock. How a feature is
computed is the caller's business (a front end, or a pretrained encoder's layer means).

Arrays are stored ragged: all rows concatenated in ``values.npy`` plus ``offsets.npy``, memory-mapped on
load, so every trial and fold on a node shares one copy through the page cache. Lists of words are
stored as JSON. A folder appears only complete (built in a temp folder, then renamed).

What building a folder cost is measured while it is built and stored with it (``spec.json``, key
``built``): wall seconds, CPU core-seconds, device-seconds and energy, by a ``Meter`` (the cache's own
measures wall and CPU time; ``harness.tune.prebuild`` passes one that also reads the GPU). Loading a
folder returns the record, so whoever uses a spec can be charged its full cost, whoever built it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
from filelock import FileLock
from tqdm.auto import tqdm

from harness.features.spec import FeatureSpec
from harness.paths import disk_full_error, is_disk_full

log = logging.getLogger(__name__)
CACHE_FORMAT = 2
Compute = Callable[[pd.DataFrame], Iterator[Any]]


class Meter(Protocol):
    """Measures one extraction: a context manager whose ``figures()`` after the block are stored in the cache."""

    def __enter__(self) -> Meter: ...

    def __exit__(self, *exc: object) -> None: ...

    def figures(self) -> dict[str, Any]:
        """``extract_seconds``, ``cpu_seconds``, ``device`` ("cpu"/"cuda"), ``device_seconds`` (GPU busy
        seconds, or CPU core-seconds on a CPU machine), ``energy_j`` and ``energy_basis`` (None: unknown)."""
        ...


class CpuMeter:
    """Wall time and this process's CPU core-seconds (all threads): what an extraction costs on a CPU."""

    def __init__(self, spec: FeatureSpec | None = None):
        self.wall_s = self.cpu_s = 0.0

    def __enter__(self) -> CpuMeter:
        self._wall, self._cpu = time.perf_counter(), _cpu_seconds()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall_s, self.cpu_s = time.perf_counter() - self._wall, _cpu_seconds() - self._cpu

    def figures(self) -> dict[str, Any]:
        return {
            "extract_seconds": round(self.wall_s, 3),
            "cpu_seconds": round(self.cpu_s, 3),
            "device": "cpu",
            "device_seconds": round(self.cpu_s, 3),
            "energy_j": None,
            "energy_basis": None,
        }


def _cpu_seconds() -> float:
    """This process's user + system CPU time, every thread included. ``time.process_time`` reads it at
    nanosecond resolution; psutil's ``cpu_times`` counts clock ticks (10 ms), so a short extraction read 0."""
    return time.process_time()


MeterFactory = Callable[[FeatureSpec], Meter]


@dataclass
class Features:
    """One feature per manifest row, in manifest order."""

    spec: FeatureSpec
    ids: list[str]
    values: np.ndarray | None = None
    offsets: np.ndarray | None = None
    tokens: list[list[str]] | None = None
    meta: dict[str, Any] = field(default_factory=dict)  # e.g. extraction seconds and audio seconds

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, row: int) -> Any:
        if self.tokens is not None:
            return self.tokens[row]
        assert self.values is not None and self.offsets is not None
        return self.values[self.offsets[row] : self.offsets[row + 1]]

    def lengths(self) -> np.ndarray:
        if self.tokens is not None:
            return np.array([len(t) for t in self.tokens])
        assert self.offsets is not None
        return np.diff(self.offsets)


def corpus_fingerprint(manifest: pd.DataFrame) -> str:
    """Hash of what features depend on: ids, texts and each wav's size and modification time.

    Hashing file identity rather than audio bytes keeps this instant on the full corpus (several GB);
    re-copying the corpus therefore recomputes features, which is safe.
    """
    digest = hashlib.sha1()
    for row in manifest[["utterance_id", "text", "wav_path"]].itertuples(index=False):
        stat = os.stat(row.wav_path)
        digest.update(f"{row.utterance_id}\t{row.text}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


class FeatureCache:
    def __init__(self, root: str | Path, meter: MeterFactory = CpuMeter):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.last_build_seconds = 0.0
        self.meter = meter

    def metered(self, meter: MeterFactory) -> FeatureCache:
        """The same store, measuring what it builds with ``meter``."""
        return FeatureCache(self.root, meter)

    def folder(self, spec: FeatureSpec, fingerprint: str) -> Path:
        key = json.dumps([CACHE_FORMAT, fingerprint, spec.describe()], sort_keys=True)
        return self.root / f"{spec.kind}-{hashlib.sha1(key.encode()).hexdigest()[:16]}"

    def has(self, spec: FeatureSpec, fingerprint: str) -> bool:
        return (self.folder(spec, fingerprint) / "ids.json").exists()

    def get(
        self,
        spec: FeatureSpec,
        manifest: pd.DataFrame,
        compute: Compute,
        fingerprint: str | None = None,
        progress: bool = True,
    ) -> Features:
        """Load the features for every manifest row, storing what ``compute(manifest)`` yields first if needed."""
        fingerprint = fingerprint or corpus_fingerprint(manifest)
        folder = self.folder(spec, fingerprint)
        self.last_build_seconds = 0.0
        if not (folder / "ids.json").exists():
            with FileLock(str(folder) + ".lock"):
                if not (folder / "ids.json").exists():  # another process may have built it meanwhile
                    started = time.perf_counter()
                    self._build(spec, manifest, compute, folder, progress)
                    self.last_build_seconds = time.perf_counter() - started
        features = self._load(spec, folder)
        if features.ids != manifest["utterance_id"].tolist():
            raise RuntimeError(f"{folder}: cached ids do not match the manifest; delete the folder to rebuild")
        return features

    def _build(self, spec: FeatureSpec, manifest: pd.DataFrame, compute: Compute, folder: Path, progress: bool) -> None:
        log.info("extracting %s features for %d utterances -> %s", spec.kind, len(manifest), folder)
        bar = tqdm(total=len(manifest), desc=f"features:{spec.kind}", disable=not progress, leave=False)
        rows: list[Any] = []
        # One-off costs (loading a model, librosa's JIT) are part of what the extraction cost: measured too.
        with self.meter(spec) as meter:
            for value in compute(manifest):
                rows.append(value)
                if len(rows) == 1:
                    # The first item pays the one-off costs: restart the bar's clock after it so that the rate
                    # and the ETA describe the steady state.
                    bar.reset()
                bar.update(1)
        bar.close()
        if len(rows) != len(manifest):
            raise RuntimeError(f"{spec.kind}: computed {len(rows)} features for {len(manifest)} utterances")
        figures = meter.figures()
        tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            self._write(spec, manifest, rows, figures, tmp)
        except OSError as err:
            shutil.rmtree(tmp, ignore_errors=True)  # a half-written folder is never read; free its space now
            if is_disk_full(err):  # one line (issue 30); complete folders stay, so a rerun extracts only the rest
                needed = sum(getattr(r, "nbytes", 0) for r in rows) or None
                raise disk_full_error(self.root, f"storing {spec.kind} features", needed) from None
            raise
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)

    @staticmethod
    def _write(spec: FeatureSpec, manifest: pd.DataFrame, rows: list[Any], figures: dict[str, Any], tmp: Path) -> None:
        seconds = figures["extract_seconds"]
        audio_seconds = float(manifest["duration"].sum()) if "duration" in manifest else None
        tmp.mkdir(parents=True)
        if rows and isinstance(rows[0], list):
            (tmp / "tokens.json").write_text(json.dumps(rows))
        else:
            offsets = np.zeros(len(rows) + 1, dtype=np.int64)
            offsets[1:] = np.cumsum([len(r) for r in rows])
            np.save(tmp / "values.npy", np.concatenate(rows, axis=0))
            np.save(tmp / "offsets.npy", offsets)
        meta = figures | {
            "audio_seconds": audio_seconds,
            "audio_seconds_per_second": round(audio_seconds / seconds, 2) if audio_seconds and seconds else None,
        }
        (tmp / "spec.json").write_text(json.dumps(spec.describe() | {"built": meta}, indent=1))
        # ids.json last: its presence marks a complete folder.
        (tmp / "ids.json").write_text(json.dumps(manifest["utterance_id"].tolist()))

    @staticmethod
    def _load(spec: FeatureSpec, folder: Path) -> Features:
        ids = json.loads((folder / "ids.json").read_text())
        meta = json.loads((folder / "spec.json").read_text()).get("built", {})
        if (folder / "tokens.json").exists():
            return Features(spec, ids, tokens=json.loads((folder / "tokens.json").read_text()), meta=meta)
        return Features(
            spec,
            ids,
            values=np.load(folder / "values.npy", mmap_mode="r"),
            offsets=np.load(folder / "offsets.npy"),
            meta=meta,
        )
