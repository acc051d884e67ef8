"""A run in use is refused: a search or benchmark holds a lock on each of its runs for as long as it runs.

Two commands writing one run would interleave two Ray experiments in one folder (two experiment states,
trials trained twice, records overwritten), and the rerun check (``run.json``) cannot catch it: the
second command reads the books before the first has written them. So the lock is taken before the books
are read, and a second command is refused with one line naming the holder (exit 2, before Ray starts).

* A local storage (a path or ``file://``): an OS file lock (``filelock``) on ``<run>/harness/run.lock``,
  with the holder (host, pid, since when, command) in ``run.lock.json`` beside it. The OS releases the
  lock when its process ends, however it ends, so a killed holder never blocks the run; taking over a
  lock whose holder's process is gone says so.
* A URI storage (``s3://``, ``gs://``...), where there is no lock to take: a lease object
  ``<run>/harness/lease.json`` with host, pid, since when and a heartbeat that a thread refreshes every
  ``HEARTBEAT_S``. A lease is stale, and taken over with a warning, when its heartbeat is older than
  ``STALE_S`` or its process is gone on this host. Object stores have no compare-and-swap in pyarrow, so
  two commands starting within the same second are told apart by writing, waiting and reading back:
  the one whose lease is not there is refused.

``report`` only reads runs and takes no lock.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import socket
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

import psutil
import pyarrow.fs as pafs
from filelock import FileLock, Timeout

from harness.errors import UserError
from harness.redact import mask_argv, mask_secrets
from harness.store import BOOKS, RunStore, read_bytes, write_json

log = logging.getLogger(__name__)
LOCK, HOLDER, LEASE = "run.lock", "run.lock.json", "lease.json"
HEARTBEAT_S = 30.0
STALE_S = 180.0  # six missed heartbeats
SETTLE_S = 1.0  # a lease is read back after this long: a concurrent writer's lease has landed by then


class RunInUse(UserError):
    """Another command holds the run."""


@dataclass(frozen=True)
class Holder:
    """Who holds a run, for the refusal line and for deciding whether its lock is stale."""

    host: str
    pid: int
    started_at: float  # time.time()
    command: str
    token: str = ""  # a lease's identity (pids repeat across hosts)
    heartbeat: float = 0.0  # leases only

    @staticmethod
    def me() -> Holder:
        command = mask_argv(sys.argv) or "python"  # a password in a URL never reaches the lock file
        return Holder(socket.gethostname(), os.getpid(), time.time(), command, uuid.uuid4().hex)

    def describe(self) -> str:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started_at))
        return f"pid {self.pid} on {self.host} since {since} ({mask_secrets(self.command)})"

    def process_gone(self) -> bool:
        """The holder ran on this host and its process is gone (a pid reused since is not told apart)."""
        return self.host == socket.gethostname() and not psutil.pid_exists(self.pid)

    @staticmethod
    def parse(data: bytes) -> Holder | None:
        try:
            fields = json.loads(data)
            return Holder(**{k: fields[k] for k in Holder.__dataclass_fields__ if k in fields})
        except (ValueError, TypeError, KeyError):
            return None  # half-written or foreign: treated as no holder


class RunLock:
    """The lock of one run; ``acquire`` raises ``RunInUse`` naming the holder, ``release`` lets go."""

    def __init__(self, store: RunStore):
        self.store = store
        self.books = f"{store.path}/{BOOKS}"
        self.me = Holder.me()
        self.local = isinstance(store.fs, pafs.LocalFileSystem)
        self._file_lock: FileLock | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- shared ----------------------------------------------------------------------------------------
    def acquire(self) -> RunLock:
        self.store.fs.create_dir(self.books, recursive=True)
        if self.local:
            self._acquire_file()
        else:
            self._acquire_lease()
        return self

    def release(self) -> None:
        if self._file_lock is not None:
            _delete(self.store.fs, f"{self.books}/{HOLDER}")
            self._file_lock.release()
            self._file_lock = None
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
            current = self._read(LEASE)
            if current is not None and current.token == self.me.token:
                _delete(self.store.fs, f"{self.books}/{LEASE}")

    def _read(self, name: str) -> Holder | None:
        try:
            return Holder.parse(read_bytes(self.store.fs, f"{self.books}/{name}"))
        except (FileNotFoundError, OSError):
            return None

    def _refuse(self, holder: Holder | None) -> RunInUse:
        who = holder.describe() if holder else "another command (its holder file is not readable)"
        return RunInUse(
            f"{mask_secrets(self.store.uri)}: in use by {who}; wait for it to finish, or run with --name NEW "
            "for another run"
        )

    # -- local: an OS file lock ------------------------------------------------------------------------
    def _acquire_file(self) -> None:
        lock = FileLock(f"{self.books}/{LOCK}", timeout=0)
        try:
            lock.acquire()
        except Timeout:
            raise self._refuse(self._read(HOLDER)) from None
        previous = self._read(HOLDER)
        if previous is not None:  # the OS released its lock: its process ended without letting go
            log.warning(
                "%s: taking over the lock of %s, which ended without releasing it%s",
                self.store.uri,
                previous.describe(),
                "" if previous.process_gone() else " (its process is not on this host, or its pid was reused)",
            )
        write_json(self.store.fs, f"{self.books}/{HOLDER}", asdict(self.me))
        self._file_lock = lock

    # -- URI storage: a lease with a heartbeat ---------------------------------------------------------
    def _acquire_lease(self) -> None:
        current = self._read(LEASE)
        if current is not None and current.token != self.me.token:
            age = time.time() - current.heartbeat
            if current.process_gone() or age > STALE_S:
                why = "its process is gone" if current.process_gone() else f"no heartbeat for {age:.0f} s"
                log.warning("%s: taking over the stale lease of %s (%s)", self.store.uri, current.describe(), why)
            else:
                raise self._refuse(current)
        self._write_lease()
        time.sleep(SETTLE_S)
        landed = self._read(LEASE)
        if landed is None or landed.token != self.me.token:
            raise self._refuse(landed)
        self._thread = threading.Thread(target=self._beat, name=f"lease {self.store.name}", daemon=True)
        self._thread.start()

    def _write_lease(self) -> None:
        write_json(self.store.fs, f"{self.books}/{LEASE}", asdict(self.me) | {"heartbeat": time.time()})

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            current = self._read(LEASE)
            if current is not None and current.token != self.me.token:
                log.warning("%s: the lease was taken over by %s", self.store.uri, current.describe())
                return
            try:
                self._write_lease()
            except OSError as err:  # a storage hiccup: the next beat tries again
                log.warning("%s: could not refresh the lease (%s)", self.store.uri, str(err).splitlines()[0])


def _delete(fs: pafs.FileSystem, path: str) -> None:
    try:
        fs.delete_file(path)
    except (FileNotFoundError, OSError):
        pass


_held: dict[str, RunLock] = {}


def hold_run(store: RunStore) -> RunLock:
    """Lock ``store``'s run for the rest of this process (released at exit, or by ``release_runs``); a
    second call for a run this process holds is a no-op. Raises ``RunInUse`` (a ``UserError``)."""
    if store.uri not in _held:
        try:
            _held[store.uri] = RunLock(store).acquire()
        except RunInUse:
            raise
        except OSError as err:
            raise UserError(f"{mask_secrets(store.uri)}: cannot lock the run ({str(err).splitlines()[0]})") from None
    return _held[store.uri]


def release_runs() -> None:
    """Let go of every run this process holds."""
    while _held:
        _, lock = _held.popitem()
        try:
            lock.release()
        except OSError as err:
            log.warning("%s: could not release the run's lock (%s)", lock.store.uri, str(err).splitlines()[0])


atexit.register(release_runs)


def holder_of(store: RunStore) -> dict[str, Any] | None:
    """Who holds ``store``'s run now, as stored (``None`` when nobody); for messages and tests."""
    lock = RunLock(store)
    holder = lock._read(HOLDER if lock.local else LEASE)
    return asdict(holder) if holder else None
