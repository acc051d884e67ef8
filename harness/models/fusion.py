"""A pair's model: one or two upstream encoders, a fusion, optionally a dialogue-context reader, and a head
over the class set (six classes by default)."""

from __future__ import annotations

from typing import cast

import numpy as np
import torch
from torch import nn

from harness.config import TrialConfig
from harness.corpus import EMOTIONS
from harness.corpus.dialogs import DialogTurns
from harness.features import Features
from harness.models.context import TurnContext, window_plan
from harness.models.data import PairData
from harness.models.encoders.base import MODALITIES, Embedded, Encoder, masked_mean
from harness.models.pairs import PairSpec


class EmotionModel(nn.Module):
    """``forward(batch)`` = ``forward_embedded(embed(batch))``; the split lets attributions and modality
    ablations act on each branch's input representation.

    With ``cfg.context`` enabled, ``collate`` encodes the turns of each target's window (``dialogs`` says
    which) and ``forward_embedded`` reads them through ``TurnContext``; without it the model is exactly
    the utterance-level one (same parameters, same outputs).
    """

    def __init__(
        self,
        encoders: dict[str, Encoder],
        cfg: TrialConfig,
        n_classes: int = len(EMOTIONS),
        dialogs: DialogTurns | None = None,
    ):
        super().__init__()
        self.encoders = nn.ModuleDict(encoders)
        self.fusion = cfg.fusion if len(encoders) == 2 else "single"
        dim = cfg.fusion_dim
        self.project = nn.ModuleDict({m: nn.Linear(e.out_dim, dim) for m, e in encoders.items()})
        if self.fusion == "gated":
            self.gate = nn.Linear(2 * dim, dim)
        if self.fusion == "attention":
            heads = 4 if dim % 4 == 0 else 1
            self.attend = nn.ModuleDict({m: nn.MultiheadAttention(dim, heads, batch_first=True) for m in MODALITIES})
        width = {"single": dim, "concat": 2 * dim, "gated": dim, "attention": 4 * dim}[self.fusion]
        self.head = nn.Sequential(
            nn.Dropout(cfg.dropout),
            nn.Linear(width, dim),
            nn.GELU(),
            nn.Dropout(cfg.dropout),
            nn.Linear(dim, n_classes),
        )
        self.context: TurnContext | None = None
        self.dialogs = dialogs
        if cfg.context.enabled:  # created after the head: a context-free model draws the same initial weights
            if dialogs is None:
                raise ValueError("a model with dialogue context needs the dialogs' turn order (dialogs=...)")
            self.context = TurnContext(width, cfg.context, cfg.dropout)

    @property
    def modalities(self) -> list[str]:
        return list(self.encoders)

    @property
    def branches(self) -> dict[str, Encoder]:
        """The encoders by modality, typed (``nn.ModuleDict`` hands back plain modules)."""
        return {m: cast(Encoder, e) for m, e in self.encoders.items()}

    @property
    def n_classes(self) -> int:
        return int(cast(nn.Linear, self.head[-1]).out_features)

    def collate(
        self, features: dict[str, dict[str, Features]], rows: np.ndarray, live: bool = False, context: bool = True
    ) -> dict:
        """Padded inputs for the target ``rows``. A context model collates the distinct turns of their
        windows plus a ``context`` plan; ``context=False`` collates the targets alone (current turn only)."""
        if self.context is None or not context:
            return {m: e.collate(features[m], rows, live) for m, e in self.branches.items()}
        assert self.dialogs is not None  # a context model is built with its dialogs
        windows = self.dialogs.windows(rows, self.context.past, self.context.future)
        unique, plan = window_plan(windows)
        return {m: e.collate(features[m], unique, live) for m, e in self.branches.items()} | {"context": plan}

    def input_lengths(self, features: dict[str, dict[str, Features]]) -> np.ndarray:
        """Per manifest row, the summed length of every input this model reads: what padding cost grows with."""
        return np.sum([f.lengths() for m in self.encoders for f in features[m].values()], axis=0)

    def embed(self, batch: dict) -> dict[str, Embedded]:
        return {m: e.embed(batch[m]) for m, e in self.branches.items()}

    def forward_embedded(
        self, embedded: dict[str, Embedded], drop: str | None = None, context: dict[str, torch.Tensor] | None = None
    ) -> torch.Tensor:
        """Logits; ``context`` is a batch's window plan (None: each embedded utterance is its own target,
        read with no other turn)."""
        fused = self.fuse(embedded, drop)
        if self.context is not None:
            fused = self.context(fused, context)
        return self.head(fused)

    def fuse(self, embedded: dict[str, Embedded], drop: str | None = None) -> torch.Tensor:
        """One fused vector per embedded utterance."""
        seqs, masks, pooled = {}, {}, {}
        for m, encoder in self.branches.items():
            encoded = encoder.encode(embedded[m])
            seq = self.project[m](encoded.seq) * encoded.mask.unsqueeze(-1)
            if m == drop:  # modality ablation: the branch contributes nothing
                seq = torch.zeros_like(seq)
            seqs[m], masks[m], pooled[m] = seq, encoded.mask, masked_mean(seq, encoded.mask)
        if self.fusion == "single":
            fused = next(iter(pooled.values()))
        elif self.fusion == "concat":
            fused = torch.cat([pooled["audio"], pooled["text"]], -1)
        elif self.fusion == "gated":
            gate = torch.sigmoid(self.gate(torch.cat([pooled["audio"], pooled["text"]], -1)))
            fused = gate * pooled["audio"] + (1 - gate) * pooled["text"]
        else:  # cross-modal attention: each modality's pooled vector queries the other's sequence
            crossed = []
            for query, key in (("audio", "text"), ("text", "audio")):
                out, _ = self.attend[query](
                    pooled[query][:, None], seqs[key], seqs[key], key_padding_mask=~masks[key], need_weights=False
                )
                crossed.append(out[:, 0])
            fused = torch.cat([pooled["audio"], pooled["text"], *crossed], -1)
        return fused

    def forward(self, batch: dict, drop: str | None = None) -> torch.Tensor:
        return self.forward_embedded(self.embed(batch), drop, batch.get("context"))

    def pretrained_parameters(self) -> list[nn.Parameter]:
        return [p for e in self.branches.values() for p in e.pretrained_parameters()]


def build_model(
    pair: PairSpec,
    cfg: TrialConfig,
    features: dict[str, dict[str, Features]],
    train_rows: np.ndarray,
    n_classes: int = len(EMOTIONS),
    dialogs: DialogTurns | None = None,
) -> EmotionModel:
    encoders = {m: variant.build(cfg, features[m], train_rows) for m, variant in pair.variants.items()}
    return EmotionModel(encoders, cfg, n_classes, dialogs)


def build_pair_model(pair: PairSpec, cfg: TrialConfig, data: PairData, train_rows: np.ndarray) -> EmotionModel:
    """``build_model`` for ``data``: its class set and, when ``cfg`` reads context, its dialogs' turn order."""
    return build_model(
        pair, cfg, data.features, train_rows, len(data.classes), data.dialogs if cfg.context.enabled else None
    )
