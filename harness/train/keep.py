"""Kept models: one fold's trained model, with everything needed to use it on new audio and text.

The final stage keeps, per test fold, the model of the selected config's first seed (``--keep-models``,
on by default; search trials never keep one) in the run's books::

    STORAGE/<run>/harness/models/fold<k>/model.pt    the weights: every trained tensor and buffer (the
                                                     CNN-BiLSTM's normalisation statistics are buffers); a
                                                     frozen pretrained backbone is left out and loaded
                                                     from its checkpoint (config ``audio.model`` ...)
    STORAGE/<run>/harness/models/fold<k>/kept.json   ``KeptInfo``: pair, fold, seed, the flat config, the
                                                     class set, word vocabularies, the feature specs

``load_kept`` rebuilds the model from these alone (no corpus): the encoders are constructed from the
config and the stored vocabularies, then the weights are loaded strictly (only a frozen backbone's
tensors may be missing, and only when its checkpoint supplies them). ``features_of`` computes a raw
utterance's inputs exactly as the feature cache does, so a kept model's probabilities for a corpus
utterance equal the final stage's stored ones.
"""

from __future__ import annotations

import io
import json
import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from harness.config import TrialConfig
from harness.corpus.dialogs import DialogTurns
from harness.errors import UserError
from harness.features import Features
from harness.features.frontends import from_raw
from harness.models.encoders.base import Encoder
from harness.models.fusion import EmotionModel
from harness.models.pairs import get_pair
from harness.records import from_dict
from harness.store import RunStore, Storage, read_bytes, write_bytes

log = logging.getLogger(__name__)
SCHEMA = 1
MODELS = "models"  # folder in the run's books
WEIGHTS, INFO = "model.pt", "kept.json"


class KeptModelError(UserError):
    """A kept model that is missing, of another schema, or whose weights do not fit its config."""


@dataclass(frozen=True)
class KeptInfo:
    pair: str
    fold: int  # test fold (session) the model was tested on
    seed: int
    run: str
    trial_id: str
    config: dict[str, Any]  # the flat config it trained with (TrialConfig.from_flat reads it)
    classes: tuple[str, ...]  # output order of the model's probabilities
    vocabularies: dict[str, dict[str, int]] = field(default_factory=dict)  # modality -> word -> id
    features: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # modality -> role -> spec
    latency_4s_ms: float | None = None  # the fold record's latency (what the report shows)
    torch_version: str = ""
    schema: int = SCHEMA


@dataclass
class KeptModel:
    info: KeptInfo
    model: EmotionModel

    @property
    def classes(self) -> tuple[str, ...]:
        return self.info.classes


def _frozen_backbone(name: str, parameter: torch.nn.Parameter) -> bool:
    return ".backbone." in name and not parameter.requires_grad


def kept_state(model: EmotionModel) -> dict[str, torch.Tensor]:
    """Every tensor of the model except a frozen pretrained backbone's (its checkpoint holds those)."""
    frozen = {n for n, p in model.named_parameters() if _frozen_backbone(n, p)}
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items() if k not in frozen}


def model_folder(store: RunStore, fold: int) -> str:
    return f"{store.path}/harness/{MODELS}/fold{fold}"


def save_kept(store: RunStore, model: EmotionModel, info: KeptInfo) -> str:
    """Write ``model`` and ``info`` into the run's books; returns the folder."""
    folder = model_folder(store, info.fold)
    vocabularies = {m: dict(v) for m, e in model.branches.items() if (v := getattr(e, "vocabulary", None))}
    info = KeptInfo(**(asdict(info) | {"vocabularies": vocabularies, "torch_version": torch.__version__}))
    buffer = io.BytesIO()
    torch.save(kept_state(model), buffer)
    write_bytes(store.fs, f"{folder}/{WEIGHTS}", buffer.getvalue())
    write_bytes(store.fs, f"{folder}/{INFO}", json.dumps(asdict(info), indent=1, default=str).encode())
    log.info("kept fold %d's model (seed %d) in %s", info.fold, info.seed, folder)
    return folder


