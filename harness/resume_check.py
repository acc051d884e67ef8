"""Checks, from the files alone and before Ray starts, that a run's saved state can be resumed, and the
copy of Ray Tune's state that repairs it when a full disk or a kill cut a file short.

A run killed while Ray Tune wrote its state, or a disk that filled at that moment, can leave a file cut
short. Ray would then fail deep inside ``Tuner.restore`` (an ``EOFError`` or ``UnpicklingError`` from its
controller) after it started. Each check here reads one kind of file and raises a one-line ``UserError``
naming the file and what to do; ``check_run_files`` runs them all. Add a check for a new kind of file as
one more function in ``CHECKS``.

Repair: while a run goes, ``snapshot_ray_state`` (called every few seconds by the run's wall clock) keeps
a copy of Ray Tune's state files in the run's books whenever every one of them is whole. A file Ray cut
short (Ray writes them in place, so a full disk leaves half a file) is then replaced by that copy before
Ray starts: the run resumes from Ray's previous snapshot, as after a kill (trials started after it run
again; finished trials keep their records). Without a whole copy the run is refused with one line.

Nothing is unpickled: a pickle is walked opcode by opcode (``pickletools``), which executes nothing.
(``search_gen_state-*.json`` is a pickle too, despite its name.) A run refused here can never resume, so
the Optuna trials it left RUNNING are marked FAIL: the study then says what happened to them.

Resume itself unpickles ``tuner.pkl`` and the searcher state (Ray Tune's design): whoever can write the
storage can run code in the next resume. Keep runs in storage that only trusted users can write.
"""

from __future__ import annotations

import json
import logging
import pickletools
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pyarrow.fs as pafs

from harness.errors import UserError
from harness.redact import mask_secrets
from harness.store import BOOKS, RunStore, read_bytes, write_bytes

log = logging.getLogger(__name__)
RESTART = "run with --name NEW, or delete {uri} to start again"
# Ray Tune's state at the top of a run's folder (what Tuner.restore reads), and where its copy is kept.
RAY_STATE_PREFIXES = ("tuner.pkl", "experiment_state-", "search_gen_state-", "searcher-state-", "basic-variant-state-")
SNAPSHOT = "ray_state"


def damaged(store: RunStore, name: str, what: str) -> UserError:
    uri = mask_secrets(store.uri)
    failed = fail_running_trials(store)
    note = f"; {failed} Optuna trial(s) it left running marked FAIL" if failed else ""
    return UserError(f"{uri}/{name}: {what}; the run cannot resume from it ({RESTART.format(uri=uri)}){note}")


def fail_running_trials(store: RunStore) -> int:
    """Mark FAIL the trials a run that cannot resume left RUNNING in its local study database (the run
    lock is held, so nothing else runs them); the number marked. A damaged database is left alone."""
    path = Path(store.path) / BOOKS / "optuna.db"
    if "://" in store.uri or not path.is_file():
        return 0
    try:
        with sqlite3.connect(path) as db:
            return db.execute("UPDATE trials SET state = 'FAIL' WHERE state = 'RUNNING'").rowcount
    except sqlite3.Error:
        return 0


# Ray Tune's state files that are pickles whatever their extension (search_gen_state-*.json and
# basic-variant-state-*.json are cloudpickles); the only JSON one is experiment_state-*.json.
PICKLED = ("tuner.pkl", "searcher-state-", "search_gen_state-", "basic-variant-state-")
JSON_STATE = "experiment_state-"


def is_pickled(name: str) -> bool:
    return name.endswith(".pkl") or name.startswith(PICKLED)


def problem(name: str, data: bytes) -> str | None:
    """Why the state file ``name`` holding ``data`` is not whole, or None."""
    if not data:
        return "empty (0 bytes)"
    if is_pickled(name):
        try:
            for _ in pickletools.genops(data):
                pass
        except Exception as err:  # ValueError "pickle exhausted before seeing STOP", or a garbled opcode
            return f"cut short or damaged ({len(data):,} bytes; {err})"
    elif name.endswith(".json"):
        try:
            json.loads(data)
        except ValueError:  # UnicodeDecodeError too
            return "not valid JSON (cut short?)"
    return None


def check_pickles(store: RunStore) -> None:
    """Ray Tune's ``tuner.pkl`` and the searchers' ``searcher-state-*.pkl``: whole pickles (a STOP at the end)."""
    for name in (f for f in store.files() if is_pickled(f)):
        reason = problem(name, read_bytes(store.fs, f"{store.path}/{name}"))
        if reason:
            raise damaged(store, name, reason)


