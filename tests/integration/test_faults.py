"""Fault injection with Ray (issue 30): the storage disk fills while a search runs. The command ends with
one line naming the disk and saying how to resume; after space is freed the same command resumes, keeping
the trial that had finished (Ray's state, if the full disk cut it short, is restored from the
harness's last whole copy). The disk is a real size-limited tmpfs (needs root to mount; skipped
otherwise). Kill, SIGINT, SIGTERM, a lost worker and the run lock are covered where they were built:
tests/integration/test_search_cli.py, test_worker_loss.py and test_lock.py."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.store import RECORD, Storage
from tests.integration.conftest import end_processes_under

pytestmark = [pytest.mark.slow, pytest.mark.heavy]


@pytest.fixture
def small_disk(tmp_path: Path):  # noqa: ANN201
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8M", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a size-limited tmpfs here (needs root)")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def _fill(folder: Path) -> Path:
    ballast = folder / "ballast"
    with ballast.open("wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    return ballast


@pytest.mark.timeout(1800)
def test_full_storage_disk_mid_run_is_one_line_and_the_same_command_resumes(small_disk, tmp_path, env, ray_tmp):
    storage = small_disk / "ray"
    command = [sys.executable, "-m", "harness.search", "--pair", "bilstm", "--smoke-test", "--max-concurrent", "1"]
    # trials long enough (60 epochs, no early stop, rungs in folds) that the second still trains when the
    # harness's copy of Ray's state holds the first as finished
    command += ["--fidelity", "folds", "--set", "epochs=60", "--set", "patience=60"]
    command += ["--results", str(tmp_path / "results"), "--storage", str(storage)]
    cwd = Path(__file__).parents[2]
    search = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run = Storage(storage).run("bilstm_demo_smoke")
    copy = Path(run.path) / "harness" / "ray_state"
    started = time.time()
    # Fill the disk once a trial has ended and the harness's copy of Ray's state holds it as finished (the
    # copy is taken every 10 s by harness.resume_check.snapshot_ray_state; what it holds is what is kept).
    while not (
        list(Path(run.path).glob(f"run_trial_*/{RECORD}"))
        and any("TERMINATED" in p.read_text() for p in copy.glob("experiment_state-*.json"))
    ):
        assert search.poll() is None, "the search ended before the disk could be filled"
        assert time.time() - started < 900
        time.sleep(0.2)
    ended = {p.parent.name: p.read_text() for p in Path(run.path).glob(f"run_trial_*/{RECORD}")}
    ballast = _fill(small_disk)
    _, stderr = search.communicate(timeout=900)
    end_processes_under(ray_tmp)
    assert search.returncode == 2, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-5000:]
    last = stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {small_disk}") and ": disk full while " in last, last
    assert "nothing finished was lost" in last and "run the same command again to resume" in last

    ballast.unlink()  # space freed: the same command resumes
    again = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "done: 2 trials" in again.stdout
    records = {Path(path).name: record for path, record in run.trials()}
    assert len(records) == 2 and all(r.status in ("finished", "stopped_early") for r in records.values())
    for folder, before in ended.items():  # the trial that ended before the disk filled is kept as it was
        assert records[folder].to_dict()["folds"] == json.loads(before)["folds"]
