"""benchmarks/bench_fused.py at tiny sizes (the operation count does not depend on them): a fused step of five
seeds dispatches at least 3x fewer host operations per member-step than one model's step (issue 26)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_fused_seeds_bench_dispatches_3x_fewer_operations_per_member_step_at_k5(tmp_path):
    tiny = ["audio.channels=8", "audio.hidden=8", "text.embed_dim=8", "text.hidden=8", "fusion_dim=16"]
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_fused.py"), "--members", "1", "5", "--steps", "1"]
        + ["--repeats", "1", "--device", "cpu", "--set", *tiny],
        capture_output=True,
        text=True,
        timeout=600,
        env=os.environ | {"TMPDIR": str(tmp_path), "HARNESS_CACHE": str(tmp_path / "cache")},
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {int(m[1]): float(m[2]) for m in re.finditer(r"^\s+(\d+)\s+\d+\s+\d+\s+([\d.]+)x", result.stdout, re.M)}
    assert rows[1] == 1.0 and rows[5] >= 3.0, result.stdout
