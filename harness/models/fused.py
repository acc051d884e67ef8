"""K copies of one model trained as one (HFTA, Wang et al. MLSys 2021): the final stage's seeds of a fold.

A final-stage fold trains S seeds of one config. On a GPU a step of the small pair is bound by the host
(about 2,000 dispatched operations for 20 ms of arithmetic), so S models cost S times the host work. Fused,
the S members are one model whose every operation carries all of them:

* convolutions: one grouped convolution (group k reads member k's input channels, writes its outputs);
* LSTMs: one LSTM per direction with block-diagonal weights (member k's gates read only member k's inputs
  and hidden state); the off-diagonal blocks start at zero and their gradients are masked to zero, so
  AdamW (elementwise, decoupled decay) keeps them exactly zero;
* linear layers: batched matrix products over a member axis; word embeddings: one table of K vocabularies;
* per-member gradient clipping (``clip_member_gradients``) and, AdamW being elementwise, per-member
  optimiser state.

Activations carry the members on a leading axis ``[K, B, ...]`` (the LSTMs see ``[B, T, K*features]``).
Each member reads its own batch (its own seed's batch order): inputs are padded to the step's largest batch
and length, which changes nothing the models read (masked BiLSTMs, padding re-zeroed after each conv block,
masked pooling), and padded rows carry no loss. So member k's parameters follow exactly the path of the
separately trained model (tested in float64 to 1e-10), and ``member_state(k)`` gives back its ordinary
``EmotionModel`` state dict.

What fuses: the from-scratch encoders (``CnnBiLstm``, ``WordBiLstm``) with single, concat or gated fusion,
without dialogue context. ``why_not_fused`` names the reason for anything else (pretrained backbones,
cross-modal attention, context readers); the caller then trains one model per seed.
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from harness.models.encoders.base import Encoded, Encoder, MaskedBiLstm
from harness.models.encoders.bilstm import PAD, WordBiLstm
from harness.models.encoders.cnn_bilstm import POOL, CnnBiLstm
from harness.models.fusion import EmotionModel


def why_not_fused(members: list[EmotionModel]) -> str | None:
    """None when these models fuse exactly, else the reason they do not (for the log)."""
    first = members[0]
    if first.context is not None:
        return "dialogue-context models collate whole windows per batch"
    if first.fusion == "attention":
        return "cross-modal attention fusion has no batched form here"
    for modality, encoder in first.branches.items():
        if type(encoder) not in FUSED_ENCODERS:
            return (
                f"the {modality} encoder {type(encoder).__name__} has no fused form (pretrained backbones do not fuse)"
            )
    shapes = {k: v.shape for k, v in first.state_dict().items()}
    for other in members[1:]:
        if {k: v.shape for k, v in other.state_dict().items()} != shapes:
            return "the members differ in structure"
        for name, buffer in first.named_buffers():
            if not torch.equal(buffer, dict(other.named_buffers())[name]):
                return f"the members' fold statistics differ ({name})"
        for modality, encoder in first.branches.items():
            if getattr(encoder, "vocabulary", None) != getattr(other.branches[modality], "vocabulary", None):
                return "the members' vocabularies differ"
    return None


def _tensor(module: nn.Module, name: str) -> torch.Tensor:
    """A module's parameter or buffer by name, typed (``nn.Module.__getattr__`` is not)."""
    return cast(torch.Tensor, getattr(module, name))


def _linears(layers: list[nn.Module]) -> list[nn.Linear]:
    return [cast(nn.Linear, layer) for layer in layers]


class MemberLinear(nn.Module):
    """K linear layers over ``[K, ..., in]``: one batched matrix product."""

    def __init__(self, layers: list[nn.Linear]):
        super().__init__()
        self.weight = nn.Parameter(torch.stack([layer.weight.detach() for layer in layers]))  # [K, out, in]
        self.bias = nn.Parameter(torch.stack([layer.bias.detach() for layer in layers]))  # [K, out]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, size = x.shape[0], x.shape[-1]
        flat = x.reshape(k, -1, size)
        out = torch.baddbmm(self.bias.unsqueeze(1).to(flat.dtype), flat, self.weight.transpose(1, 2).to(flat.dtype))
        return out.reshape(*x.shape[:-1], -1)

    def member_state(self, k: int, prefix: str) -> dict[str, torch.Tensor]:
        return {f"{prefix}weight": self.weight[k], f"{prefix}bias": self.bias[k]}


