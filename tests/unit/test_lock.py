"""A run in use is refused, naming its holder; a stale lock or lease is taken over with a warning."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pyarrow.fs as pafs
import pytest

from harness import lock
from harness.errors import UserError
from harness.store import RunStore, Storage

ROOT = Path(__file__).resolve().parents[2]


def local_store(tmp_path: Path) -> RunStore:
    return Storage(tmp_path / "storage").run("r")


def object_store(tmp_path: Path) -> RunStore:
    """A filesystem that is not pyarrow's LocalFileSystem (as s3:// is not): the lease path."""
    (tmp_path / "bucket").mkdir(exist_ok=True)
    fs = pafs.SubTreeFileSystem(str(tmp_path / "bucket"), pafs.LocalFileSystem())
    return RunStore(fs, "runs/r", "mock://bucket/runs/r", "mock://bucket/runs")


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def hold_in_subprocess(store_path: Path) -> subprocess.Popen:
    """Another process holding the local run ``store_path`` (prints "held" once it holds it)."""
    code = textwrap.dedent(
        f"""
        import time
        from harness.lock import hold_run
        from harness.store import Storage
        hold_run(Storage({str(store_path.parent)!r}).run({store_path.name!r}))
        print("held", flush=True)
        time.sleep(120)
        """
    )
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert process.stdout is not None and process.stdout.readline().strip() == "held"
    return process


def test_a_local_run_held_by_another_process_is_refused_naming_it_and_freed_when_it_is_killed(tmp_path, caplog):
    store = local_store(tmp_path)
    holder = hold_in_subprocess(tmp_path / "storage" / "r")
    try:
        with pytest.raises(lock.RunInUse) as refused:
            lock.RunLock(store).acquire()
        message = str(refused.value)
        assert f"pid {holder.pid} on {socket.gethostname()} since " in message and "\n" not in message
        assert isinstance(refused.value, UserError)  # the CLI's one line and exit 2
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    caplog.set_level(logging.WARNING, logger="harness.lock")
    mine = lock.RunLock(store).acquire()  # the OS released the killed holder's lock
    assert f"taking over the lock of pid {holder.pid}" in caplog.text
    assert lock.holder_of(store)["pid"] == os.getpid()
    mine.release()
    assert lock.holder_of(store) is None


def test_a_second_lock_in_one_process_is_refused_and_hold_run_is_idempotent(tmp_path):
    store = local_store(tmp_path)
    first = lock.hold_run(store)
    try:
        assert lock.hold_run(store) is first  # plan_pair twice for one run (tests call main repeatedly)
        with pytest.raises(lock.RunInUse, match=f"in use by pid {os.getpid()}"):
            lock.RunLock(store).acquire()
    finally:
        lock.release_runs()
    lock.RunLock(store).acquire().release()


@pytest.fixture
def quick_lease(monkeypatch):
    monkeypatch.setattr(lock, "SETTLE_S", 0.05)
    monkeypatch.setattr(lock, "HEARTBEAT_S", 0.1)


def write_lease(store: RunStore, **fields) -> None:
    lease = {"host": "node-7", "pid": 4242, "started_at": time.time() - 600, "command": "harness search"}
    lease |= {"token": "theirs", "heartbeat": time.time()} | fields
    store.fs.create_dir(f"{store.path}/harness", recursive=True)
    with store.fs.open_output_stream(f"{store.path}/harness/lease.json") as stream:
        stream.write(json.dumps(lease).encode())


def test_a_fresh_lease_refuses_a_stale_one_is_taken_over(tmp_path, quick_lease, caplog):
    store = object_store(tmp_path)
    write_lease(store)  # another host, heartbeat now
    with pytest.raises(lock.RunInUse, match="in use by pid 4242 on node-7 since"):
        lock.RunLock(store).acquire()
    caplog.set_level(logging.WARNING, logger="harness.lock")
    write_lease(store, heartbeat=time.time() - lock.STALE_S - 5)  # its holder stopped beating
    mine = lock.RunLock(store).acquire()
    assert "taking over the stale lease of pid 4242 on node-7" in caplog.text and "no heartbeat for" in caplog.text
    assert lock.holder_of(store)["token"] == mine.me.token
    mine.release()
    assert lock.holder_of(store) is None
    write_lease(store, host=socket.gethostname(), pid=dead_pid())  # fresh heartbeat, but its process is gone
    mine = lock.RunLock(store).acquire()
    assert "its process is gone" in caplog.text
    mine.release()


def test_a_lease_is_kept_alive_and_a_taken_over_lease_is_not_deleted(tmp_path, quick_lease):
    store = object_store(tmp_path)
    mine = lock.RunLock(store).acquire()
    first = lock.holder_of(store)["heartbeat"]
    time.sleep(0.5)
    assert lock.holder_of(store)["heartbeat"] > first  # the heartbeat thread refreshes it
    with pytest.raises(lock.RunInUse):
        lock.RunLock(store).acquire()
    mine._stop.set()  # our heartbeat stopped (a stalled process) ...
    mine._thread.join()
    write_lease(store)  # ... for long enough that another command took the run over
    mine.release()
    assert lock.holder_of(store)["token"] == "theirs"  # not ours to delete


def test_two_writers_of_one_lease_at_once_one_is_refused(tmp_path, quick_lease, monkeypatch):
    """Both read "no lease", both write; the one whose lease is overwritten is refused on reading back."""
    store = object_store(tmp_path)
    first, second = lock.RunLock(store), lock.RunLock(store)
    original = lock.RunLock._write_lease

    def racing_write(self):
        original(self)
        if self is first:
            original(second)  # the other command's write lands just after ours

    monkeypatch.setattr(lock.RunLock, "_write_lease", racing_write)
    with pytest.raises(lock.RunInUse, match=f"in use by pid {os.getpid()}"):
        first.acquire()
    monkeypatch.setattr(lock.RunLock, "_write_lease", original)
    second._acquire_lease()  # reads its own lease back
    second.release()
