"""``python -m harness.search`` as a user runs it: bad input before Ray, records, reruns, interrupts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from harness.store import RECORD, Storage, read_json
from tests.integration.conftest import end_processes_under, harness

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    "args, message",
    [
        (["--pair", "wav2vec_bilstn"], "did you mean 'wav2vec_bilstm'"),
        (["--pair", "bilstm", "--num-samples", "0"], "--num-samples must be > 0"),
        (["--pair", "bilstm", "--gpus-per-trial", "-1"], "--gpus-per-trial must be >= 0"),
        (["--pair", "bilstm", "--set", "lrr=3"], "did you mean 'lr'"),
        (["--pair", "bilstm", "--data", "/nonexistent/IEMOCAP"], "corpus directory does not exist"),
        (
            ["--pair", "wav2vec", "--set", "audio.model=/models/missing"],
            "'/models/missing' (audio.model): the folder does not exist",
        ),
        (["--pair", "albert"], "'albert-base-v2' (albert.model): not in the local Hugging Face cache"),
        (["--pair", "bilstm", "--results", "/proc/version"], "--results /proc/version: not a directory"),
        (["--pair", "bilstm", "--results", "/proc/harness_results"], "--results /proc/harness_results: not writable"),
        (["--pair", "bilstm", "--storage", "/proc/harness_runs"], "--storage /proc/harness_runs: not usable"),
        (["--pair", "bilstm", "--storage", "nosuch://x/y"], "Unrecognized filesystem type"),
    ],
)
def test_bad_arguments_fail_before_ray_with_one_line(args, message, env):
    result = harness("search", *args, env=env | {"HF_HUB_OFFLINE": "1"}, timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    assert message in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")
    before = result.stderr.split("error:")[0].splitlines()
    assert not [line for line in before if "ray" in line.lower() and "harness.logs" not in line]  # no Ray started


@pytest.mark.timeout(1200)  # three searches and four refused reruns
def test_search_records_rerun_check_and_all_failed(tmp_path, env):
    results = tmp_path / "results"
    # nested (the default): test fold 5's configs compared on its first inner fold, which validates on Session 1
    args = ["--pair", "bilstm", "--num-samples", "2", "--folds", "5", "--inner-folds", "1", "--fidelity", "folds"]
    args += ["--set", "epochs=2", "--results", str(results)]
    first = harness("search", *args, env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    store = Storage(results / "ray").run("bilstm_demo")  # the default storage: RESULTS/ray
    records = store.records()
    assert len(records) == 2 and all(r.status == "finished" and r.outer_fold == 5 for r in records)
    assert all(r.folds[0].test is None and r.folds[0].validation_speaker == "Ses01" for r in records)  # no test
    selected = pd.read_csv(results / "selected_configs.csv")
    assert selected[["pair", "test_session", "selected_on_sessions"]].values.tolist() == [["bilstm", 5, 1]]
    assert not selected.test_session_chose_it.any()
    assert all(r.folds[0].explanation is None for r in records)  # search trials do not explain
    console = first.stdout + first.stderr  # quiet: one line per ended trial, none of Ray's tables or notices
    assert console.count("(outer fold 5) finished: 1/1 folds") == 2 and "| Trial name" not in console
    assert "Checkpoint successfully created" not in console and "A new study created" not in console
    summary = store.read("search.json")
    assert summary["trials"] == 2 and summary["wall_s"] > 0 and not summary["interrupted"]

    again = harness("search", *args, env=env)  # identical options: resumes, nothing to do
    assert again.returncode == 0 and "done: 2 trials" in again.stdout
    for changed in (["--num-samples", "3"], ["--folds", "4", "5"]):
        other = harness("search", *(args + changed), env=env, timeout=120)
        assert other.returncode == 2 and "this run was started with other options" in other.stderr
        assert "--name NEW" in other.stderr and "Traceback" not in other.stderr

    failing = harness(
        "search",
        "--pair",
        "bilstm",
        "--smoke-test",
        "--set",
        "lr=1e30",
        "--set",
        "grad_clip=1e30",
        "--results",
        str(tmp_path / "failing"),
        env=env,
    )
    assert failing.returncode == 1, failing.stderr[-3000:]
    assert "all 2 trials failed" in failing.stderr and "done" not in failing.stdout
    failed = Storage(tmp_path / "failing" / "ray").run("bilstm_demo_smoke").records()
    assert len(failed) == 2
    assert all(r.status == "failed" and r.reason.startswith("NonFiniteLossError") and not r.retryable for r in failed)


def ray_terminated(run: Path) -> set[str]:
    """Trials that Ray's latest snapshot of the experiment (what a restore reads) holds as finished."""
    terminated: set[str] = set()
    for path in run.glob("experiment_state-*.json"):
        try:
            entries = json.loads(path.read_text())["trial_data"]
        except (OSError, ValueError, KeyError):  # being written right now
            continue
        for state, _ in entries:
            trial = json.loads(state)
            if trial.get("status") == "TERMINATED":
                terminated.add(trial["trial_id"])
    return terminated


def driver_finished(store) -> dict[str, str]:
    """Trials the driver saw finish: their ``record.json`` (written when Ray's driver has the trial's end,
    not the checkpoint the worker writes before the driver knows of it), by trial id -> written_at."""
    finished = {}
    for path in store.trial_paths():
        try:
            record = read_json(store.fs, f"{path}/{RECORD}")
        except (OSError, ValueError):  # not written yet
            continue
        if record["status"] == "finished":
            finished[record["trial_id"]] = record["written_at"]
    return finished


