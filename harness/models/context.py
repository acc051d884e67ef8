"""Dialogue context: a turn-level reader over the fused vectors of a window of turns, as in the original
study (current utterance plus the n-1 previous turns, an LSTM over the turns, a residual from the current turn).

Gathering. A batch names its target turns; ``window_plan`` takes the union of the turns in their
windows, so each distinct utterance is encoded once per batch however many windows it appears in, and
the windows are gathered from those encoded vectors (``index`` into the union, ``mask`` where a dialog
has no turn). Small encoders run on the union; frozen pretrained ones read their cached per-utterance
layer means, so context costs them little.

Reading. Each turn's fused vector gets a learned speaker marker (same speaker as the target or not);
``lstm`` reads the window's real turns in time order (a forward LSTM when only past turns are read, a
masked BiLSTM when future turns are too) and takes its output at the target; ``transformer`` is one
encoder layer with learned position embeddings, read at the target. Either output is projected and
added to the target's own fused vector (the residual), so the head always sees the current turn.
(Starting that projection at zero, so that training starts from the utterance-level model, made the
gain from context smaller and less steady on the demo folds; it keeps PyTorch's default init.)

Windows hold row indices only: a turn's audio and text are read, never its label. Normalisation
statistics and the vocabulary still come from the training rows only (the encoders' ``build``). At test
time a window reads other turns of the same test dialog, as the published ERC models do. Validation
windows likewise read only validation turns (``loso`` validates on a whole session, ``session5`` on whole
dialogs), never a turn the model was trained on: a trained turn's vector carries its label.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from harness.config import ContextConfig
from harness.corpus.dialogs import Windows
from harness.models.encoders.base import MaskedBiLstm


def window_plan(windows: Windows) -> tuple[np.ndarray, dict[str, torch.Tensor]]:
    """The distinct rows to encode and, per target and window position, where to find each turn among them."""
    unique, inverse = np.unique(windows.rows[windows.mask], return_inverse=True)
    index = np.zeros(windows.rows.shape, dtype=np.int64)
    index[windows.mask] = inverse
    return unique, {
        "index": torch.as_tensor(index),
        "mask": torch.as_tensor(windows.mask),
        "same_speaker": torch.as_tensor(windows.same_speaker),
    }


def alone_plan(n: int, past: int, future: int, device: torch.device) -> dict[str, torch.Tensor]:
    """Each of ``n`` encoded utterances as its own window, with no other turn: the current turn only."""
    width = past + 1 + future
    index = torch.zeros(n, width, dtype=torch.long, device=device)
    index[:, past] = torch.arange(n, device=device)
    mask = torch.zeros(n, width, dtype=torch.bool, device=device)
    mask[:, past] = True
    return {"index": index, "mask": mask, "same_speaker": mask.clone()}


class TurnContext(nn.Module):
    def __init__(self, width: int, cfg: ContextConfig, dropout: float):
        super().__init__()
        self.past, self.future, self.layer = cfg.past_turns, cfg.future_turns, cfg.layer
        self.speaker = nn.Embedding(2, width) if cfg.speaker_marker else None
        self.reader: nn.Module
        if cfg.layer == "transformer":
            heads = 4 if width % 4 == 0 else 1
            self.position = nn.Parameter(torch.zeros(self.past + 1 + self.future, width))
            self.reader = nn.TransformerEncoderLayer(
                width, heads, 2 * width, dropout, batch_first=True, norm_first=True
            )
            out = width
        elif self.future == 0:
            self.reader = nn.LSTM(width, width, batch_first=True)
            out = width
        else:
            self.reader = MaskedBiLstm(width, max(1, width // 2))
            out = 2 * max(1, width // 2)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(out, width)

    def forward(self, fused: torch.Tensor, plan: dict[str, torch.Tensor] | None) -> torch.Tensor:
        """``fused`` [U, D]: one vector per encoded utterance; returns [B, D], one per target turn."""
        if plan is None:
            plan = alone_plan(fused.shape[0], self.past, self.future, fused.device)
        index, mask = plan["index"], plan["mask"]
        current = fused[index[:, self.past]]
        x = fused[index] * mask.unsqueeze(-1).to(fused.dtype)  # [B, W, D]
        if self.speaker is not None:
            x = x + self.speaker(plan["same_speaker"].long()) * mask.unsqueeze(-1).to(x.dtype)
        if self.layer == "transformer":
            out = self.reader(x + self.position.to(x.dtype), src_key_padding_mask=~mask)
            read = out[:, self.past]
        else:
            # A window's real turns are contiguous (missing ones lie beyond a dialog's ends): shift them to
            # the front so that the LSTMs read padding only after every real turn.
            first = mask.to(torch.long).argmax(1)
            steps = torch.arange(mask.shape[1], device=mask.device)
            shift = (steps[None, :] + first[:, None]).clamp(max=mask.shape[1] - 1)
            x = x.gather(1, shift.unsqueeze(-1).expand_as(x))
            if self.future == 0:
                with torch.autocast(x.device.type, enabled=False):  # fp32, as MaskedBiLstm (no fp16 LSTM)
                    out, _ = self.reader(x.to(next(self.reader.parameters()).dtype))
            else:
                out = self.reader(x, mask.sum(1))
            read = out[torch.arange(out.shape[0], device=out.device), self.past - first]
        return current + self.out(self.dropout(read))
