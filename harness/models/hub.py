"""Where pretrained checkpoints come from, decided once per process.

A hub name (``facebook/wav2vec2-base``) is read from the local Hugging Face cache, or downloaded. On a
machine without network and without ``HF_HUB_OFFLINE``, every look-up used to pay huggingface_hub's
retries with back-off (about 23 s each), once per pair and stage, and again in every Ray worker. Here:

* whether the hub answers is decided once (``hub_status``): one HEAD request to the endpoint with a short
  timeout, skipped when ``HF_HUB_OFFLINE`` is already set. When it does not answer, ``HF_HUB_OFFLINE`` and
  ``TRANSFORMERS_OFFLINE`` are set for the rest of the process; Ray workers started after that inherit them
  (a local instance copies the driver's environment; ``worker_env`` is passed on to a cluster's workers),
  so every later look-up reads the local cache only and answers at once;
* each hub checkpoint is resolved once per process (``resolve_checkpoint`` keeps its answer, a refusal too),
  so a benchmark resolves each checkpoint once, not per pair and stage;
* a checkpoint replaced by a random-init stand-in is announced once (``checkpoint_or_stand_in``);
* a run refuses, before Ray starts, any published checkpoint it cannot load (``require_checkpoints``): a
  random-init stand-in replaces one only on the built-in demo corpus or with ``--allow-stand-ins``;
* each encoder can be pointed at its own folder (``--set whisper.model=DIR``, ``choose_checkpoints``), and a
  folder of another architecture (a wav2vec2 checkpoint for HuBERT) is refused by its ``model_type``.

A local checkpoint folder is checked on every call: its checks read headers only, and a folder may change.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.config import ConfigError
from harness.models.variants import EncoderVariant

log = logging.getLogger(__name__)
PROBE_TIMEOUT_S = 3.0
OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
WEIGHTS = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json", "pytorch_model.bin.index.json")


@dataclass(frozen=True)
class HubStatus:
    """Whether the hub can be asked, and why not; ``probe_s``: what deciding it cost (0 when not probed)."""

    reachable: bool
    reason: str
    probe_s: float = 0.0


@dataclass(frozen=True)
class CheckpointChoice:
    """The checkpoint an encoder loads: the requested one, or a real-size random-init stand-in."""

    path: str
    stand_in: bool


_status: HubStatus | None = None
_resolved: dict[tuple[str, str], str | ConfigError] = {}  # (modality, hub name) -> name, or why it cannot load
_stand_ins: dict[str, str] = {}  # variant name -> its stand-in folder
_announced: set[str] = set()  # checkpoints announced as replaced by a stand-in


def endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def offline_by_environment() -> bool:
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on") for v in OFFLINE_VARIABLES)


def probe(url: str, timeout_s: float) -> str | None:
    """One HEAD request: None when the server answered (any HTTP status below 500), else why not."""
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout_s).close()
    except urllib.error.HTTPError as err:
        return None if err.code < 500 else f"HTTP {err.code}"
    except (OSError, ValueError) as err:  # URLError, timeouts, refused connections, a malformed HF_ENDPOINT
        reason = getattr(err, "reason", err)
        return f"{type(err).__name__}: {reason}"
    return None


def hub_status() -> HubStatus:
    """Whether the hub is reachable, decided once per process; when not, go offline for the rest of it."""
    global _status
    if _status is not None:
        return _status
    if offline_by_environment():
        _status = HubStatus(False, "HF_HUB_OFFLINE is set")
    else:
        started = time.monotonic()
        failure = probe(endpoint(), PROBE_TIMEOUT_S)
        took = time.monotonic() - started
        if failure is None:
            _status = HubStatus(True, f"{endpoint()} answered", took)
        else:
            _status = HubStatus(False, f"{endpoint()} not reachable ({failure}; probed for {took:.1f} s)", took)
            log.info("Hugging Face hub: %s; local cache only for this run", _status.reason)
    if not _status.reachable:
        go_offline()
    return _status


def go_offline() -> None:
    """Local-only Hugging Face look-ups for the rest of the process and the Ray workers it starts.
    huggingface_hub reads ``HF_HUB_OFFLINE`` once, when imported: an imported copy is told as well."""
    for variable in OFFLINE_VARIABLES:
        os.environ[variable] = "1"
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        constants.HF_HUB_OFFLINE = True  # type: ignore[attr-defined]


def worker_env() -> dict[str, str]:
    """Environment variables Ray workers need to look checkpoints up the way the driver decided."""
    return {v: "1" for v in OFFLINE_VARIABLES} if offline_by_environment() else {}


def reset() -> None:
    """Forget what this process decided (tests)."""
    global _status
    _status = None
    _resolved.clear()
    _stand_ins.clear()
    _announced.clear()


def checkpoint_available(name: str) -> bool:
    """Whether ``from_pretrained(name)`` can work offline: a local folder, or a hub name already cached."""
    if Path(name).expanduser().is_dir():
        return (Path(name).expanduser() / "config.json").exists()
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(name, "config.json"), str)
    except Exception:  # a malformed repo id
        return False


def resolve_checkpoint(variant: EncoderVariant, name: str, key: str = "") -> str:
    """Check a checkpoint before Ray starts: a local folder must hold a loadable checkpoint of the variant's
    architecture (its config.json's ``model_type``); a hub name must be cached or, when the hub is reachable,
    downloadable. Raises ``ConfigError`` with one line naming the checkpoint, the key and the fix. A hub
    name's answer is kept for the rest of the process."""
    from harness.models.encoders.pretrained import checkpoint_problem

    key = key or f"{variant.modality}.model"
    path = Path(name).expanduser()
    if name.startswith(("/", ".", "~")) or path.exists():
        if not path.is_dir():
            raise ConfigError(checkpoint_problem(name, key, "the folder does not exist"))
        if not (path / "config.json").exists():
            raise ConfigError(checkpoint_problem(name, key, "the folder has no config.json"))
        problem = local_checkpoint_problem(path) or model_type_problem(variant, path / "config.json")
        if problem:
            raise ConfigError(checkpoint_problem(name, key, problem))
        return str(path.resolve())
    answer = _resolved.get((variant.modality, name))
    if answer is None:
        answer = _resolve_hub_name(name, key)
        _resolved[(variant.modality, name)] = answer
    if isinstance(answer, ConfigError):
        raise ConfigError(str(answer))
    return answer


def _resolve_hub_name(name: str, key: str) -> str | ConfigError:
    from harness.models.encoders.pretrained import checkpoint_problem

    status = hub_status()  # decided even for a cached name: the workers load it too, and must know
    if checkpoint_available(name):
        return name
    if not status.reachable:
        return ConfigError(checkpoint_problem(name, key, f"not in the local Hugging Face cache and {status.reason}"))
    try:
        from huggingface_hub import hf_hub_download

        os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", "5")
        os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", "10")
        hf_hub_download(name, "config.json")
    except Exception as err:
        return ConfigError(checkpoint_problem(name, key, f"not cached and not downloadable ({type(err).__name__})"))
    return name


def checkpoint_or_stand_in(variant: EncoderVariant) -> CheckpointChoice:
    """``variant``'s published checkpoint, or, when it can be neither read from the cache nor downloaded,
    a real-size random-init stand-in (built once under the cache). The stand-in is announced once per
    process, whatever number of pairs and stages use it."""
    try:
        return CheckpointChoice(resolve_checkpoint(variant, variant.checkpoint), False)
    except ConfigError:
        pass
    if variant.checkpoint not in _announced:
        _announced.add(variant.checkpoint)
        status = hub_status()
        log.warning(
            "%s is not in the local Hugging Face cache%s: every pair using it gets a real-size RANDOM-INIT "
            "stand-in (sizes, memory and latency are real; scores mean nothing). To use the real weights, "
            "download them once (hf download %s) or pass --set %s.model=/path/to/checkpoint",
            variant.checkpoint,
            "" if status.reachable else f" and the hub is not reachable ({status.reason})",
            variant.checkpoint,
            variant.name,
        )
    if variant.name not in _stand_ins:
        from harness.models.tiny import ensure_checkpoint

        _stand_ins[variant.name] = str(ensure_checkpoint(variant, "real"))
    return CheckpointChoice(_stand_ins[variant.name], True)


def local_checkpoint_problem(path: Path) -> str | None:
    """What keeps a local checkpoint folder from loading, found without loading it (headers only)."""
    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, ValueError) as err:
        return f"{path / 'config.json'} is not valid JSON ({str(err).splitlines()[0]})"
    if not isinstance(config, dict) or "model_type" not in config:
        return f"{path / 'config.json'} has no model_type (not a transformers config)"
    weights = [w for w in WEIGHTS if (path / w).is_file()]
    if not weights:
        return f"no weights file ({', '.join(WEIGHTS[:2])}) in the folder"
    if weights[0] == "model.safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(path / weights[0]), framework="pt") as f:  # reads the header, checks sizes
                f.keys()
        except Exception as err:  # SafetensorError is not an OSError
            return f"{path / weights[0]} is damaged ({str(err).splitlines()[0]})"
    return None


