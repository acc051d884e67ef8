"""The registry of model pairs. A pair names its audio and text encoders and its search space.

Adding a pair is one line here plus one YAML file in ``harness/search_spaces/``, or no line at all:
``compose_grid(audio=[...], text=[...])`` composes the fused pairs of a grid and their unimodal baselines
from registered encoders, each pair's space the shared base, the fusion block and each encoder's fragment
(``search_spaces/_<encoder>.yaml``), written once under the cache as a file of ``include:`` lines.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from harness.config import did_you_mean
from harness.errors import UserError
from harness.models.encoders.registry import get_encoder
from harness.models.variants import EncoderVariant

SEARCH_SPACES = Path(__file__).resolve().parent.parent / "search_spaces"
# Registered encoders whose fragment file has another name (the seed's pairs' spelling).
FRAGMENT_NAMES = {"cnn_bilstm": "_cnnbilstm.yaml"}
ENCODER_LR = {"type": "loguniform", "low": 1.0e-5, "high": 3.0e-4}


@dataclass(frozen=True)
class PairSpec:
    name: str
    audio: str | None  # registered encoder name, or None for a text-only model
    text: str | None
    space: str  # YAML file in search_spaces/

    def __post_init__(self) -> None:
        if self.audio is None and self.text is None:
            raise ValueError(f"pair {self.name!r} has no encoder")
        for modality in ("audio", "text"):
            name = getattr(self, modality)
            if name is not None and get_encoder(name).modality != modality:
                raise ValueError(
                    f"pair {self.name!r}: {name!r} is a {get_encoder(name).modality} encoder, not a {modality} one"
                )

    @property
    def encoders(self) -> dict[str, str]:
        return {m: e for m, e in (("audio", self.audio), ("text", self.text)) if e is not None}

    @property
    def variants(self) -> dict[str, EncoderVariant]:
        return {m: get_encoder(e) for m, e in self.encoders.items()}

    @property
    def space_path(self) -> Path:
        return SEARCH_SPACES / self.space  # an absolute ``space`` (a composed pair's) stays as it is

    @property
    def is_fused(self) -> bool:
        return len(self.encoders) == 2


PAIRS: dict[str, PairSpec] = {}


def register_pair(pair: PairSpec) -> PairSpec:
    PAIRS[pair.name] = pair
    return pair


for _pair in [
    PairSpec("cnnbilstm_bilstm", audio="cnn_bilstm", text="bilstm", space="cnnbilstm_bilstm.yaml"),
    PairSpec("cnnbilstm_albert", audio="cnn_bilstm", text="albert", space="cnnbilstm_albert.yaml"),
    PairSpec("wav2vec_bilstm", audio="wav2vec2", text="bilstm", space="wav2vec_bilstm.yaml"),
    PairSpec("wav2vec_albert", audio="wav2vec2", text="albert", space="wav2vec_albert.yaml"),
    PairSpec("wavlm_roberta", audio="wavlm", text="roberta", space="wavlm_roberta.yaml"),
    PairSpec("hubert_bilstm", audio="hubert", text="bilstm", space="hubert_bilstm.yaml"),
    # unimodal baselines: the gain from fusion is measured against these
    PairSpec("cnnbilstm", audio="cnn_bilstm", text=None, space="cnnbilstm.yaml"),
    PairSpec("wav2vec", audio="wav2vec2", text=None, space="wav2vec.yaml"),
    PairSpec("wavlm", audio="wavlm", text=None, space="wavlm.yaml"),
    PairSpec("hubert", audio="hubert", text=None, space="hubert.yaml"),
    PairSpec("bilstm", audio=None, text="bilstm", space="bilstm.yaml"),
    PairSpec("albert", audio=None, text="albert", space="albert.yaml"),
    PairSpec("roberta", audio=None, text="roberta", space="roberta.yaml"),
]:
    register_pair(_pair)


# The original study's 2x2 small/large grid and its unimodal baselines (the demo benchmark's default).
GRID = (
    "cnnbilstm_bilstm",
    "cnnbilstm_albert",
    "wav2vec_bilstm",
    "wav2vec_albert",
    "cnnbilstm",
    "wav2vec",
    "bilstm",
    "albert",
)


class UnknownPairError(UserError):
    pass


def get_pair(name: str) -> PairSpec:
    if name not in PAIRS and _composed(name) is None:
        raise UnknownPairError(
            f"unknown pair {name!r}{did_you_mean(name, list(PAIRS))}; known pairs: {', '.join(PAIRS)}"
        )
    return PAIRS[name]


def unimodal_baseline(pair: PairSpec, modality: str) -> PairSpec | None:
    """The registered single-encoder pair using ``pair``'s encoder of ``modality`` (fusion-gain baseline)."""
    encoder = pair.encoders.get(modality)
    return next((p for p in PAIRS.values() if not p.is_fused and p.encoders == {modality: encoder}), None)


class GridError(UserError):
    pass


def fragment(encoder: str) -> Path | None:
    """An encoder's search-space fragment (its knobs: fine-tuning mode, LoRA rank ...), if it has one."""
    path = SEARCH_SPACES / FRAGMENT_NAMES.get(encoder, f"_{encoder}.yaml")
    return path if path.exists() else None


def _encoder_lr_conditions(fragments: list[Path]) -> list[dict]:
    """The ``when`` of each fragment's ``encoder_lr``: a composed pair searches it when any of them holds."""
    from harness.safe_yaml import decode, load  # the fragment's raw YAML: models sit below tune's space loader

    conditions = []
    for path in fragments:
        data = load(decode(path.read_bytes(), str(path)), str(path)) or {}
        when = (data.get("search") or {}).get("encoder_lr", {}).get("when")
        for condition in when if isinstance(when, list) else [when] if when else []:
            conditions.append({k: list(v) if isinstance(v, list) else [v] for k, v in condition.items()})
    return conditions


