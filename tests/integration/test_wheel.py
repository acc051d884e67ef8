"""A built wheel runs: ``.ci/wheel_check`` builds it, installs it into a fresh venv and runs ``harness
validate`` (and ``harness list`` where the command exists) from outside the checkout."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.heavy
def test_a_built_wheel_validates_outside_the_checkout(tmp_path):
    if importlib.util.find_spec("build") is None:
        pytest.skip("needs the 'build' package (pip install build)")
    done = subprocess.run(
        ["bash", str(ROOT / ".ci" / "wheel_check"), str(tmp_path)], capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert f"harness imported from the wheel: {tmp_path}/venv/" in done.stdout
    assert "forward ok" in done.stdout and "wheel ok" in done.stdout
