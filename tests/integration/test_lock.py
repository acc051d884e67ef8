"""Two identical searches started together: one runs, the other exits 2 before Ray, naming the holder;
after a SIGKILL of the holder the same command takes the run over and resumes it."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.conftest import end_processes_under

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def start(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    with log.open("w") as out:  # a file, not an unread pipe
        return subprocess.Popen(
            [sys.executable, "-m", "harness.search", *args], stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT
        )


def wait_for(condition, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.5)


@pytest.mark.timeout(900)
def test_a_run_in_use_is_refused_and_a_killed_holders_run_resumes(tmp_path, env):
    args = ["--pair", "bilstm", "--smoke-test", "--results", str(tmp_path / "results")]
    first = start(args, env, tmp_path / "first.log")
    second = start(args, env, tmp_path / "second.log")
    processes = {first: tmp_path / "first.log", second: tmp_path / "second.log"}
    try:
        wait_for(lambda: first.poll() is not None or second.poll() is not None, 300)
        refused = first if first.poll() is not None else second
        holder = second if refused is first else first
        text = processes[refused].read_text()
        assert refused.returncode == 2, text[-3000:]
        line = [x for x in text.splitlines() if x.startswith("error: ")]
        assert len(line) == 1 and f"in use by pid {holder.pid} on {socket.gethostname()} since " in line[0]
        assert "Started a local Ray instance" not in text and "== Status ==" not in text  # refused before Ray

        run = tmp_path / "results" / "ray" / "bilstm_demo_smoke"
        # killed once Ray has snapshotted the experiment (tuner.pkl and an experiment state), so it resumes
        wait_for(lambda: any(run.glob("experiment_state-*.json")) or holder.poll() is not None, 600)
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        end_processes_under(env["RAY_TMPDIR"])  # the killed holder's Ray instance

    again = subprocess.run(
        [sys.executable, "-m", "harness.search", *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=600
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"taking over the lock of pid {holder.pid}" in again.stderr
    assert "done: " in again.stdout
