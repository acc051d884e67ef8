"""Whisper's encoder (Radford et al. 2022) as a frozen, fine-tuned or LoRA speech upstream.

Whisper was trained on 30-s windows: the waveform is zero-padded to 30 s, turned into a log-mel
spectrogram (100 frames per second, normalised by the utterance's own maximum), and the encoder's
transformer always sees 1,500 positions. Transformers' ``WhisperEncoder`` refuses any other length, so an
IEMOCAP utterance (4.5 s on average) would cost as much as a 30-s one. Here, by default (``window:
utterance``):

* an utterance **shorter than 30 s** is encoded at its own length: its log-mel frames (computed in torch,
  per utterance, with the checkpoint's own mel filters, so the same numbers as ``WhisperFeatureExtractor``;
  no torchaudio), the two convolutions, the first ``n`` rows of the positional table, the layers. Cost
  follows length (about 7x less than the window for a 4.5-s utterance on the layers, more on attention).
  The representation differs from the padded window's: the model never attends to the trailing silence it
  saw in training. ``window: 30s`` (``whisper_30s``) runs the model as trained, for comparison.
* an utterance **longer than 30 s** is cut to its first 30 s (the positional table has 1,500 rows), as the
  feature extractor does; ``audio.max_seconds`` (15 s by default) usually cuts it before.

Batches are exact: each utterance's log-mel is computed alone, padded frames are zeroed after the first
convolution (so the second reads zeros, as the utterance alone reads its convolution padding) and masked
out of attention. Hidden states are the convolution output plus positions, then each layer's output, the
last one after the final layer norm (as transformers returns them).
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import torch
from torch import nn

from harness.models.encoders.base import Embedded
from harness.models.encoders.pretrained import AudioEncoder, Tuning, load_pretrained
from harness.models.variants import EncoderVariant

SAMPLE_RATE = 16_000
WINDOW_S = 30.0
N_FFT, HOP = 400, 160


def log_mel(wave: torch.Tensor, filters: torch.Tensor, frames: int | None = None) -> torch.Tensor:
    """Whisper's log-mel spectrogram of one waveform [n] as [frames, n_mels] (``WhisperFeatureExtractor``'s
    numbers, differentiable). ``frames``: zero-pad the waveform to that many frames first (the 30-s window)."""
    if frames is not None:
        wave = nn.functional.pad(wave, (0, max(0, frames * HOP - wave.shape[0])))
    if wave.shape[0] <= N_FFT // 2:  # reflection padding needs more samples than half a window
        wave = nn.functional.pad(wave, (0, N_FFT // 2 + 1 - wave.shape[0]))
    window = torch.hann_window(N_FFT, device=wave.device, dtype=wave.dtype)
    stft = torch.stft(wave, N_FFT, HOP, window=window, center=True, pad_mode="reflect", return_complex=True)
    power = stft[:, :-1].abs() ** 2  # the extractor drops the last frame
    log_spec = torch.clamp(filters.T.to(power.dtype) @ power, min=1e-10).log10()
    log_spec = torch.maximum(log_spec, log_spec.max().detach() - 8.0)
    return ((log_spec + 4.0) / 4.0).T


class WhisperAudioEncoder(AudioEncoder):
    """The encoder half of a Whisper checkpoint on raw 16 kHz audio (see the module docstring)."""

    def __init__(self, variant: EncoderVariant, checkpoint: str, tuning: Tuning, max_seconds: float):
        super().__init__(variant, checkpoint, tuning, min(max_seconds, WINDOW_S))
        self.normalize = False  # Whisper normalises the log-mel, not the waveform
        self.use_attention_mask = True
        self.window = str(variant.option("window", "utterance"))
        from transformers import WhisperFeatureExtractor

        mel = WhisperFeatureExtractor(feature_size=self.backbone.config.num_mel_bins).mel_filters
        self.mel_filters: torch.Tensor
        self.register_buffer("mel_filters", torch.as_tensor(np.asarray(mel), dtype=torch.float32), persistent=False)

    @classmethod
    def load_backbone(cls, variant: EncoderVariant, checkpoint: str) -> Any:
        model = load_pretrained(checkpoint, f"{variant.modality}.model", "whisper")
        encoder = model.get_encoder()
        encoder.config.layerdrop = 0.0  # encoder_layerdrop: a skipped layer leaves no hidden state
        return encoder  # the decoder is dropped with ``model``

    @classmethod
    def exact_in_batches(cls, encoder: Any) -> bool:
        return True  # per-utterance log-mel, zeroed padded frames, attention masks (module docstring)

    def hidden_states(self, embedded: Embedded) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
        wave = embedded.x.reshape(embedded.x.shape[0], -1)
        lengths = embedded.lengths if embedded.lengths is not None else embedded.mask.sum(1) * 320
        lengths = lengths.to(wave.device).clamp(max=self.max_samples)
        window_frames = int(WINDOW_S * SAMPLE_RATE) // HOP if self.window == "30s" else None
        mels = [log_mel(wave[i, : int(n)], self.mel_filters, window_frames) for i, n in enumerate(lengths.tolist())]
        n_frames = torch.tensor([m.shape[0] for m in mels], device=wave.device)
        frames = nn.utils.rnn.pad_sequence(mels, batch_first=True).transpose(1, 2)  # [B, mels, T]
        encoder = self.backbone
        x = nn.functional.gelu(encoder.conv1(frames.to(encoder.conv1.weight.dtype)))
        frame_mask = torch.arange(x.shape[2], device=x.device)[None, :] < n_frames[:, None]
        x = nn.functional.gelu(encoder.conv2(x * frame_mask[:, None, :]))
        positions = x.shape[2]
        x = x.transpose(1, 2) + encoder.embed_positions.weight[:positions]
        real = (n_frames + 1) // 2  # stride 2: the second convolution's outputs that read a real frame
        if self.window == "30s":  # the model as trained: it attends to the padded silence, pooling does not
            real = ((lengths + HOP - 1) // HOP + 1) // 2
        mask = torch.arange(positions, device=x.device)[None, :] < real.clamp(min=1)[:, None]
        attend = mask if self.window != "30s" else torch.ones_like(mask)
        bias = torch.zeros(attend.shape, dtype=x.dtype, device=x.device).masked_fill(~attend, torch.finfo(x.dtype).min)
        bias = bias[:, None, None, :].expand(-1, 1, positions, -1)
        states = [x]
        # transformers 4.x's layer also takes a head mask (and returns a tuple); 5.x takes neither
        layer_forward = type(encoder.layers[0]).forward
        head_mask = (
            {"layer_head_mask": None} if "layer_head_mask" in inspect.signature(layer_forward).parameters else {}
        )
        for layer in encoder.layers:
            x = layer(x, bias, **head_mask)
            x = x[0] if isinstance(x, tuple) else x
            states.append(x)
        states[-1] = encoder.layer_norm(x)
        return tuple(states), mask
