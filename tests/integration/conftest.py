"""Integration tests start and stop only their own Ray instances: each search subprocess gets its own
Ray temp dir (RAY_TMPDIR), and anything left behind by a killed search is ended by that path alone.
Never stop Ray machine-wide (the CLI's stop command kills every instance, not just ours)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil
import pytest


@pytest.fixture
def ray_tmp():
    # Short: Ray's unix sockets live under it and must stay within the 107-character path limit.
    folder = tempfile.mkdtemp(prefix="hr", dir="/tmp")
    yield folder
    end_processes_under(folder)
    shutil.rmtree(folder, ignore_errors=True)


def end_processes_under(folder: str) -> None:
    """Kill the processes (raylet, GCS, workers) of the Ray instance whose temp dir is ``folder``."""
    mine = []
    for process in psutil.process_iter(["cmdline", "environ"]):
        try:
            cmdline = " ".join(process.info["cmdline"] or [])
            environ = process.info["environ"] or {}
        except (psutil.Error, TypeError):
            continue
        if folder in cmdline or environ.get("RAY_TMPDIR") == folder:
            mine.append(process)
    for process in mine:
        try:
            process.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(mine, timeout=10)


@pytest.fixture
def env(tmp_path_factory, ray_tmp):
    return os.environ | {
        "HARNESS_CACHE": str(tmp_path_factory.getbasetemp() / "cache"),
        "PYTHONUNBUFFERED": "1",
        "RAY_TMPDIR": ray_tmp,
    }


def harness(command: str, *args: str, env: dict, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", f"harness.{command}", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        cwd=Path(__file__).parents[2],
    )