def compose_pair(audio: str | None, text: str | None, cache_dir: str | Path | None = None) -> str:
    """Register (once) the pair of encoders ``audio`` and ``text`` (either may be None) and return its name:
    a registered pair over the same encoders keeps its own name and space."""
    wanted = {m: e for m, e in (("audio", audio), ("text", text)) if e is not None}
    for modality, name in wanted.items():
        if get_encoder(name).modality != modality:
            raise GridError(f"--grid {modality}={name}: {name} is a {get_encoder(name).modality} encoder")
    existing = next((p for p in PAIRS.values() if p.encoders == wanted), None)
    if existing is not None:
        return existing.name
    name = "_".join(wanted.values())
    if name in PAIRS:
        raise GridError(f"--grid: pair name {name!r} is taken by a pair over {PAIRS[name].encoders}")
    fragments = [f for f in (fragment(e) for e in wanted.values()) if f is not None]
    includes = [str(SEARCH_SPACES / "_base.yaml")]
    if len(wanted) == 2:
        includes.append(str(SEARCH_SPACES / "_fusion.yaml"))
    includes += [str(f) for f in fragments]
    space: dict = {"include": includes}
    conditions = _encoder_lr_conditions(fragments)
    if len(conditions) > 1:  # both encoders' fine-tuning conditions, not only the last fragment's
        space["search"] = {"encoder_lr": ENCODER_LR | {"when": conditions}}
    from harness.paths import default_cache_dir

    folder = Path(cache_dir or default_cache_dir()) / "composed_spaces"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    text_ = "# composed by harness.models.pairs.compose_grid; do not edit\n" + yaml.safe_dump(space, sort_keys=False)
    if not path.exists() or path.read_text() != text_:
        tmp = path.with_suffix(f".tmp{id(space)}")
        tmp.write_text(text_)
        tmp.replace(path)
    # Ray workers import a fresh registry: they find a composed pair by name here (``get_pair``).
    (folder / f"{name}.pair.yaml").write_text(yaml.safe_dump({"audio": audio, "text": text}))
    register_pair(PairSpec(name, audio=audio, text=text, space=str(path)))
    return name


def _composed(name: str) -> PairSpec | None:
    """A pair ``compose_pair`` registered in another process of this machine (a Ray worker's driver)."""
    from harness.paths import default_cache_dir

    folder = Path(default_cache_dir()) / "composed_spaces"
    found = folder / f"{name}.pair.yaml"
    if not found.is_file() or not re.fullmatch(r"[A-Za-z0-9_]+", name):
        return None
    encoders = yaml.safe_load(found.read_text())
    return register_pair(PairSpec(name, encoders["audio"], encoders["text"], space=str(folder / f"{name}.yaml")))


def stored_pair(name: str) -> PairSpec | None:
    """The pair a stored run names, registered: a registered or composed pair, or one composed anew from its
    name (``AUDIO_TEXT``, or one encoder's name for its baseline), so that a report read on another machine,
    or with another cache, knows a ``--grid`` run's pairs; None when the name is neither."""
    if name in PAIRS or _composed(name) is not None:
        return PAIRS[name]
    from harness.models.encoders.registry import ENCODERS

    def modality(encoder: str) -> str | None:
        return ENCODERS[encoder].modality if encoder in ENCODERS else None

    splits: list[tuple[str | None, str | None]] = []
    if modality(name):  # one encoder: its unimodal baseline
        splits.append((name, None) if modality(name) == "audio" else (None, name))
    for cut in (m.start() for m in re.finditer("_", name)):
        if modality(name[:cut]) == "audio" and modality(name[cut + 1 :]) == "text":
            splits.append((name[:cut], name[cut + 1 :]))
    if len(splits) != 1:
        return None
    composed = compose_pair(*splits[0])
    return PAIRS[composed] if composed == name else None


def compose_grid(audio: Sequence[str], text: Sequence[str], cache_dir: str | Path | None = None) -> tuple[str, ...]:
    """The pairs of an audio x text grid: every fused pair (the first audio and text encoders are the small
    ones: small-small first, then each swap to large, then large-large ...), then each encoder's unimodal
    baseline. Registers the pairs not yet registered (``compose_pair``); returns their names."""
    if not audio or not text:
        raise GridError("--grid needs audio=ENC[,ENC...] and text=ENC[,ENC...]")
    for names in (audio, text):
        if len(set(names)) < len(names):
            raise GridError(f"--grid names an encoder twice: {','.join(names)}")
    cells = [(i + j, i, a, t) for i, a in enumerate(audio) for j, t in enumerate(text)]
    fused = [compose_pair(a, t, cache_dir) for *_, a, t in sorted(cells)]
    baselines = [compose_pair(a, None, cache_dir) for a in audio] + [compose_pair(None, t, cache_dir) for t in text]
    return tuple(fused + baselines)


def parse_grid(items: Sequence[str]) -> dict[str, list[str]]:
    """``["audio=cnn_bilstm,whisper", "text=bilstm,qwen2_5"]`` -> {"audio": [...], "text": [...]}."""
    grid: dict[str, list[str]] = {}
    for item in items:
        modality, sep, names = item.partition("=")
        if not sep or modality not in ("audio", "text") or modality in grid:
            raise GridError(f"--grid expects audio=ENC,ENC text=ENC,ENC; got {item!r}")
        grid[modality] = [get_encoder(n.strip()).name for n in names.split(",") if n.strip()]
    if set(grid) != {"audio", "text"}:
        raise GridError("--grid needs both audio=... and text=...")
    return grid