def kept_folds(store: RunStore) -> list[int]:
    """The folds with a kept model in ``store``."""
    import pyarrow.fs as pafs

    root = f"{store.path}/harness/{MODELS}"
    if store.fs.get_file_info(root).type != pafs.FileType.Directory:
        return []
    names = [i.base_name for i in store.fs.get_file_info(pafs.FileSelector(root))]
    return sorted(int(n[4:]) for n in names if n.startswith("fold") and n[4:].isdigit())


def _rebuild_encoder(modality: str, variant: Any, cfg: TrialConfig, state: dict, info: KeptInfo) -> Encoder:
    """An encoder of the right shape, from the config, the stored vocabulary and the weights' shapes.

    Encoders whose constructor needs figures computed from training data are built from what was kept;
    the others (pretrained ones) build from the config alone."""
    from harness.models.encoders.bilstm import WordBiLstm
    from harness.models.encoders.cnn_bilstm import CnnBiLstm

    cls = variant.cls
    if issubclass(cls, WordBiLstm):
        if modality not in info.vocabularies:
            raise KeptModelError(f"kept model of {info.pair} fold {info.fold}: no {modality} vocabulary stored")
        return cls(cfg, info.vocabularies[modality])
    if issubclass(cls, CnnBiLstm):
        mean, std = state[f"encoders.{modality}.mean"], state[f"encoders.{modality}.std"]
        return cls(cfg, int(mean.shape[0]), mean.numpy(), std.numpy())
    return variant.build(cfg, {}, np.empty(0, dtype=np.int64))


def build_kept(info: KeptInfo, state: dict[str, torch.Tensor]) -> EmotionModel:
    """The model of ``info`` with ``state`` loaded (eval mode, CPU)."""
    pair = get_pair(info.pair)
    cfg = TrialConfig.from_flat(info.config)
    encoders = {m: _rebuild_encoder(m, v, cfg, state, info) for m, v in pair.variants.items()}
    # A context model reads the turn order of the utterances it predicts (``predict_table`` sets it).
    dialogs = (
        DialogTurns.from_manifest(_as_dialogs(pd.DataFrame({"utterance_id": ["u"]}))) if cfg.context.enabled else None
    )
    model = EmotionModel(encoders, cfg, len(info.classes), dialogs)
    missing, unexpected = model.load_state_dict(state, strict=False)
    frozen = {n for n, p in model.named_parameters() if _frozen_backbone(n, p)}
    if unexpected or set(missing) - frozen:
        raise KeptModelError(
            f"kept model of {info.pair} fold {info.fold}: weights do not fit its config (missing "
            f"{sorted(set(missing) - frozen)[:3]}, unexpected {sorted(unexpected)[:3]})"
        )
    return model.eval()


def load_kept(store: RunStore, fold: int) -> KeptModel:
    """Fold ``fold``'s kept model of the run in ``store``."""
    folder = model_folder(store, fold)
    try:
        raw = json.loads(read_bytes(store.fs, f"{folder}/{INFO}"))
        weights = read_bytes(store.fs, f"{folder}/{WEIGHTS}")
    except (OSError, FileNotFoundError):
        found = kept_folds(store)
        raise KeptModelError(
            f"{store.uri}: no kept model for fold {fold} (kept: {', '.join(map(str, found)) or 'none'}; "
            "the final stage keeps them unless --no-keep-models)"
        ) from None
    if raw.get("schema") != SCHEMA:
        raise KeptModelError(f"{folder}/{INFO}: schema {raw.get('schema')!r}, this harness reads {SCHEMA}")
    info = from_dict(KeptInfo, raw)
    state = torch.load(io.BytesIO(weights), map_location="cpu", weights_only=True)
    return KeptModel(info, build_kept(info, state))


