"""LSTMs under autocast run in fp32 (issue 26): autocast would otherwise lower them (fp16 cuDNN LSTMs on a
GPU, even inside a bf16 region, with no loss scaling; bf16 on CPU). CPU autocast lowers ``nn.LSTM`` the same
way, so the check runs here."""

from __future__ import annotations

import torch
from torch import nn

from harness.models.encoders.base import MaskedBiLstm


def test_masked_bilstm_runs_in_fp32_under_autocast():
    torch.manual_seed(0)
    lstm = MaskedBiLstm(6, 5)
    x, lengths = torch.randn(3, 7, 6), torch.tensor([7, 4, 1])
    plain = lstm(x, lengths)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        lowered, _ = nn.LSTM(6, 5, batch_first=True)(x)  # what autocast does to a bare LSTM
        mixed = lstm(x.to(torch.bfloat16), lengths)
    assert lowered.dtype == torch.bfloat16
    assert mixed.dtype == torch.float32
    torch.testing.assert_close(mixed, lstm(x.to(torch.bfloat16).float(), lengths), rtol=0, atol=0)
    assert plain.dtype == torch.float32
