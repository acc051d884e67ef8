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
* a checkpoint replaced by a random-init stand-in is announced once (``checkpoint_or_stand_in``).

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
from dataclasses import dataclass
from pathlib import Path

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


def resolve_checkpoint(variant: EncoderVariant, name: str) -> str:
    """Check a checkpoint before Ray starts: a local folder must hold a loadable checkpoint; a hub name must
    be cached or, when the hub is reachable, downloadable. Raises ``ConfigError`` with one line naming the
    checkpoint, the key and the fix. A hub name's answer is kept for the rest of the process."""
    from harness.models.encoders.pretrained import checkpoint_problem

    key = f"{variant.modality}.model"
    path = Path(name).expanduser()
    if name.startswith(("/", ".", "~")) or path.exists():
        if not path.is_dir():
            raise ConfigError(checkpoint_problem(name, key, "the folder does not exist"))
        if not (path / "config.json").exists():
            raise ConfigError(checkpoint_problem(name, key, "the folder has no config.json"))
        problem = local_checkpoint_problem(path)
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
            "download them once (huggingface-cli download %s) or pass --set %s.model=/path/to/checkpoint",
            variant.checkpoint,
            "" if status.reachable else f" and the hub is not reachable ({status.reason})",
            variant.checkpoint,
            variant.modality,
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