class BlockLstm(nn.Module):
    """K single-layer batch-first LSTMs as one LSTM with block-diagonal weights: ``[B, T, K*I] -> [B, T, K*H]``.

    PyTorch stacks the gates (i, f, g, o) on the weights' rows, so row ``g*K*H + k*H + h`` is member k's
    unit h of gate g; its block of columns is member k's inputs (``k*I:(k+1)*I``) or hidden state."""

    gate_rows = 4

    ih_mask: torch.Tensor
    hh_mask: torch.Tensor

    def __init__(self, lstms: list[nn.LSTM]):
        super().__init__()
        k, size, hidden = len(lstms), lstms[0].input_size, lstms[0].hidden_size
        self.k, self.size, self.hidden = k, size, hidden
        dtype = _tensor(lstms[0], "weight_ih_l0").dtype
        self.lstm = nn.LSTM(k * size, k * hidden, batch_first=True, dtype=dtype)
        ih = torch.zeros(4, k, hidden, k, size, dtype=dtype)
        hh = torch.zeros(4, k, hidden, k, hidden, dtype=dtype)
        for m, lstm in enumerate(lstms):
            ih[:, m, :, m, :] = _tensor(lstm, "weight_ih_l0").detach().view(4, hidden, size)
            hh[:, m, :, m, :] = _tensor(lstm, "weight_hh_l0").detach().view(4, hidden, hidden)
        with torch.no_grad():
            _tensor(self.lstm, "weight_ih_l0").copy_(ih.view(4 * k * hidden, k * size))
            _tensor(self.lstm, "weight_hh_l0").copy_(hh.view(4 * k * hidden, k * hidden))
            for name in ("bias_ih_l0", "bias_hh_l0"):
                stacked = torch.stack([_tensor(lstm, name).detach().view(4, hidden) for lstm in lstms], 1)
                _tensor(self.lstm, name).copy_(stacked.reshape(-1))
        eye = torch.eye(k, dtype=dtype)
        self.register_buffer("ih_mask", eye[None, :, None, :, None].expand(4, k, hidden, k, size).reshape(-1, k * size))
        self.register_buffer(
            "hh_mask", eye[None, :, None, :, None].expand(4, k, hidden, k, hidden).reshape(-1, k * hidden)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return out

    def mask_gradients(self) -> None:
        """Zero the gradients of the off-diagonal blocks: the members never read each other."""
        for name, mask in (("weight_ih_l0", self.ih_mask), ("weight_hh_l0", self.hh_mask)):
            weight = _tensor(self.lstm, name)
            if weight.grad is not None:
                weight.grad.mul_(mask)

    def member_state(self, k: int, prefix: str) -> dict[str, torch.Tensor]:
        h, i, n = self.hidden, self.size, self.k
        ih = _tensor(self.lstm, "weight_ih_l0").view(4, n, h, n, i)[:, k, :, k, :].reshape(4 * h, i)
        hh = _tensor(self.lstm, "weight_hh_l0").view(4, n, h, n, h)[:, k, :, k, :].reshape(4 * h, h)
        out = {f"{prefix}weight_ih_l0": ih, f"{prefix}weight_hh_l0": hh}
        for name in ("bias_ih_l0", "bias_hh_l0"):
            out[f"{prefix}{name}"] = _tensor(self.lstm, name).view(4, n, h)[:, k].reshape(-1)
        return out


def reverse_members(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """``reverse_within_lengths`` per member: ``x`` [B, T, K, F], ``lengths`` [K, B]."""
    steps = torch.arange(x.shape[1], device=x.device)[None, :, None]
    lengths = lengths.t()[:, None, :]  # [B, 1, K]
    index = torch.where(steps < lengths, lengths - 1 - steps, steps)
    return x.gather(1, index.unsqueeze(-1).expand_as(x))


class FusedMaskedBiLstm(nn.Module):
    """K ``MaskedBiLstm``: ``[B, T, K*I]`` and lengths ``[K, B]`` -> ``[K, B, T, 2H]``, padding zeroed."""

    def __init__(self, members: list[MaskedBiLstm]):
        super().__init__()
        self.forward_lstm = BlockLstm([m.forward_lstm for m in members])
        self.backward_lstm = BlockLstm([m.backward_lstm for m in members])

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[:2]
        k, hidden = self.forward_lstm.k, self.forward_lstm.hidden
        with torch.autocast(x.device.type, enabled=False):  # fp32 under autocast, as MaskedBiLstm
            x = x.to(_tensor(self.forward_lstm.lstm, "weight_ih_l0").dtype)
            forward = self.forward_lstm(x).view(b, t, k, hidden)
            reversed_x = reverse_members(x.view(b, t, k, -1), lengths).reshape(b, t, -1)
            backward = reverse_members(self.backward_lstm(reversed_x).view(b, t, k, hidden), lengths)
        seq = torch.cat([forward, backward], -1).permute(2, 0, 1, 3)  # [K, B, T, 2H]
        mask = torch.arange(t, device=x.device)[None, None, :] < lengths[..., None]
        return seq * mask.unsqueeze(-1)

    def member_state(self, k: int, prefix: str) -> dict[str, torch.Tensor]:
        return self.forward_lstm.member_state(k, f"{prefix}forward_lstm.") | self.backward_lstm.member_state(
            k, f"{prefix}backward_lstm."
        )


class FusedCnnBiLstm(nn.Module):
    """K ``CnnBiLstm`` (same fold statistics): grouped convolutions, then a block-diagonal BiLSTM."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, members: list[Encoder]):
        super().__init__()
        encoders = [m for m in members if isinstance(m, CnnBiLstm)]
        k = len(encoders)
        self.k = k
        self.register_buffer("mean", encoders[0].mean.detach().clone())
        self.register_buffer("std", encoders[0].std.detach().clone())
        self.convs = nn.ModuleList()
        for block in range(len(encoders[0].conv_blocks)):
            convs = [cast(nn.Conv1d, cast(nn.Sequential, e.conv_blocks[block])[0]) for e in encoders]
            first = convs[0]
            conv = nn.Conv1d(
                k * first.in_channels,
                k * first.out_channels,
                first.kernel_size[0],
                padding=cast(tuple[int], first.padding)[0],
                groups=k,
                dtype=first.weight.dtype,
            )
            with torch.no_grad():
                conv.weight.copy_(torch.cat([c.weight.detach() for c in convs]))
                _tensor(conv, "bias").copy_(torch.cat([_tensor(c, "bias").detach() for c in convs]))
            self.convs.append(conv)
        self.channels = convs[0].out_channels
        self.dropout = nn.Dropout(encoders[0].dropout.p)
        self.lstm = FusedMaskedBiLstm([e.lstm for e in encoders])

    def forward(self, batch: dict[str, torch.Tensor]) -> Encoded:
        frames, mask = batch["frames"], batch["mask"]  # [K, B, T, F], [K, B, T]
        k, b, t, f = frames.shape
        x = (frames - self.mean) / self.std * mask.unsqueeze(-1)
        x = x.permute(1, 0, 3, 2).reshape(b, k * f, t)
        lengths = mask.sum(-1)
        for conv in self.convs:
            x = F.max_pool1d(F.gelu(conv(x)), POOL)
            lengths = (lengths // POOL).clamp(min=1, max=x.shape[-1])
            mask = torch.arange(x.shape[-1], device=x.device)[None, None, :] < lengths[..., None]  # [K, B, T']
            x = (x.view(b, k, -1, x.shape[-1]) * mask.transpose(0, 1).unsqueeze(2)).view(b, -1, x.shape[-1])
        steps = x.shape[-1]
        x = x.view(b, k, self.channels, steps).permute(0, 3, 1, 2).reshape(b, steps, -1)
        return Encoded(self.lstm(self.dropout(x), lengths), mask)

    def member_state(self, k: int, prefix: str) -> dict[str, torch.Tensor]:
        out = {f"{prefix}mean": self.mean, f"{prefix}std": self.std}
        for block, conv in enumerate(self.convs):
            assert isinstance(conv, nn.Conv1d) and conv.bias is not None
            out[f"{prefix}conv_blocks.{block}.0.weight"] = conv.weight.view(self.k, -1, *conv.weight.shape[1:])[k]
            out[f"{prefix}conv_blocks.{block}.0.bias"] = conv.bias.view(self.k, -1)[k]
        return out | self.lstm.member_state(k, f"{prefix}lstm.")


class FusedWordBiLstm(nn.Module):
    """K ``WordBiLstm`` (same vocabulary): one embedding table of K blocks, then a block-diagonal BiLSTM."""

    offsets: torch.Tensor
    row_mask: torch.Tensor

    def __init__(self, members: list[Encoder]):
        super().__init__()
        encoders = [m for m in members if isinstance(m, WordBiLstm)]
        k, rows = len(encoders), encoders[0].embedding.num_embeddings
        self.k, self.rows = k, rows
        self.embedding = nn.Parameter(torch.cat([e.embedding.weight.detach() for e in encoders]))  # [K*V, E]
        self.register_buffer("offsets", torch.arange(k) * rows)
        row_mask = torch.ones(k * rows, 1, dtype=self.embedding.dtype)
        row_mask[self.offsets + PAD] = 0  # nn.Embedding's padding_idx: the padding row gets no gradient
        self.register_buffer("row_mask", row_mask)
        self.dropout = nn.Dropout(encoders[0].dropout.p)
        self.lstm = FusedMaskedBiLstm([e.lstm for e in encoders])

    def forward(self, batch: dict[str, torch.Tensor]) -> Encoded:
        tokens, mask = batch["tokens"], batch["mask"]  # [K, B, T]
        k, b, t = tokens.shape
        x = F.embedding(tokens + self.offsets[:, None, None], self.embedding)  # [K, B, T, E]
        x = x.permute(1, 2, 0, 3).reshape(b, t, -1)
        return Encoded(self.lstm(self.dropout(x), mask.sum(-1).clamp(min=1)), mask)

    def mask_gradients(self) -> None:
        if self.embedding.grad is not None:
            self.embedding.grad.mul_(self.row_mask)

    def member_state(self, k: int, prefix: str) -> dict[str, torch.Tensor]:
        weight = self.embedding.view(self.k, self.rows, -1)[k]
        return {f"{prefix}embedding.weight": weight} | self.lstm.member_state(k, f"{prefix}lstm.")


FUSED_ENCODERS: dict[type, type[nn.Module]] = {CnnBiLstm: FusedCnnBiLstm, WordBiLstm: FusedWordBiLstm}


class FusedEmotionModel(nn.Module):
    """K ``EmotionModel`` of one config as one: ``forward(batch)`` maps inputs ``[K, B, ...]`` (member k's
    batch at index k) to logits ``[K, B, classes]``. Build it with ``why_not_fused(members) is None``."""

    def __init__(self, members: list[EmotionModel]):
        super().__init__()
        first = members[0]
        self.k, self.fusion, self.n_classes = len(members), first.fusion, first.n_classes
        self.encoders = nn.ModuleDict(
            {m: FUSED_ENCODERS[type(e)]([mem.branches[m] for mem in members]) for m, e in first.branches.items()}
        )
        self.project = nn.ModuleDict(
            {m: MemberLinear(_linears([mem.project[m] for mem in members])) for m in first.modalities}
        )
        if self.fusion == "gated":
            self.gate = MemberLinear(_linears([mem.gate for mem in members]))
        head = first.head
        self.dropout = nn.Dropout(cast(nn.Dropout, head[0]).p)
        self.hidden = MemberLinear(_linears([mem.head[1] for mem in members]))
        self.out = MemberLinear(_linears([mem.head[4] for mem in members]))
        # a parameter's member axis: [G, K, -1] views, G = 4 stacked gates for LSTM tensors, else 1
        gated = {id(p) for module in self.modules() if isinstance(module, BlockLstm) for p in module.parameters()}
        self.groups = {id(p): BlockLstm.gate_rows if id(p) in gated else 1 for p in self.parameters()}

    def forward(self, batch: dict) -> torch.Tensor:
        pooled = {}
        for m, encoder in self.encoders.items():
            encoded: Encoded = encoder(batch[m])
            seq = self.project[m](encoded.seq) * encoded.mask.unsqueeze(-1)
            weights = encoded.mask.to(seq.dtype).unsqueeze(-1)
            pooled[m] = (seq * weights).sum(2) / weights.sum(2).clamp(min=1.0)  # masked_mean per member
        if self.fusion == "single":
            fused = next(iter(pooled.values()))
        elif self.fusion == "concat":
            fused = torch.cat([pooled["audio"], pooled["text"]], -1)
        else:  # gated
            gate = torch.sigmoid(self.gate(torch.cat([pooled["audio"], pooled["text"]], -1)))
            fused = gate * pooled["audio"] + (1 - gate) * pooled["text"]
        return self.out(self.dropout(F.gelu(self.hidden(self.dropout(fused)))))

    def mask_gradients(self) -> None:
        """After ``backward``: the members' blocks read no other member (block-diagonal LSTMs, padding rows)."""
        for module in self.modules():
            if isinstance(module, BlockLstm | FusedWordBiLstm):
                module.mask_gradients()

    def clip_member_gradients(self, max_norm: float) -> torch.Tensor:
        """``clip_grad_norm_`` for each member over its own gradients; returns the members' norms [K]."""
        views = [p.grad.view(self.groups[id(p)], self.k, -1) for p in self.parameters() if p.grad is not None]
        norms = torch.stack([v.double().pow(2).sum((0, 2)) for v in views]).sum(0).sqrt()
        coef = (max_norm / (norms + 1e-6)).clamp(max=1.0)
        for view in views:
            view.mul_(coef.to(view.dtype).view(1, self.k, 1))
        return norms

    def member_state(self, k: int) -> dict[str, torch.Tensor]:
        """Member k's parameters and buffers under ``EmotionModel``'s names (views: clone to keep them)."""
        out: dict[str, torch.Tensor] = {}
        for m, encoder in self.encoders.items():
            out |= encoder.member_state(k, f"encoders.{m}.")  # type: ignore[operator]
            out |= self.project[m].member_state(k, f"project.{m}.")  # type: ignore[operator]
        if self.fusion == "gated":
            out |= self.gate.member_state(k, "gate.")
        return out | self.hidden.member_state(k, "head.1.") | self.out.member_state(k, "head.4.")
