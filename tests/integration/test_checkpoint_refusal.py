"""Checkpoints are loaded or the run refuses (issue 25), as a user meets it: a copy of the demo corpus without
its marker is a real corpus, where an unreachable checkpoint stops the benchmark before Ray with one line, a
folder of another architecture exits 2, and ``--allow-stand-ins`` is the only way to random-init weights."""

from __future__ import annotations

import shutil

import pytest

from harness.corpus.demo import ensure_demo_corpus
from harness.corpus.iemocap import DEMO_MARKER
from harness.models.encoders.registry import ENCODERS
from harness.models.tiny import ensure_checkpoint
from tests.integration.conftest import harness

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def real_corpus(tmp_path_factory):
    copy = tmp_path_factory.mktemp("not_demo") / "IEMOCAP_full_release"
    shutil.copytree(ensure_demo_corpus(tmp_path_factory.mktemp("demo_cache")), copy)
    (copy / DEMO_MARKER).unlink()
    return copy


def refused(result, message: str) -> None:
    assert result.returncode == 2, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and message in last and "Traceback" not in result.stderr
    before = result.stderr.split("error:")[0].splitlines()
    assert not [line for line in before if "ray" in line.lower() and "harness.logs" not in line]  # no Ray started


def test_an_unreachable_checkpoint_stops_the_benchmark_before_ray(real_corpus, tmp_path, env):
    args = ["--data", str(real_corpus), "--pairs", "wav2vec", "hubert", "--results", str(tmp_path)]
    result = harness("benchmark", *args, env=env | {"HF_HUB_OFFLINE": "1"}, timeout=300)
    refused(result, "hf download facebook/wav2vec2-base && hf download facebook/hubert-base-ls960")


def test_a_folder_of_another_architecture_exits_2(real_corpus, tmp_path, env):
    wav2vec2 = ensure_checkpoint(ENCODERS["wav2vec2"], "tiny", tmp_path / "models")
    args = ["--data", str(real_corpus), "--pairs", "hubert", "--set", f"hubert.model={wav2vec2}"]
    result = harness("benchmark", *args, "--results", str(tmp_path), env=env | {"HF_HUB_OFFLINE": "1"}, timeout=300)
    refused(result, "it is a wav2vec2 checkpoint, and hubert needs a hubert one")
