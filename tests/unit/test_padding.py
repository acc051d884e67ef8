"""Padded batches: a BiLSTM and pooling that never read padding, and length-grouped training batches."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from harness.models.encoders.base import MaskedBiLstm, masked_mean, reverse_within_lengths
from harness.train.batching import batches, length_grouped_batches


def test_reverse_within_lengths_keeps_padding_in_place():
    x = torch.arange(8.0).reshape(2, 4, 1)
    out = reverse_within_lengths(x, torch.tensor([4, 2]))
    assert out[:, :, 0].tolist() == [[3, 2, 1, 0], [5, 4, 6, 7]]


def test_masked_bilstm_matches_packed_sequences_and_ignores_padding():
    torch.manual_seed(0)
    reference = nn.LSTM(5, 7, batch_first=True, bidirectional=True)
    masked = MaskedBiLstm(5, 7)
    with torch.no_grad():
        for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
            getattr(masked.forward_lstm, name).copy_(getattr(reference, name))
            getattr(masked.backward_lstm, name).copy_(getattr(reference, name + "_reverse"))
    lengths = torch.tensor([6, 3, 1, 5])
    x = torch.randn(4, 6, 5)
    packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    expected, _ = nn.utils.rnn.pad_packed_sequence(reference(packed)[0], batch_first=True, total_length=6)

    noisy = x.clone()
    for row, length in enumerate(lengths):
        noisy[row, length:] = 100.0  # whatever sits in the padding must not reach real positions
    out = masked(noisy, lengths)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)
    assert out[1, 3:].abs().sum() == 0


def test_masked_mean_never_averages_padding():
    x = torch.tensor([[[1.0], [3.0], [100.0]]])
    assert masked_mean(x, torch.tensor([[True, True, False]])).item() == 2.0


def test_length_grouped_batches_cover_every_row_once_with_less_padding():
    rng = np.random.default_rng(0)
    lengths = rng.integers(10, 1000, size=500)
    rows = np.arange(100, 500)  # a fold's training rows: a subset of the manifest
    grouped = length_grouped_batches(rows, lengths, 16, np.random.default_rng(1), pool_batches=5)
    assert sorted(np.concatenate(grouped).tolist()) == rows.tolist()
    assert len(grouped) == len(batches(rows, 16))  # the LR schedule's step count stays exact

    def padding(chunks):
        return sum(lengths[c].max() * len(c) - lengths[c].sum() for c in chunks)

    assert padding(grouped) < 0.5 * padding(batches(np.random.default_rng(1).permutation(rows), 16))
    again = length_grouped_batches(rows, lengths, 16, np.random.default_rng(2), pool_batches=5)
    assert [c.tolist() for c in again] != [c.tolist() for c in grouped]  # a new grouping every epoch
