"""Where a run's Optuna studies live, so that Optuna's own tools open them (``optuna.load_study``,
``optuna-dashboard``, ``study.trials_dataframe()``, importance).

- ``--optuna-storage URL``: an RDB server (PostgreSQL, MySQL) on a cluster.
- A local storage: SQLite in the run's books, ``<run>/harness/optuna.db``.
- A URI storage (``s3://``, ``gs://``; no file locking there): a journal in the run's books,
  ``<run>/harness/optuna.journal``, read and written whole through pyarrow by the Tune driver alone (the
  run lock keeps a second driver out), opened with ``JournalStorage(JournalFileBackend(...))`` once copied.

One study per selection unit: the run's name, or ``<run>-outer<k>`` for outer fold k of a nested search.
Only the Tune driver touches them; trials never do.

A run folder can be moved or copied. Ray Tune pickles the searchers, and with them the study's storage,
into ``tuner.pkl`` and ``searcher-state-*.pkl``; pickled as it is, an SQLite storage would keep the absolute
path of the folder it was made in (after ``mv`` resume fails; after ``cp -r`` the copy writes into the
original's database), and an RDB storage would keep the ``--optuna-storage`` URL with its password. So a
storage made here pickles as a reference to "the run being resumed" (``bind_run``, called by the driver
before Ray restores anything) and is reopened there, from the current ``--storage`` and run name.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optuna
import pyarrow.fs as pafs
from optuna.storages.journal import BaseJournalBackend

from harness.errors import UserError
from harness.store import BOOKS, Storage, read_bytes, write_bytes

OPTUNA_DB, OPTUNA_JOURNAL = "optuna.db", "optuna.journal"


def study_name(run: str, unit: int | None) -> str:
    return run if unit is None else f"{run}-outer{unit}"


class StoredJournal(BaseJournalBackend):
    """An Optuna journal backend kept as one object in a pyarrow filesystem."""

    def __init__(self, uri: str):
        self.uri = uri
        self._logs: list[dict[str, Any]] = []
        fs, path = Storage(uri).fs, Storage(uri).path
        if fs.get_file_info(path).type != pafs.FileType.NotFound:
            self._logs = [json.loads(line) for line in read_bytes(fs, path).decode().splitlines() if line]

    def read_logs(self, log_number_from: int) -> list[dict[str, Any]]:
        return self._logs[log_number_from:]

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        self._logs.extend(logs)
        storage = Storage(self.uri)
        write_bytes(storage.fs, storage.path, "".join(json.dumps(log) + "\n" for log in self._logs).encode())


class RunRDBStorage(optuna.storages.RDBStorage):
    """An RDB (or SQLite) study storage that pickles as "the bound run's storage" (module docstring)."""

    def __reduce__(self) -> tuple[Any, tuple]:
        return _reopen, ()


class RunJournalStorage(optuna.storages.JournalStorage):
    """A journal study storage (URI runs) that pickles as "the bound run's storage"."""

    def __reduce__(self) -> tuple[Any, tuple]:
        return _reopen, ()


_bound: dict[str, tuple[str, str, str | None]] = {}  # "run": (storage, run, url) of the run this driver runs


def bind_run(storage: str, run: str, url: str | None = None) -> None:
    """The run whose studies a pickled storage reopens as (its current place and ``--optuna-storage``)."""
    _bound["run"] = (storage, run, url)


def bound_run() -> tuple[str, str, str | None] | None:
    """(storage, run, url) of the run this driver runs, once ``bind_run`` was called."""
    return _bound.get("run")


def _reopen() -> Any:
    if "run" not in _bound:
        raise UserError("an Optuna storage of a harness run was unpickled outside a harness search")
    return optuna_storage(*_bound["run"])


def optuna_storage(storage: str, run: str, url: str | None = None) -> Any:
    """The Optuna storage of run ``run`` in Ray Tune's ``storage`` (see the module docstring)."""
    bind_run(storage, run, url)
    if url:
        return RunRDBStorage(url)
    books = f"{Storage(storage).run(run).uri.rstrip('/')}/{BOOKS}"
    if _is_local(books):
        path = Path(Storage(books).path) / OPTUNA_DB
        path.parent.mkdir(parents=True, exist_ok=True)
        return RunRDBStorage(f"sqlite:///{path}")
    return RunJournalStorage(StoredJournal(f"{books}/{OPTUNA_JOURNAL}"))


def _is_local(uri: str) -> bool:
    return isinstance(Storage(uri).fs, pafs.LocalFileSystem)