def wait_for_finished_trial(store, run: Path | None = None, timeout: float = 300) -> dict[str, str]:
    """Finished trials; with ``run``, only those Ray's snapshot already holds as finished (a hard kill
    loses what happened after Ray's last snapshot, taken every 10 s or so, and the restore re-samples
    those trials)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        finished = driver_finished(store)
        if run is not None:
            known = ray_terminated(run)
            finished = {trial: at for trial, at in finished.items() if trial in known}
        if finished:
            return finished
        time.sleep(0.5)
    raise AssertionError("no trial finished before the deadline")


@pytest.mark.timeout(1200)  # two searches, each allowed 300-600 s on a loaded machine
@pytest.mark.parametrize("stop, code", [(signal.SIGINT, 130), (signal.SIGKILL, None)])
def test_interrupted_search_says_so_and_resumes(stop, code, tmp_path, env, ray_tmp):
    results = tmp_path / "results"
    args = [
        sys.executable,
        "-m",
        "harness.search",
        "--pair",
        "bilstm",
        "--num-samples",
        "3",
        "--max-concurrent",
        "1",
        "--folds",
        "5",
        "--protocol",
        "loso-flat",
        "--fidelity",
        "folds",
        "--set",
        "epochs=3",
        "--results",
        str(results),
        "--no-report",
    ]
    # output to files, not pipes: a pipe nobody reads while the search runs fills up and blocks the driver
    out_file, err_file = open(tmp_path / "out", "w+"), open(tmp_path / "err", "w+")
    process = subprocess.Popen(args, env=env, stdout=out_file, stderr=err_file, text=True, start_new_session=True)
    store = Storage(results / "ray").run("bilstm_demo_loso-flat")
    run = results / "ray" / "bilstm_demo_loso-flat"
    finished = wait_for_finished_trial(store, None if stop == signal.SIGINT else run)
    if stop == signal.SIGINT:
        os.kill(process.pid, signal.SIGINT)  # Ctrl-C reaches the driver
        process.wait(timeout=120)
        out, err = (tmp_path / "out").read_text(), (tmp_path / "err").read_text()
        assert process.returncode == code, err[-3000:]
        assert "interrupted" in err and "run the same command again to resume" in err and "done" not in out
    else:
        os.killpg(process.pid, signal.SIGKILL)  # the whole search: driver, raylet and workers
        process.wait()
        end_processes_under(ray_tmp)
    out_file.close()
    err_file.close()
    before = store.read("search.json")["wall_s"]
    assert before > 0  # written as the run goes, so a killed run's time is kept
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resuming the experiment" in result.stderr + result.stdout and "done: 3 trials" in result.stdout
    records = {r.trial_id: r for r in store.records()}
    for trial, written_at in finished.items():
        assert records[trial].written_at == written_at  # kept, not re-run
    assert sum(r.status == "finished" for r in records.values()) == 3
    assert store.read("search.json")["wall_s"] > before  # adds up across resumes
    # The Optuna study, stored in the run's books, was reopened (not duplicated) and agrees with the records;
    # a trial the killed driver left RUNNING that no resumed Ray trial continues is FAIL, never RUNNING.
    import optuna

    database = f"sqlite:///{results / 'ray' / 'bilstm_demo_loso-flat' / 'harness' / 'optuna.db'}"
    assert optuna.get_all_study_names(database) == ["bilstm_demo_loso-flat"]
    trials = optuna.load_study(study_name="bilstm_demo_loso-flat", storage=database).trials
    assert {t.state.name for t in trials} <= {"COMPLETE", "FAIL"}
    complete = sorted(t.value for t in trials if t.state.name == "COMPLETE")
    assert complete == pytest.approx(sorted(r.mean_val_weighted_f1 for r in records.values()))


@pytest.mark.timeout(1200)
def test_ctrl_c_after_every_trial_started_is_not_reported_as_done(tmp_path, env):
    # Ray Tune marks the trials it stops on Ctrl-C TERMINATED: with every trial started, the run looked done.
    results = tmp_path / "results"
    args = [sys.executable, "-m", "harness.search", "--pair", "bilstm", "--num-samples", "2", "--max-concurrent"]
    args += ["2", "--folds", "1", "2", "3", "4", "5", "--set", "epochs=3", "--results", str(results), "--no-report"]
    args += ["--protocol", "loso-flat", "--fidelity", "folds"]  # every trial has folds to go when stopped
    with open(tmp_path / "out", "w") as out, open(tmp_path / "err", "w") as err:
        process = subprocess.Popen(args, env=env, stdout=out, stderr=err, text=True)
        store = Storage(results / "ray").run("bilstm_demo_loso-flat")
        deadline = time.time() + 300
        while time.time() < deadline:  # both trials have run a fold, and have four more to go
            try:
                records = store.records()
            except (OSError, ValueError):  # a checkpoint being written right now
                records = []
            if len(records) == 2 and all(1 <= len(r.folds) < 5 for r in records):
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the two trials never ran a fold")
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=120) == 130, (tmp_path / "err").read_text()[-3000:]
    assert (
        "done" not in (tmp_path / "out").read_text()
        and "interrupted: 2 trials started" in (tmp_path / "err").read_text()
    )
    assert store.read("search.json")["interrupted"] and not driver_finished(store)
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0 and "done: 2 trials" in result.stdout, result.stderr[-3000:]
    assert all(len(r.folds) == 5 for r in store.records() if r.status == "finished")
