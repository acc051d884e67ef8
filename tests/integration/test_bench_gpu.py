"""benchmarks/bench_gpu.sh --dry-run: every step of the prepared GPU check runs on CPU (tiny corpus, one trial
per search, the CPU's busy share in place of the GPU's) and the report holds every measure and target."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(900)
def test_bench_gpu_dry_run_checks_every_step(tmp_path):
    out = tmp_path / "out"
    env = os.environ | {"PYTHON": sys.executable, "OUT": str(out)}  # TMPDIR stays short: Ray's socket paths
    log = tmp_path / "bench_gpu.log"  # a file, not a pipe: what ran is readable even after a timeout
    with open(log, "w") as sink:
        result = subprocess.run(
            ["bash", str(ROOT / "benchmarks" / "bench_gpu.sh"), "--dry-run"],
            check=False,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
            timeout=800,
        )
    assert result.returncode == 0, log.read_text()[-4000:]
    report = json.loads((out / "bench_gpu.json").read_text())
    assert report["scale"] < 0.01 and "dry run" in report["machine"]
    small = report["small_pair"]
    assert small["epoch_s"] > 0 and small["n_train"] > 0
    assert small["first_epoch_s"] > 0 and small["epochs_timed"] == 2  # epoch 1 apart from the steady state
    assert small["speedup_vs_before"] == pytest.approx(15.1 / small["epoch_s"])
    one, two = report["concurrency"]  # 1 and 2 trials sharing the device (1, 2, 4, 8 on a GPU)
    assert (one["trials"], two["trials"]) == (1, 2) and len(two["utt_per_s_per_trial"]) == 2
    assert two["combined_utt_per_s"] == pytest.approx(sum(two["utt_per_s_per_trial"]))
    fused = {r["members"]: r for r in report["fused"]["rows"]}  # bench_fused.py, K = 1, 2, 5 (issue 26)
    assert set(fused) == {1, 2, 5}
    assert fused[1]["ops_per_member_step"] >= 3 * fused[5]["ops_per_member_step"]
    (search,) = report["searches"]
    assert search["trials"] == 1 and 0 <= search["busy_share"] <= 1 and search["window_s"] > 0
    assert search["exit"] == 0  # on CPU the one-epoch search runs to its end (on a GPU: stopped, exit 130)
    assert report["complete"], report["other_pairs"]  # every pair asked for was measured
    assert set(report["other_pairs"]) == {"wav2vec_albert", "bilstm"} and not report["every_registered_pair"]
    assert all(v["epoch_s"] > 0 for v in report["other_pairs"].values())
    assert set(report["nested"]) == {f"{f} @ {g} GPU" for f in ("epochs", "folds") for g in (0.25, 0.125)}
    for nested in report["nested"].values():
        assert nested["gpu_hours"] > 0 and nested["pairs"] == len(report["other_pairs"]) + 1
        assert nested["speedup_basis"] == "assumed: n x"  # 4 and 8 trials are measured on a GPU only
    assert report["nested"]["epochs @ 0.25 GPU"]["trial_epochs"] < report["nested"]["folds @ 0.25 GPU"]["trial_epochs"]
    text = (out / "bench_gpu.md").read_text()
    assert ">= 4x" in text and "<= 2" in text and "busy share" in text and "fused seeds K=5" in text
    assert "2 concurrent cnnbilstm_bilstm trials on one device: combined throughput" in text
