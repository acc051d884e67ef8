"""Runs that survive their own damage (issue 31): a cut-short searcher state or ``tuner.pkl``, and a run
folder copied to another storage under another name. One interrupted search is made once and copied for
each case, so the module runs three short searches in all."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from harness.store import Storage
from tests.integration.test_search_cli import wait_for_finished_trial

pytestmark = [pytest.mark.slow, pytest.mark.heavy]
RUN = "bilstm_demo_loso-flat"
SAMPLES = 3


def search_args(storage: Path, name: str | None = None) -> list[str]:
    args = [sys.executable, "-m", "harness.search", "--pair", "bilstm", "--num-samples", str(SAMPLES)]
    args += ["--max-concurrent", "1", "--folds", "5", "--protocol", "loso-flat", "--fidelity", "folds"]
    args += ["--set", "epochs=3", "--storage", str(storage), "--no-report"]
    return args + (["--name", name] if name else [])


def optuna_states(run: Path) -> dict[str, int]:
    with sqlite3.connect(run / "harness" / "optuna.db") as db:
        return dict(db.execute("SELECT state, COUNT(*) FROM trials GROUP BY state").fetchall())


def trial_folders(run: Path) -> set[str]:
    return {p.name for p in run.iterdir() if p.is_dir() and p.name.startswith("run_trial")}


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory) -> Path:
    """A search stopped by Ctrl-C after its first trial finished: STORAGE/RUN with 1 of 3 trials done."""
    from tests.integration.conftest import end_processes_under

    root = tmp_path_factory.mktemp("damage")
    ray_tmp = tempfile.mkdtemp(prefix="hr", dir="/tmp")  # short: Ray's unix sockets must fit in 107 characters
    cache = str(tmp_path_factory.getbasetemp() / "cache")  # the `env` fixture's: resumed runs read the same corpus
    env = os.environ | {"HARNESS_CACHE": cache, "PYTHONUNBUFFERED": "1", "RAY_TMPDIR": ray_tmp}
    storage = root / "original"
    with open(root / "out", "w") as out, open(root / "err", "w") as err:
        process = subprocess.Popen(search_args(storage), env=env, stdout=out, stderr=err, start_new_session=True)
        wait_for_finished_trial(Storage(storage).run(RUN))
        os.kill(process.pid, signal.SIGINT)
        process.wait(timeout=180)
    end_processes_under(ray_tmp)
    shutil.rmtree(ray_tmp, ignore_errors=True)
    assert process.returncode == 130, (root / "err").read_text()[-2000:]
    return storage


def copy_of(interrupted: Path, tmp_path: Path, name: str = RUN) -> tuple[Path, Path]:
    storage = tmp_path / "copy"
    shutil.copytree(interrupted / RUN, storage / name)
    return storage, storage / name


@pytest.mark.timeout(900)
@pytest.mark.parametrize("damaged", ["searcher-state-", "tuner.pkl"])
def test_a_cut_short_ray_state_is_one_line_before_ray_or_a_clean_repair(damaged, interrupted, tmp_path, env):
    storage, run = copy_of(interrupted, tmp_path)
    target = next(p for p in run.iterdir() if p.name.startswith(damaged))
    target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])  # what a full disk leaves
    before = trial_folders(run)
    result = subprocess.run(search_args(storage), env=env, capture_output=True, text=True, timeout=600)
    if result.returncode == 2:  # refused: one line naming the file, before Ray started, nothing trained
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and target.name in errors[0], result.stderr[-2000:]
        assert "Traceback" not in result.stderr and "ray.init" not in result.stderr
        assert "interrupted" not in result.stderr  # no signal came: never called an interruption
        assert trial_folders(run) == before
        assert "RUNNING" not in optuna_states(run)
    else:  # repaired from the run's own copy of Ray's state, then resumed: no config trained twice
        assert result.returncode == 0, result.stderr[-3000:]
        assert len(trial_folders(run)) == SAMPLES
        states = optuna_states(run)
        assert "RUNNING" not in states and states.get("COMPLETE", 0) == SAMPLES


@pytest.mark.timeout(900)
def test_a_run_copied_to_another_storage_and_name_resumes_into_its_own_study_only(interrupted, tmp_path, env):
    """The copy sits at another path under another name: it resumes there (Ray's trials and the Optuna
    study reopened at the new place), and the original's files and study are untouched."""
    original = interrupted / RUN
    original_states, original_trials = optuna_states(original), trial_folders(original)
    storage, run = copy_of(interrupted, tmp_path, name="moved_copy")
    result = subprocess.run(search_args(storage, "moved_copy"), env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resuming the experiment" in result.stderr + result.stdout
    assert len(trial_folders(run)) == SAMPLES
    assert optuna_states(run).get("COMPLETE", 0) == SAMPLES
    assert optuna_states(original) == original_states and trial_folders(original) == original_trials


@pytest.mark.timeout(600)
def test_no_file_the_run_writes_and_no_message_carries_a_password_from_a_url(tmp_path, env):
    """SQLite ignores a ``password`` query parameter, so a real run can be given one and every file it
    wrote (books, lock, Ray's state and pickles, trial folders, logs, reports) searched for it."""
    secret = "Hunter2-secret"
    storage, results = tmp_path / "store", tmp_path / "results"
    args = [sys.executable, "-m", "harness.search", "--pair", "bilstm", "--smoke-test", "--folds", "5"]
    args += ["--storage", str(storage), "--results", str(results)]
    args += ["--optuna-storage", f"sqlite:///{tmp_path / 'studies.db'}?password={secret}"]
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=550)
    assert result.returncode == 0, result.stderr[-3000:]
    assert secret not in result.stdout + result.stderr
    written = [p for p in list(storage.rglob("*")) + list(results.rglob("*")) if p.is_file()]
    assert any(p.name == "tuner.pkl" for p in written)
    assert [p for p in written if secret.encode() in p.read_bytes()] == []
