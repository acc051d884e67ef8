"""What the console shows: `harness --version`, -v/-q, no third-party progress bars or colour codes, Ray's
timing warnings and resume hint in the log file only, Python warnings in the log file (not nowhere)."""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path

import harness

ROOT = Path(__file__).resolve().parents[2]


def run(code: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("HF_HUB_DISABLE", "HARNESS_VERB"))}
    environment.pop("RAY_COLOR_PREFIX", None)
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=environment | (env or {}) | {"HF_HUB_OFFLINE": "1"},
        timeout=300,
    )


def test_version_is_printed():
    result = run("import sys; from harness.cli.main import main; sys.exit(main(['--version']))")
    assert result.returncode == 0 and result.stdout.strip() == f"harness {harness.__version__}"


def test_transformers_shows_no_progress_bar_nor_colour():
    """transformers' "Writing model shards" bar (``save_pretrained`` of a tiny checkpoint, as the demo does,
    draws it through ``transformers.utils.logging.tqdm``)."""
    code = (
        "from harness.logs import setup_logging; setup_logging();"
        "from transformers.utils import logging as hf; list(hf.tqdm(range(3), desc='Writing model shards'))"
    )
    result = run(code)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Writing model shards" not in result.stderr + result.stdout
    assert "\x1b[" not in result.stderr + result.stdout
    bare = run(code.replace("setup_logging();", ""))  # without the harness's set-up
    assert bare.returncode == 0 and "Writing model shards" in bare.stderr  # the bar this test guards against


def _console_and_file(tmp_path: Path, verbosity: str) -> tuple[str, str]:
    code = (
        "import logging, sys, warnings; from pathlib import Path; from harness import logs;"
        "logs.setup_logging(); logs.start_log_file(Path(sys.argv[1]));"
        "logging.getLogger('ray.tune.execution.tune_controller').warning("
        "'Processing trial results took 0.6 s, which may be a performance bottleneck.');"
        "logging.getLogger('ray.tune.tune').warning("
        "'Experiment has been interrupted.\\nResume experiment with: Tuner.restore(path=\"x\", trainable=...)');"
        "logging.getLogger('ray.tune').warning('a Ray warning a user must see');"
        "logging.getLogger('harness.x').info('a harness line'); logging.getLogger('harness.x').debug('a debug line');"
        "warnings.warn('an old API', FutureWarning)"
    )
    log = tmp_path / f"run{verbosity}.log"
    result = run(code, str(log), env={"HARNESS_VERBOSITY": verbosity})
    assert result.returncode == 0, result.stderr
    return result.stderr, log.read_text()


def test_ray_timing_warnings_and_resume_hint_go_to_the_file_only(tmp_path):
    console, file = _console_and_file(tmp_path, "0")
    assert "a Ray warning a user must see" in console and "a harness line" in console
    for hidden in ("performance bottleneck", "Tuner.restore", "an old API", "a debug line"):
        assert hidden not in console, hidden
    for kept in ("performance bottleneck", "Tuner.restore", "an old API", "a harness line"):
        assert kept in file, kept


def test_quiet_and_verbose(tmp_path):
    quiet, _ = _console_and_file(tmp_path, "-1")
    assert "a Ray warning a user must see" in quiet and "a harness line" not in quiet
    verbose, _ = _console_and_file(tmp_path, "1")
    assert "a debug line" in verbose and "an old API" in verbose and "performance bottleneck" not in verbose


def test_the_command_line_flags_set_the_verbosity(monkeypatch):
    from harness.cli import main as cli
    from harness.logs import VERBOSITY_VARIABLE, verbosity

    monkeypatch.setenv(VERBOSITY_VARIABLE, "0")
    seen = []
    probe = types.ModuleType("harness_probe_command")
    probe.main = lambda argv: seen.append((argv, verbosity())) or 0  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, probe.__name__, probe)
    monkeypatch.setitem(cli.COMMANDS, "probe", probe.__name__)
    assert cli.main(["-q", "probe", "--x"]) == 0 and seen[-1] == (["--x"], -1)
    assert cli.main(["-v", "probe"]) == 0 and seen[-1] == ([], 1)


def test_worker_lines_carry_no_colour_codes_off_a_terminal():
    result = run(
        "import os; from harness.logs import setup_logging; setup_logging(); print(os.environ['RAY_COLOR_PREFIX'])"
    )
    assert result.stdout.strip() == "0"  # Ray prints worker lines without colour codes