def check_json(store: RunStore) -> None:
    """Ray Tune's ``experiment_state-*.json`` (its other ``.json`` files are pickles) and the run's books."""
    for name in (f for f in store.files() if f.startswith(JSON_STATE) and f.endswith(".json")):
        reason = problem(name, read_bytes(store.fs, f"{store.path}/{name}"))
        if reason:
            raise damaged(store, name, reason)
    for name in ("run.json", "search.json", "final_configs.json"):
        try:
            store.read(name)
        except UserError:
            raise damaged(store, f"{BOOKS}/{name}", "not valid JSON (cut short?)") from None


def check_optuna_db(store: RunStore) -> None:
    """The studies' SQLite database, on a local storage: SQLite's own quick check. Opened for writing, as
    Optuna will open it: a driver killed mid-commit leaves a hot journal that SQLite rolls back on that open
    (a read-only open cannot, and would call a recoverable database damaged)."""
    path = Path(store.path) / BOOKS / "optuna.db"
    if "://" in store.uri or not path.is_file():
        return
    try:
        db = sqlite3.connect(path, timeout=30)
        try:
            result = db.execute("PRAGMA quick_check").fetchone()
        finally:
            db.close()
    except sqlite3.DatabaseError as err:
        raise damaged(store, f"{BOOKS}/optuna.db", f"not a readable SQLite database ({err})") from None
    if not result or result[0] != "ok":
        raise damaged(store, f"{BOOKS}/optuna.db", f"SQLite reports it damaged ({result[0] if result else '?'})")


CHECKS: list[Callable[[RunStore], None]] = [check_json, check_pickles, check_optuna_db]


def check_run_files(store: RunStore) -> None:
    """Repair Ray Tune's state from its copy where a file was cut short, then every check in ``CHECKS``;
    the first damaged file is a one-line ``UserError``."""
    repair_ray_state(store)
    for check in CHECKS:
        check(store)


def _ray_state(store: RunStore) -> dict[str, bytes]:
    names = [f for f in store.files() if f.startswith(RAY_STATE_PREFIXES)]
    return {name: read_bytes(store.fs, f"{store.path}/{name}") for name in names}


def _snapshot_folder(store: RunStore) -> str:
    return f"{store.path}/{BOOKS}/{SNAPSHOT}"


def snapshot_ray_state(store: RunStore) -> bool:
    """Copy Ray Tune's state files into the run's books when every one is whole (Ray may be writing one:
    then nothing is copied this time). Returns whether a copy was made. A failed write (a full disk) leaves
    the previous copy: each file is replaced whole (``write_bytes``)."""
    state = _ray_state(store)
    if not state or any(problem(name, data) for name, data in state.items()):
        return False
    folder = _snapshot_folder(store)
    kept = {Path(p).name for p in _files(store.fs, folder)}
    for name, data in state.items():
        write_bytes(store.fs, f"{folder}/{name}", data)
    for name in kept - set(state):
        store.fs.delete_file(f"{folder}/{name}")
    return True


def repair_ray_state(store: RunStore) -> None:
    """Where a Ray state file is not whole and a whole copy exists, put the copy in place of the whole set."""
    state = _ray_state(store)
    bad = sorted(name for name, data in state.items() if problem(name, data))
    if not bad:
        return
    folder = _snapshot_folder(store)
    copy = {Path(p).name: read_bytes(store.fs, p) for p in _files(store.fs, folder)}
    if not copy or any(problem(name, data) for name, data in copy.items()):
        return  # nothing to repair from: the checks refuse the run, naming the file
    for name in set(state) - set(copy):
        store.fs.delete_file(f"{store.path}/{name}")
    for name, data in copy.items():
        write_bytes(store.fs, f"{store.path}/{name}", data)
    log.warning(
        "%s/%s was cut short (a full disk or a kill while Ray wrote it): Ray Tune's state restored from its last "
        "whole copy (%s/%s); trials started after that copy run again, finished trials keep their records",
        store.uri,
        bad[0],
        BOOKS,
        SNAPSHOT,
    )


def _files(fs: pafs.FileSystem, folder: str) -> list[str]:
    """The copied state files in ``folder`` (not a temporary file a failed write left)."""
    if fs.get_file_info(folder).type != pafs.FileType.Directory:
        return []
    infos = [i for i in fs.get_file_info(pafs.FileSelector(folder)) if i.type == pafs.FileType.File]
    return [i.path for i in infos if i.base_name.startswith(RAY_STATE_PREFIXES) and i.extension in ("pkl", "json")]
