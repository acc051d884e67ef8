"""Where a run's Optuna studies live, so that Optuna's own tools open them (``optuna.load_study``,
``optuna-dashboard``, ``study.trials_dataframe()``, importance).

- ``--optuna-storage URL``: an RDB server (PostgreSQL, MySQL) on a cluster.
- A local storage: SQLite in the run's books, ``<run>/harness/optuna.db``.
- A URI storage (``s3://``, ``gs://``; no file locking there): a journal in the run's books,
  ``<run>/harness/optuna.journal``, read and written whole through pyarrow by the Tune driver alone (the
  run lock keeps a second driver out), opened with ``JournalStorage(JournalFileBackend(...))`` once copied.

One study per selection unit: the run's name, or ``<run>-outer<k>`` for outer fold k of a nested search.
Only the Tune driver touches them; trials never do.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs
from optuna.storages.journal import BaseJournalBackend

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


def optuna_storage(storage: str, run: str, url: str | None = None) -> Any:
    """The Optuna storage of run ``run`` in Ray Tune's ``storage`` (see the module docstring)."""
    import optuna

    if url:
        return optuna.storages.RDBStorage(url)
    books = f"{Storage(storage).run(run).uri.rstrip('/')}/{BOOKS}"
    if _is_local(books):
        path = Path(Storage(books).path) / OPTUNA_DB
        path.parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.RDBStorage(f"sqlite:///{path}")
    return optuna.storages.JournalStorage(StoredJournal(f"{books}/{OPTUNA_JOURNAL}"))


def _is_local(uri: str) -> bool:
    return isinstance(Storage(uri).fs, pafs.LocalFileSystem)
