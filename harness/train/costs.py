"""What one prediction costs, measured in an isolated step after training: latency and FLOPs.

**Latency protocol.** Synthetic utterances of 1, 4 and 10 s (fixed-seed noise at 16 kHz; the 4-s one alone
with ``TrialConfig.latency_all_lengths`` off, as in the demo budget) with a transcript of matching length
(``WORDS_PER_SECOND`` = 3 words per second, IEMOCAP's speaking rate), batch size 1, timed over the whole
path a deployed model runs from a raw waveform and a raw text string: every front end the pair reads
(log-mel or MFCC frames, PCM scaling for a speech SSL model, word splitting and vocabulary lookup, subword
tokenisation), collation, the copy to the device and the forward pass. Untimed warm-up calls (3; 1 below
30 repeats), then ``repeats`` timed ones (``TrialConfig.latency_repeats``, 30 by default; the demo budget
uses 3), each with the device synchronised around it; the figures are the median and the interquartile
range, and the real-time
factor is the median divided by the audio's duration. It runs after training and scoring, so nothing
else of the trial runs meanwhile (other trials sharing the device may: the report says where they ran).
A frozen pretrained encoder is timed on its live path (the backbone runs), never on its cached layer
means; a dialogue-context model is timed on the current turn alone (context turns would be encoded
already in a live system).

**FLOPs.** ``gflops_4s``: the forward pass of one 4-s utterance with a 12-word transcript (the model only,
front ends excluded), counted by ``torch.utils.flop_counter.FlopCounterMode`` with a formula added for
the fused recurrent kernels (which it does not count), so recurrent models are not shown as free.
``train_gflops_per_epoch``: an estimate, 3 x the forward FLOPs of the training path (forward + backward
about twice the forward) per training utterance, the forward counted on a sample of the fold's training
utterances as training reads them (cached layer means for a frozen encoder), times the training
utterances of the fold.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from harness.features import Features
from harness.features.frontends import from_raw
from harness.models.data import PairData
from harness.models.fusion import EmotionModel
from harness.train.batching import to_device
from harness.train.measure import time_calls

SAMPLE_RATE = 16_000
WORDS_PER_SECOND = 3
LATENCY_SECONDS = (1.0, 4.0, 10.0)
HEADLINE_SECONDS = 4.0  # the input the headline's latency column and ``rtf_4s`` report (always timed)
LATENCY_WARMUP = 3
FLOPS_SECONDS = 4.0
TRAIN_FLOPS_SAMPLE = 8  # training utterances whose forward FLOPs estimate an epoch's
# Plain words of a conversation: a realistic mix of in- and out-of-vocabulary words and subword lengths.
_WORDS = (
    "well i do not know what you want me to say about it but that is how it happened "
    "yesterday when we came back from the airport and nobody was there to meet us at all"
).split()


@dataclass(frozen=True)
class RawUtterance:
    audio: np.ndarray  # float32 mono at SAMPLE_RATE
    text: str
    seconds: float


def synthetic_utterance(seconds: float, seed: int = 0) -> RawUtterance:
    """``seconds`` of speech-level noise and a transcript of ``WORDS_PER_SECOND`` words per second."""
    rng = np.random.default_rng(seed)
    audio = (0.1 * rng.standard_normal(int(round(seconds * SAMPLE_RATE)))).astype(np.float32)
    n_words = max(1, int(round(seconds * WORDS_PER_SECOND)))
    text = " ".join(_WORDS[i % len(_WORDS)] for i in range(n_words))
    return RawUtterance(audio, text, seconds)


class RawPath:
    """A trained model's whole inference path from a raw utterance: front ends -> collate -> device -> forward.

    The front ends are those of the features the model was trained on (``data.features``), computed by the
    same functions the feature cache uses; a frozen encoder's cached layer means are skipped because the
    live path runs its backbone on the raw input instead. One-off set-up (loading a tokenizer) happens here,
    outside the timed calls.
    """

    def __init__(self, model: EmotionModel, data: PairData, device: torch.device, autocast: torch.autocast):
        self.model, self.device, self.autocast = model, device, autocast
        self.extract: dict[str, dict[str, tuple[Any, Callable[[np.ndarray, str], Any]]]] = {
            m: {
                role: (features.spec, from_raw(features.spec))
                for role, features in data.features[m].items()
                if features.spec.kind != "layer_means"
            }
            for m in model.modalities
        }

    def features(self, utterance: RawUtterance) -> dict[str, dict[str, Features]]:
        """One-row ``Features`` per role, computed from the raw utterance."""
        out: dict[str, dict[str, Features]] = {}
        for m, roles in self.extract.items():
            out[m] = {}
            for role, (spec, extract) in roles.items():
                value = extract(utterance.audio, utterance.text)
                if isinstance(value, list):
                    out[m][role] = Features(spec, ["synthetic"], tokens=[value])
                else:
                    array = np.asarray(value)
                    out[m][role] = Features(spec, ["synthetic"], values=array, offsets=np.array([0, len(array)]))
        return out

    def batch(self, utterance: RawUtterance) -> dict:
        rows = np.array([0])
        return to_device(self.model.collate(self.features(utterance), rows, live=True, context=False), self.device)

    def __call__(self, utterance: RawUtterance) -> torch.Tensor:
        batch = self.batch(utterance)
        with torch.no_grad(), self.autocast:
            return self.model(batch)


@dataclass(frozen=True)
class Latency:
    seconds: float  # audio duration of the input
    median_ms: float
    iqr_ms: float  # 75th minus 25th percentile of the timed calls
    rtf: float  # median / audio duration
    repeats: int
    warmup: int


def warmup_for(repeats: int) -> int:
    """Untimed calls before the timed ones: a tenth of the repeats, at least 1 and at most ``LATENCY_WARMUP``."""
    return max(1, min(LATENCY_WARMUP, repeats // 10))


def measure_latencies(
    path: RawPath,
    repeats: int,
    warmup: int | None = None,
    lengths: tuple[float, ...] = LATENCY_SECONDS,
) -> dict[float, Latency]:
    """The latency protocol (module docstring) for each input length."""
    warmup = warmup_for(repeats) if warmup is None else warmup
    out = {}
    for seconds in lengths:
        utterance = synthetic_utterance(seconds)

        def call(u: RawUtterance = utterance) -> None:
            path(u)

        times = np.asarray(time_calls(call, path.device, warmup, repeats), dtype=float) * 1000
        q1, median, q3 = np.percentile(times, [25, 50, 75])
        out[seconds] = Latency(seconds, float(median), float(q3 - q1), float(median / 1000 / seconds), repeats, warmup)
    return out


def _recurrent_flops(input_shape: torch.Size, weights: list[torch.Size], group: int) -> int:
    """2 FLOPs per multiply-add of each layer and direction's input and recurrent matrices (all gates), per
    time step and batch element (elementwise gate arithmetic left out, as it is for every other op).
    ``weights``: per layer and direction ``group`` tensors, the input matrix then the recurrent one."""
    steps_x_batch = int(np.prod(input_shape)) // int(weights[0][1])  # any layout: [T, B, F], [B, T, F], [T, F]
    matrices = sum(int(np.prod(weights[i])) + int(np.prod(weights[i + 1])) for i in range(0, len(weights), group))
    return 2 * steps_x_batch * matrices


def _mkldnn_layer_flops(input_shape: torch.Size, weight0: torch.Size, weight1: torch.Size, *_: Any, **__: Any) -> int:
    return _recurrent_flops(input_shape, [weight0, weight1], 2)  # one layer, one direction per call


def _cudnn_flops(input_shape: torch.Size, weights: list[torch.Size], stride0: int, *_: Any, **__: Any) -> int:
    return _recurrent_flops(input_shape, weights, stride0)


# FlopCounterMode counts matmuls, convolutions and attention but not the fused recurrent kernels that
# nn.LSTM dispatches to on CPU (oneDNN) and GPU (cuDNN); elsewhere it decomposes into counted matmuls.
FLOP_FORMULAS: dict[Any, Callable[..., int]] = {
    torch.ops.aten.mkldnn_rnn_layer: _mkldnn_layer_flops,
    torch.ops.aten._cudnn_rnn: _cudnn_flops,
}


def count_flops(run: Callable[[], object]) -> int:
    """FLOPs of ``run()`` as ``FlopCounterMode`` counts them, recurrent layers included."""
    with FlopCounterMode(display=False, custom_mapping=FLOP_FORMULAS) as counter:
        run()
    return int(counter.get_total_flops())


def forward_gflops(path: RawPath, seconds: float = FLOPS_SECONDS) -> float:
    """GFLOPs of the model's forward pass on one synthetic utterance of ``seconds`` (front ends excluded)."""
    batch = path.batch(synthetic_utterance(seconds))

    def forward() -> None:
        with torch.no_grad(), path.autocast:
            path.model(batch)

    return count_flops(forward) / 1e9


def train_gflops_per_epoch(
    model: EmotionModel, data: PairData, train_rows: np.ndarray, device: torch.device, sample: int = TRAIN_FLOPS_SAMPLE
) -> float:
    """Estimated training GFLOPs of one epoch over ``train_rows``: 3 x the mean forward FLOPs of a training
    utterance (batch size 1, inputs as training reads them, a spread sample) x the number of utterances."""
    if len(train_rows) == 0:
        return 0.0
    picked = train_rows[np.unique(np.linspace(0, len(train_rows) - 1, min(sample, len(train_rows))).astype(int))]
    flops = []
    for row in picked:
        batch = to_device(model.collate(data.features, np.array([row])), device)

        def forward(b: dict = batch) -> None:
            with torch.no_grad():
                model(b)

        flops.append(count_flops(forward))
    return 3 * float(np.mean(flops)) * len(train_rows) / 1e9
