"""Where runs live: Ray Tune's storage (``--storage``, a local path or a URI such as ``s3://bucket/runs``),
read and written through pyarrow filesystems, so a cluster needs no shared mount and the report reads
from the same place the trials wrote to.

One run is one Ray Tune experiment folder::

    STORAGE/<run>/harness/run.json            what the run is (checked when the run is started again)
    STORAGE/<run>/harness/search.json         its summary: wall time (kept across resumes), trial counts
    STORAGE/<run>/harness/final_configs.json  final stage: the configs re-trained and the search budget
    STORAGE/<run>/<trial>/checkpoint_N/       written by the trial after each fold (Ray persists it):
        record.json                           the TrialRecord so far
        predictions.parquet                   final stage: per-utterance predictions of the folds done
        explanations.parquet                  final stage: per-utterance explanation figures of the folds done
    STORAGE/<run>/<trial>/record.json         the record as the trial ended (written by the driver)

Ray owns everything but ``harness/`` and ``record.json``; this module neither imports Ray nor torch.
"""

from __future__ import annotations

import io
import json
import logging
import os
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs

from harness.errors import UserError
from harness.records import TrialRecord, record_from_dict

log = logging.getLogger(__name__)
BOOKS = "harness"
RECORD = "record.json"
PREDICTIONS = "predictions.parquet"
EXPLANATIONS = "explanations.parquet"  # final stage: per-utterance explanation rows (harness.train.explain)
CHECKPOINT_PREFIX = "checkpoint_"


def filesystem(uri: str | Path) -> tuple[pafs.FileSystem, str]:
    """A pyarrow filesystem and the path inside it: a URI (``s3://``, ``gs://``, ``file://``) or a local path."""
    text = str(uri)
    if "://" in text:
        return pafs.FileSystem.from_uri(text)
    return pafs.LocalFileSystem(), os.path.abspath(text)


def storage_uri(uri: str | Path) -> str:
    """What Ray's ``storage_path`` is given: a URI as is, a local path made absolute."""
    text = str(uri)
    return text if "://" in text else os.path.abspath(text)


def _exists(fs: pafs.FileSystem, path: str) -> bool:
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def _children(fs: pafs.FileSystem, path: str, kind: pafs.FileType) -> list[str]:
    if fs.get_file_info(path).type != pafs.FileType.Directory:
        return []
    return sorted(info.path for info in fs.get_file_info(pafs.FileSelector(path)) if info.type == kind)


def read_bytes(fs: pafs.FileSystem, path: str) -> bytes:
    with fs.open_input_stream(path) as stream:
        return stream.readall()


