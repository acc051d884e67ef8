"""benchmarks/bench_scale.py at a tiny scale: it runs end to end and writes its one table (Markdown + JSON)."""

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
def test_bench_scale_writes_one_table(tmp_path):
    out = tmp_path / "scale.md"
    env = os.environ | {"HARNESS_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "bench_scale.py"),
            "--scale",
            "0.005",
            "--pairs",
            "cnnbilstm_bilstm",
            "wav2vec_albert",
            "--devices",
            "cpu",
            "--out",
            str(out),
        ],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    table = json.loads(out.with_suffix(".json").read_text())
    assert table["columns"] == ["metric", "item", "device", "value", "unit", "at_iemocap_size"]
    metrics = {(r["metric"], r["item"]) for r in table["rows"]}
    for kind in ("logmel", "words", "waveform", "subwords", "layers:wav2vec2", "layers:albert"):
        assert ("extract throughput", kind) in metrics and ("cache size", kind) in metrics
    for pair in ("cnnbilstm_bilstm", "wav2vec_albert"):
        for metric in (
            "trial start-up",
            "trial peak RSS",
            "epoch (full fold)",
            "fixed per fold",
            "default search",
            "40-trial search",
        ):
            assert (metric, pair) in metrics
    assert any(metric == "inspect" for metric, _ in metrics)
    assert all(r["value"] is None or r["value"] >= 0 for r in table["rows"])
    assert out.read_text().count("\n| ") == len(table["rows"]) + 1  # header row + one line per row
    assert "| metric | item | device | value | unit | at_iemocap_size |" in result.stdout
