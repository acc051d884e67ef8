"""Checks, from the files alone and before Ray starts, that a run's saved state can be resumed.

A run killed while Ray Tune wrote its state, or a disk that filled at that moment, can leave a file cut
short. Ray would then fail deep inside ``Tuner.restore`` (an ``EOFError`` or ``UnpicklingError`` from its
controller) after it started. Each check here reads one kind of file and raises a one-line ``UserError``
naming the file and what to do; ``check_run_files`` runs them all. Add a check for a new kind of file as
one more function in ``CHECKS``.

Nothing is unpickled: a pickle is walked opcode by opcode (``pickletools``), which executes nothing.
"""

from __future__ import annotations

import pickletools
import sqlite3
from collections.abc import Callable
from pathlib import Path

from harness.errors import UserError
from harness.store import BOOKS, RunStore, read_bytes, read_json

RESTART = "run with --name NEW, or delete {uri} to start again"


def damaged(store: RunStore, name: str, what: str) -> UserError:
    return UserError(f"{store.uri}/{name}: {what}; the run cannot resume from it ({RESTART.format(uri=store.uri)})")


def check_pickles(store: RunStore) -> None:
    """Ray Tune's ``tuner.pkl`` and the searchers' ``searcher-state-*.pkl``: whole pickles (a STOP at the end)."""
    for name in (f for f in store.files() if f.endswith(".pkl")):
        data = read_bytes(store.fs, f"{store.path}/{name}")
        if not data:
            raise damaged(store, name, "empty (0 bytes)")
        try:
            for _ in pickletools.genops(data):
                pass
        except Exception as err:  # ValueError "pickle exhausted before seeing STOP", or a garbled opcode
            raise damaged(store, name, f"cut short or damaged ({len(data):,} bytes; {err})") from None


def check_json(store: RunStore) -> None:
    """Ray Tune's ``experiment_state-*.json`` and the run's own books (``harness/*.json``)."""
    for name in (f for f in store.files() if f.startswith("experiment_state-") and f.endswith(".json")):
        try:
            read_json(store.fs, f"{store.path}/{name}")
        except UserError:
            raise damaged(store, name, "not valid JSON (cut short?)") from None
    for name in ("run.json", "search.json", "final_configs.json"):
        try:
            store.read(name)
        except UserError:
            raise damaged(store, f"{BOOKS}/{name}", "not valid JSON (cut short?)") from None


def check_optuna_db(store: RunStore) -> None:
    """The studies' SQLite database, on a local storage: SQLite's own quick check, read-only."""
    path = Path(store.path) / BOOKS / "optuna.db"
    if "://" in store.uri or not path.is_file():
        return
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
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
    """Every check in ``CHECKS``; the first damaged file is a one-line ``UserError``."""
    for check in CHECKS:
        check(store)