def features_for(kept: KeptModel, audios: list[np.ndarray], texts: list[str]) -> dict[str, dict[str, Features]]:
    """``Features`` per encoder input of raw utterances (float waveforms at 16 kHz and their transcripts),
    one row each, computed by the functions the feature cache uses. A frozen encoder's cached layer means
    are not computed: the live path runs its backbone instead."""
    cfg = TrialConfig.from_flat(kept.info.config)
    ids = [str(i) for i in range(len(audios))]
    out: dict[str, dict[str, Features]] = {}
    for modality, variant in get_pair(kept.info.pair).variants.items():
        out[modality] = {}
        for role, spec in variant.feature_specs(cfg).items():
            if spec.kind == "layer_means":
                continue
            extract = from_raw(spec)  # once per spec: a tokenizer loads here
            values = [extract(audio, text) for audio, text in zip(audios, texts)]
            if values and isinstance(values[0], list):
                out[modality][role] = Features(spec, ids, tokens=values)
            else:
                arrays = [np.asarray(v) for v in values]
                offsets = np.r_[0, np.cumsum([len(a) for a in arrays])].astype(np.int64)
                out[modality][role] = Features(spec, ids, values=np.concatenate(arrays), offsets=offsets)
    return out


DIALOG_COLUMNS = ("dialog", "start", "end", "speaker")


def _as_dialogs(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with the columns a turn order needs; an utterance without them is a dialog of its own."""
    out = table.copy()
    if "dialog" not in out:
        out["dialog"] = out["utterance_id"].astype(str)
    for column, default in (("start", 0.0), ("end", 0.0), ("speaker", "")):
        if column not in out:
            out[column] = default
    return out


def predict_table(kept: KeptModel, table: pd.DataFrame, audios: list[np.ndarray], batch_size: int = 16) -> np.ndarray:
    """Class probabilities [rows, classes] for ``table``'s utterances (``utterance_id``, ``text``; for a
    dialogue-context model also ``dialog``, ``start``, ``end``, ``speaker``: its windows are read among
    these rows, as the final stage read them among the test session's, so give whole dialogs), batched as
    the final stage batches them (scores do not depend on batch-mates)."""
    from harness.models.data import PairData
    from harness.train.batching import predict

    table = _as_dialogs(table.reset_index(drop=True))
    features = features_for(kept, audios, [str(t) for t in table["text"]])
    data = PairData(table, np.zeros(len(table), dtype=np.int64), features, kept.classes)
    if kept.model.context is not None:
        kept.model.dialogs = data.dialogs
    with torch.no_grad():
        return predict(kept.model, data, np.arange(len(table)), torch.device("cpu"), batch_size)


def collate_raw(kept: KeptModel, audio: np.ndarray, text: str) -> dict:
    """The model's input batch (one row, the current turn only) for a raw utterance, on the CPU."""
    features = features_for(kept, [audio], [text])
    return kept.model.collate(features, np.array([0]), live=True, context=False)


def probabilities(kept: KeptModel, audio: np.ndarray, text: str) -> np.ndarray:
    """Class probabilities (in ``kept.classes`` order) for one raw utterance (a dialog of its own)."""
    return predict_table(kept, pd.DataFrame({"utterance_id": ["input"], "text": [text]}), [audio])[0]


def find_kept_run(storage: Storage, run: str, pair: str) -> RunStore:
    """The run holding ``pair``'s kept models: ``run`` itself (a run folder), or the final stage of the
    benchmark named ``run`` (``PAIR_SOURCE[_SETTING]_RUN_final``)."""
    direct = storage.run(run)
    if kept_folds(direct):
        return direct
    found = [r for r in storage.runs() if r.name.startswith(f"{pair}_") and r.name.endswith(f"_{run}_final")]
    found = [r for r in found if kept_folds(r)]
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        names = ", ".join(r.name for r in found)
        raise KeptModelError(f"--run {run} --pair {pair}: several runs keep models ({names}); name one as --run")
    raise KeptModelError(
        f"{storage.uri}: no run {run!r} with kept models for pair {pair} (looked for {run} and "
        f"{pair}_*_{run}_final; the benchmark's final stage keeps them unless --no-keep-models)"
    )
