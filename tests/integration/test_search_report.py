"""Real searches through the CLI (Ray + Optuna + ASHA) on the demo corpus, then the reporter."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from harness.corpus import EMOTION_NAMES

pytestmark = pytest.mark.slow


def run_search(*args: str, env: dict, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.search", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return os.environ | {"HARNESS_CACHE": str(tmp_path_factory.mktemp("cache")), "PYTHONUNBUFFERED": "1"}


@pytest.mark.parametrize("args, message", [
    (["--pair", "wav2vec_bilstn"], "did you mean 'wav2vec_bilstm'"),
    (["--pair", "bilstm", "--num-samples", "0"], "--num-samples must be > 0"),
    (["--pair", "bilstm", "--gpus-per-trial", "-1"], "--gpus-per-trial must be >= 0"),
    (["--pair", "bilstm", "--set", "lrr=3"], "did you mean 'lr'"),
    (["--pair", "bilstm", "--data", "/nonexistent/IEMOCAP"], "corpus directory does not exist"),
])
def test_bad_arguments_fail_before_ray(args, message, env):
    result = run_search(*args, env=env, timeout=120)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert "ray" not in result.stderr.lower().split("error:")[0]


@pytest.fixture(scope="module")
def searched(tmp_path_factory, env):
    results = tmp_path_factory.mktemp("results")
    for pair in ("cnnbilstm_bilstm", "bilstm"):
        result = run_search("--pair", pair, "--smoke-test", "--num-samples", "3", "--folds", "4", "5",
                            "--results", str(results), env=env)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert f"report: {results / 'comparison.md'}" in result.stdout
    return results


def test_trials_are_persisted_with_folds_and_resources(searched):
    records = [json.loads(p.read_text()) for p in searched.glob("cnnbilstm_bilstm/*/trial_*.json")]
    assert len(records) == 2  # --smoke-test caps trials at two
    for record in records:
        assert record["meta"]["test_sessions"] == [5]  # smoke test: last requested fold only
        assert record["status"] == "finished"
        fold = record["folds"][0]
        assert fold["fold"] == 5 and fold["resources"]["params_total"] > 0
        assert fold["test"]["n"] == 45
        assert record["config"]["epochs"] == 1 if "epochs" in record["config"] else True


def test_report_tables_match_trial_data(searched):
    comparison = pd.read_csv(searched / "comparison.csv")
    assert set(comparison.pair) == {"cnnbilstm_bilstm", "bilstm"}
    for row in comparison.itertuples():
        records = [json.loads(p.read_text()) for p in searched.glob(f"{row.pair}/*/trial_*.json")]
        best = max(records, key=lambda r: (r["mean_val_weighted_f1"], r["trial_id"] == row.best_trial))
        assert row.best_trial == best["trial_id"]
        assert row.val_weighted_f1 == pytest.approx(best["mean_val_weighted_f1"], abs=1e-4)
        test_f1 = best["folds"][0]["test"]["weighted_f1"]
        assert row.test_weighted_f1 == pytest.approx(test_f1, abs=1e-4)
        assert pd.isna(row.test_weighted_f1_std)  # one fold: no spread to pretend
        assert row.params_total_M == pytest.approx(best["folds"][0]["resources"]["params_total"] / 1e6, abs=1e-3)
        assert row.trials == len(records)
    per_emotion = pd.read_csv(searched / "per_emotion.csv")
    assert list(per_emotion.columns) == ["pair", "data_source",
                                         *[c for name in EMOTION_NAMES.values() for c in (name, f"{name}_std")]]
    markdown = (searched / "comparison.md").read_text()
    assert "DEMO CORPUS, NOT IEMOCAP" in markdown and "Protocol:" in markdown
    paired = pd.read_csv(searched / "paired_comparison.csv")
    assert len(paired) == 1 and paired.folds[0] == 1
    gain = pd.read_csv(searched / "fusion_gain.csv")  # cnnbilstm_bilstm against its text-only baseline
    assert list(zip(gain.pair, gain.baseline)) == [("cnnbilstm_bilstm", "bilstm")]
    f1 = comparison.set_index("pair").test_weighted_f1
    assert gain.gain[0] == pytest.approx(f1["cnnbilstm_bilstm"] - f1["bilstm"], abs=2e-4)
    for png in ("per_emotion_f1.png", "f1_vs_params.png", "f1_vs_memory.png"):
        assert (searched / png).stat().st_size > 1000


def test_report_is_reproducible(searched):
    before = {p.name: p.read_bytes() for p in searched.glob("*.csv")} | {p.name: p.read_bytes() for p in searched.glob("*.md")}
    subprocess.run([sys.executable, "-m", "harness.report", "--results", str(searched)], check=True,
                   capture_output=True)
    after = {p.name: p.read_bytes() for p in searched.glob("*.csv")} | {p.name: p.read_bytes() for p in searched.glob("*.md")}
    assert before == after


def test_killed_search_resumes_without_rerunning_finished_trials(tmp_path, env):
    results = tmp_path / "results"
    args = [sys.executable, "-m", "harness.search", "--pair", "bilstm", "--num-samples", "3", "--max-concurrent", "1",
            "--folds", "5", "--set", "epochs=2", "--set", "explain_samples=0", "--results", str(results), "--no-report"]
    process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    run_dir = results / "bilstm" / "bilstm_demo"
    deadline = time.time() + 300
    finished: dict[str, str] = {}
    while time.time() < deadline and not finished:
        for path in run_dir.glob("trial_*.json"):
            record = json.loads(path.read_text())
            if record["status"] == "finished":
                finished[path.name] = record["written_at"]
        time.sleep(0.5)
    assert finished, "no trial finished before the deadline"
    os.killpg(process.pid, signal.SIGKILL)  # the whole search: driver, raylet and workers
    process.wait()
    subprocess.run(["ray", "stop", "--force"], capture_output=True)
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resuming the experiment" in result.stderr + result.stdout
    records = {p.name: json.loads(p.read_text()) for p in run_dir.glob("trial_*.json")}
    for name, written_at in finished.items():
        assert records[name]["written_at"] == written_at  # kept, not re-run
    assert sum(r["status"] == "finished" for r in records.values()) == 3


def test_failing_trials_are_recorded_and_the_search_finishes(tmp_path, env):
    results = tmp_path / "results"
    result = run_search("--pair", "bilstm", "--smoke-test", "--set", "lr=1e30", "--set", "grad_clip=1e30",
                        "--results", str(results), env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 trials (2 failed)" in result.stdout
    records = [json.loads(p.read_text()) for p in (results / "bilstm").glob("*/trial_*.json")]
    assert len(records) == 2
    assert all(r["status"] == "failed" and r["reason"].startswith("NonFiniteLossError") for r in records)
    assert not any(r["retryable"] for r in records)
    # Ray retried each trial (FailureConfig), and each retry stopped at once instead of training again.
    errors = [p.read_text() for p in (results / "ray").rglob("error.txt")]
    assert len(errors) == 2 and all("NotRetried: not retried: NonFiniteLossError" in e for e in errors)