def model_type_problem(variant: EncoderVariant, config_json: Path) -> str | None:
    """Why a checkpoint's config.json is not ``variant``'s architecture (None when it is, or unknown)."""
    if variant.arch is None:
        return None
    try:
        found = json.loads(config_json.read_text()).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None  # reported by local_checkpoint_problem
    expected = variant.arch.model_type
    if found and found != expected:
        return f"it is a {found} checkpoint, and {variant.name} needs a {expected} one"
    return None


# -- which checkpoint each encoder of a run loads -----------------------------------------------------------


class MissingCheckpointsError(ConfigError):
    """Published checkpoints a run needs that are neither local nor downloadable (one line, all of them)."""


@dataclass(frozen=True)
class CheckpointPlan:
    """Config overrides naming the checkpoint each modality's encoder loads, and whether any is a stand-in."""

    overrides: dict[str, str]
    stand_in: bool


def encoder_key(variant: EncoderVariant) -> str:
    """The per-encoder checkpoint key: ``--set whisper.model=DIR`` points only that encoder at DIR."""
    return f"{variant.name}.model"


def split_encoder_keys(overrides: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """``--set`` values split into config keys and per-encoder checkpoint keys (``<encoder>.model``)."""
    from harness.models.encoders.registry import ENCODERS

    names = {f"{name}.model" for name in ENCODERS} - {"audio.model", "text.model"}
    config = {k: v for k, v in overrides.items() if k not in names}
    return config, {k: str(v) for k, v in overrides.items() if k in names}


def requested(variant: EncoderVariant, overrides: Mapping[str, Any]) -> tuple[str, str] | None:
    """(checkpoint, key) the user named for ``variant``: its own key first, then its modality's; or None."""
    for key in (encoder_key(variant), f"{variant.modality}.model"):
        if overrides.get(key):
            return str(overrides[key]), key
    return None


def choose_checkpoints(
    variants: Mapping[str, EncoderVariant], overrides: Mapping[str, Any], smoke_test: bool, stand_ins: bool
) -> CheckpointPlan:
    """The checkpoint each pretrained encoder of a pair loads (``{"audio.model": ..., "text.model": ...}``),
    checked before Ray. A checkpoint the user named is never replaced. Otherwise: a smoke test uses tiny
    random-init checkpoints; with ``stand_ins`` (demo corpus, or ``--allow-stand-ins``) a published
    checkpoint that cannot load gets a real-size random-init stand-in; without, it raises."""
    from harness.models.tiny import ensure_checkpoint

    out, stand_in = {}, False
    for modality, variant in variants.items():
        if not variant.pretrained:
            continue
        named = requested(variant, overrides)
        if named is not None:
            out[f"{modality}.model"] = resolve_checkpoint(variant, *named)
        elif smoke_test:
            out[f"{modality}.model"], stand_in = str(ensure_checkpoint(variant, "tiny")), True
        elif not stand_ins:
            out[f"{modality}.model"] = resolve_checkpoint(variant, variant.checkpoint, encoder_key(variant))
        else:
            choice = checkpoint_or_stand_in(variant)  # resolved once per process, a stand-in announced once
            out[f"{modality}.model"], stand_in = choice.path, stand_in or choice.stand_in
    return CheckpointPlan(out, stand_in)


def require_checkpoints(
    variants: Iterable[EncoderVariant], overrides: Mapping[str, Any], demo: bool, allow_stand_ins: bool
) -> tuple[str, ...]:
    """Call once before Ray with every encoder of a run. Returns the published checkpoints that random-init
    stand-ins will replace (only on the demo corpus or with ``allow_stand_ins``; empty when all load).
    Raises ``MissingCheckpointsError``: one line naming every checkpoint that cannot load and the
    ``hf download`` commands that fetch them; a checkpoint the user named that cannot load raises its own
    ``ConfigError``."""
    missing: dict[str, str] = {}  # checkpoint -> the encoders that need it
    seen: set[str] = set()
    for variant in variants:
        if not variant.pretrained or variant.name in seen:
            continue
        seen.add(variant.name)
        named = requested(variant, overrides)
        if named is not None:
            resolve_checkpoint(variant, *named)
            continue
        try:
            resolve_checkpoint(variant, variant.checkpoint, encoder_key(variant))
        except ConfigError:
            missing[variant.checkpoint] = ", ".join(filter(None, [missing.get(variant.checkpoint), variant.name]))
    if missing and not (demo or allow_stand_ins):
        status = hub_status()
        names = "; ".join(f"{c} ({e})" for c, e in missing.items())
        where = "not in the local Hugging Face cache" + ("" if status.reachable else f" and {status.reason}")
        fetch = " && ".join(f"hf download {c}" for c in missing)
        raise MissingCheckpointsError(
            f"missing pretrained checkpoint(s), {where}: {names}. Fetch them ({fetch}), or pass "
            "--set <encoder>.model=DIR per encoder, or --allow-stand-ins for random-init stand-ins "
            "(scores mean nothing)"
        )
    return tuple(missing)
