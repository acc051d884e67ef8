"""Checkpoints are resolved once per process: the hub is probed once, an unreachable hub turns every later
look-up local-only (workers included), and a stand-in is announced once per checkpoint."""

from __future__ import annotations

import logging
import os
import sys
import time

import pytest

from harness.config import ConfigError
from harness.models import hub
from harness.models.pairs import GRID, get_pair


@pytest.fixture
def fresh_hub(monkeypatch, tmp_path):
    """No offline variables, an empty Hugging Face cache, a probe that counts its calls and fails."""
    for variable in hub.OFFLINE_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    calls: list[str] = []

    def unreachable(url: str, timeout_s: float) -> str | None:
        calls.append(url)
        return "URLError: Name or service not known"

    monkeypatch.setattr(hub, "probe", unreachable)
    hub.reset()
    constants = sys.modules.get("huggingface_hub.constants")
    was_offline = getattr(constants, "HF_HUB_OFFLINE", None)
    yield calls
    hub.reset()
    if constants is not None:
        constants.HF_HUB_OFFLINE = was_offline  # type: ignore[attr-defined]


def test_reachability_is_decided_once_and_an_unreachable_hub_makes_every_look_up_local_only(fresh_hub, monkeypatch):
    import huggingface_hub

    downloads: list[str] = []
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda name, *a, **k: downloads.append(name))
    for name in GRID:
        for variant in get_pair(name).variants.values():
            if variant.pretrained:
                for _ in range(3):  # search and final stage of each pair, and again
                    with pytest.raises(
                        ConfigError,
                        match="not in the local Hugging Face cache and https://huggingface.co not reachable",
                    ):
                        hub.resolve_checkpoint(variant, variant.checkpoint)
    assert len(fresh_hub) == 1  # one probe for every checkpoint, pair and stage
    assert downloads == []  # never asked the hub after it did not answer
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TRANSFORMERS_OFFLINE"] == "1"
    assert huggingface_hub.constants.HF_HUB_OFFLINE is True  # already imported: told too
    assert hub.worker_env() == {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def test_a_reachable_hub_is_asked_once_per_checkpoint(fresh_hub, monkeypatch):
    import huggingface_hub

    monkeypatch.setattr(hub, "probe", lambda url, timeout_s: fresh_hub.append(url))  # answers (None)
    downloads: list[str] = []
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda name, *a, **k: downloads.append(name))
    variant = get_pair("wav2vec").variants["audio"]
    for _ in range(4):
        assert hub.resolve_checkpoint(variant, variant.checkpoint) == variant.checkpoint
    assert downloads == [variant.checkpoint] and len(fresh_hub) == 1
    assert "HF_HUB_OFFLINE" not in os.environ and hub.worker_env() == {}


def test_offline_by_environment_is_not_probed(fresh_hub, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    variant = get_pair("albert").variants["text"]
    with pytest.raises(ConfigError, match="HF_HUB_OFFLINE is set"):
        hub.resolve_checkpoint(variant, variant.checkpoint)
    assert fresh_hub == []


def test_the_real_probe_of_an_unreachable_endpoint_is_bounded_by_its_timeout():
    started = time.monotonic()
    # a reserved TEST-NET address (RFC 5737): never answers, so only the timeout ends the wait
    failure = hub.probe("http://192.0.2.1:9", timeout_s=0.5)
    assert failure is not None and time.monotonic() - started < 3


def test_a_stand_in_is_announced_once_per_checkpoint(fresh_hub, monkeypatch, tmp_path, caplog):
    import harness.models.tiny as tiny

    built: list[str] = []

    def ensure_checkpoint(variant, size, cache_dir=None):
        built.append(variant.name)
        return tmp_path / size / variant.name

    monkeypatch.setattr(tiny, "ensure_checkpoint", ensure_checkpoint)
    caplog.set_level(logging.WARNING, logger="harness.models.hub")
    choices = []
    for _ in range(2):  # search, then final stage
        for name in GRID:
            for variant in get_pair(name).variants.values():
                if variant.pretrained:
                    choices.append((variant.checkpoint, hub.checkpoint_or_stand_in(variant)))
    stand_in_warnings = [r.getMessage() for r in caplog.records if "RANDOM-INIT stand-in" in r.getMessage()]
    checkpoints = sorted({c for c, _ in choices})
    assert len(checkpoints) == 2 and len(choices) > len(checkpoints)  # the grid uses each more than once
    assert sorted(w.split(" ")[0] for w in stand_in_warnings) == checkpoints  # one warning each
    assert all(choice.stand_in for _, choice in choices)
    assert len(built) == len(set(built))  # each stand-in built (or found) once


def test_a_local_folder_is_checked_every_time(fresh_hub, tmp_path):
    variant = get_pair("wav2vec").variants["audio"]
    with pytest.raises(ConfigError, match="the folder does not exist"):
        hub.resolve_checkpoint(variant, str(tmp_path / "missing"))
    (tmp_path / "missing").mkdir()
    with pytest.raises(ConfigError, match="has no config.json"):
        hub.resolve_checkpoint(variant, str(tmp_path / "missing"))
    assert fresh_hub == []  # a local folder never needs the hub