def write_bytes(fs: pafs.FileSystem, path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` whole: a temporary file moved onto it (a rename on local disks; object
    stores write an object whole anyway)."""
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    tmp = f"{path}.tmp{uuid.uuid4().hex}"  # unique per write: two threads of one process may write one file
    with fs.open_output_stream(tmp) as stream:
        stream.write(data)
    fs.move(tmp, path)


def read_json(fs: pafs.FileSystem, path: str) -> Any:
    try:
        return json.loads(read_bytes(fs, path))
    except ValueError as err:  # UnicodeDecodeError too
        raise UserError(f"{path}: not valid JSON ({err})") from None


def write_json(fs: pafs.FileSystem, path: str, payload: Any) -> None:
    write_bytes(fs, path, json.dumps(payload, indent=1, default=str).encode())


def latest_checkpoint(fs: pafs.FileSystem, trial_path: str) -> str | None:
    names = [p for p in _children(fs, trial_path, pafs.FileType.Directory) if _name(p).startswith(CHECKPOINT_PREFIX)]
    return max(names, key=_name) if names else None


def _name(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def trial_record(fs: pafs.FileSystem, trial_path: str) -> TrialRecord | None:
    """A trial's record: as it ended (driver) if written, else as of its last finished fold, else None.
    A checkpoint with more folds than the driver's record wins: the trial ran on after the driver wrote it
    (a run killed before Ray saved the trial's end, then resumed)."""
    ended = f"{trial_path}/{RECORD}"
    driver = record_from_dict(read_json(fs, ended), ended) if _exists(fs, ended) else None
    checkpoint = latest_checkpoint(fs, trial_path)
    latest = None
    if checkpoint and _exists(fs, f"{checkpoint}/{RECORD}"):
        latest = record_from_dict(read_json(fs, f"{checkpoint}/{RECORD}"), f"{checkpoint}/{RECORD}")
    if driver is None or (latest is not None and len(latest.folds) > len(driver.folds)):
        return latest
    return driver


def trial_predictions(fs: pafs.FileSystem, trial_path: str, name: str = PREDICTIONS) -> pd.DataFrame | None:
    """A table (``PREDICTIONS`` or ``EXPLANATIONS``) of a trial's latest checkpoint, or None."""
    checkpoint = latest_checkpoint(fs, trial_path)
    if checkpoint is None or not _exists(fs, f"{checkpoint}/{name}"):
        return None
    path = f"{checkpoint}/{name}"
    try:
        return pd.read_parquet(io.BytesIO(read_bytes(fs, path)))
    except (ValueError, pa.ArrowException) as err:
        raise UserError(f"{path}: not a readable predictions table ({str(err).splitlines()[0]})") from None


class RunStore:
    """One run's folder in the storage."""

    def __init__(self, fs: pafs.FileSystem, path: str, uri: str, storage: str):
        self.fs, self.path, self.uri, self.storage = fs, path, uri, storage  # storage: the root's URI

    @property
    def name(self) -> str:
        return _name(self.path)

    def __repr__(self) -> str:
        return self.uri

    def read(self, name: str) -> Any:
        """A file of the run's books (``run.json`` ...), or None when it is not there."""
        path = f"{self.path}/{BOOKS}/{name}"
        return read_json(self.fs, path) if _exists(self.fs, path) else None

    def write(self, name: str, payload: Any) -> None:
        write_json(self.fs, f"{self.path}/{BOOKS}/{name}", payload)

    def files(self) -> list[str]:
        """Names of the files at the top of the run's folder (Ray Tune's experiment state lives there)."""
        return [_name(p) for p in _children(self.fs, self.path, pafs.FileType.File)]

    def trial_paths(self) -> list[str]:
        return [p for p in _children(self.fs, self.path, pafs.FileType.Directory) if _name(p) != BOOKS]

    def trials(self) -> list[tuple[str, TrialRecord]]:
        """Each trial's folder and record, in trial-id order (a trial that never finished a fold has none)."""
        found = [(p, trial_record(self.fs, p)) for p in self.trial_paths()]
        return sorted(((p, r) for p, r in found if r is not None), key=lambda item: item[1].trial_id)

    def records(self) -> list[TrialRecord]:
        return [r for _, r in self.trials()]

    def drop_trials_except(self, folders: frozenset[str]) -> list[str]:
        """Delete the trial folders not named in ``folders`` (the experiment's trials as Ray knows them) and
        return their names. A run killed hard leaves the folders of trials started after Ray's last
        snapshot of the experiment; the restored run never knew them and sampled their slots again, so
        their records would count as extra trials of the run."""
        dropped = [p for p in self.trial_paths() if _name(p) not in folders]
        for path in dropped:
            self.fs.delete_dir(path)
        return [_name(p) for p in dropped]

    def predictions(self, trials: list[tuple[str, TrialRecord]] | None = None) -> pd.DataFrame | None:
        """Per-utterance predictions of the run's final-stage trials that ran every fold, or None (a trial
        that failed or was interrupted part-way would pool, and pair, fewer folds than the others).
        ``trials``: ``self.trials()`` when the caller has read them already."""
        complete = [p for p, r in (self.trials() if trials is None else trials) if r.complete]
        parts = []
        for path in complete:
            predictions = trial_predictions(self.fs, path)
            if predictions is None:
                log.warning(
                    "%s: a complete final-stage trial without its %s; its seed is left out of the pooled "
                    "and paired figures",
                    path,
                    PREDICTIONS,
                )
                continue
            parts.append(predictions)
        return pd.concat(parts, ignore_index=True) if parts else None

    def explanations(self, trials: list[tuple[str, TrialRecord]] | None = None) -> pd.DataFrame | None:
        """Per-utterance explanation rows of the run's complete final-stage trials, or None."""
        complete = [p for p, r in (self.trials() if trials is None else trials) if r.complete]
        parts = [t for p in complete if (t := trial_predictions(self.fs, p, EXPLANATIONS)) is not None]
        return pd.concat(parts, ignore_index=True) if parts else None


class Storage:
    """The ``--storage`` root: a local folder or a URI."""

    def __init__(self, uri: str | Path):
        self.uri = storage_uri(uri)
        self.fs, self.path = filesystem(self.uri)

    def run(self, name: str) -> RunStore:
        if "://" in self.uri:  # the name joins the URI's path, before any query (s3://b/runs?region=x)
            parts = urlsplit(self.uri)
            uri = urlunsplit(parts._replace(path=f"{parts.path.rstrip('/')}/{name}"))
        else:
            uri = f"{self.uri.rstrip('/')}/{name}"
        return RunStore(self.fs, f"{self.path.rstrip('/')}/{name}", uri, self.uri)

    def runs(self) -> list[RunStore]:
        """Runs of this harness in the storage: folders with the run's books."""
        runs = [self.run(_name(p)) for p in _children(self.fs, self.path, pafs.FileType.Directory)]
        return [r for r in runs if _exists(self.fs, f"{r.path}/{BOOKS}/run.json")]
