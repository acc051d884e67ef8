"""Scale of every registered pretrained encoder: parameters, GFLOPs of a 4-s utterance, CPU latency.

    python benchmarks/bench_encoders.py [--max-params-m 400] [--encoders whisper,wavlm_large] [--repeats 3]

Parameters are counted on the meta device (shapes only: no memory, no weights), for the published config
(``Arch.real``). FLOPs run through the same encoder code the harness trains (``layer_means`` of a frozen
encoder: every hidden state, mean-pooled) on CPU builds of the real config with 1 and 2 layers (transformers'
masks read tensor values, which the meta device has not), extrapolated exactly: the layers are identical, so
FLOPs are linear in their number. A 4-s utterance is 64,000 samples, or 16 subword tokens (12 words at
IEMOCAP's 3 words per second, plus specials). FLOPs are torch.utils.flop_counter's (matmuls, convolutions,
attention; 2 per multiply-add); Whisper's log-mel is not counted (it is not a matmul). CPU latency (batch 1,
median of ``--repeats`` after one warm-up, all of this machine's threads) is measured on a real-size
random-init build where the encoder has at most ``--max-params-m`` million parameters; larger ones print
"n/a" (this shared 2-core machine: not timed) until a larger machine fills them. Peak memory is not measured here.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from typing import Any

import numpy as np
import torch
import transformers
from torch.utils.flop_counter import FlopCounterMode

from harness.models.encoders.pretrained import FROZEN, PretrainedEncoder, Tuning
from harness.models.encoders.registry import ENCODERS
from harness.models.variants import EncoderVariant

SECONDS = 4.0
TOKENS = 16


def layer_key(variant: EncoderVariant) -> str:
    assert variant.arch is not None
    return "encoder_layers" if variant.arch.config_class == "WhisperConfig" else "num_hidden_layers"


def build(
    variant: EncoderVariant, device: str, layers: int | None = None, tuning: Tuning = FROZEN
) -> PretrainedEncoder:
    """``variant``'s encoder (frozen unless ``tuning`` says otherwise) around a random-init real-size backbone
    on ``device`` ("meta" or "cpu"), with ``layers`` layers instead of the real number where given; in eval
    mode (no SpecAugment masking, no dropout)."""
    assert variant.arch is not None
    values = variant.arch.real | ({layer_key(variant): layers} if layers else {})
    config = getattr(transformers, variant.arch.config_class)(**values)
    with torch.device(device):
        model = transformers.AutoModel.from_config(config)
    backbone = model.get_encoder() if variant.arch.config_class == "WhisperConfig" else model
    if hasattr(backbone.config, "layerdrop"):
        backbone.config.layerdrop = 0.0

    class Built(variant.cls):  # type: ignore[name-defined]
        @classmethod
        def load_backbone(cls, variant: EncoderVariant, checkpoint: str) -> Any:
            return backbone

    encoder = Built(variant, "", tuning, 30.0) if variant.modality == "audio" else Built(variant, "", tuning)
    return encoder.eval()


def inputs(encoder: PretrainedEncoder, device: str) -> dict[str, torch.Tensor]:
    if encoder.modality == "audio":
        wave = (np.random.default_rng(0).standard_normal(int(SECONDS * 16_000)) * 3000).astype(np.int16)
        batch = encoder.collate_live([wave])
    else:
        batch = encoder.collate_live([np.arange(5, 5 + TOKENS, dtype=np.int64)])
    return {k: v.to(device) for k, v in batch.items()}


def forward(encoder: PretrainedEncoder, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    with torch.no_grad():  # not inference_mode: FlopCounterMode's module hooks need autograd's tensors
        return encoder.layer_means(encoder.embed(batch))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-params-m", type=float, default=400.0, help="build and time encoders up to this size")
    parser.add_argument("--encoders", default="", help="comma-separated names (default: every pretrained one)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    names = [n for n in (args.encoders.split(",") if args.encoders else ENCODERS) if ENCODERS[n].pretrained]
    print(
        f"# {platform.node()}: {os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"load average {os.getloadavg()[0]:.1f} (other processes share this machine)"
    )
    print(f"{'encoder':<22}{'params (M)':>12}{'GFLOPs 4 s':>12}{'layers':>8}{'CPU latency 4 s':>20}")
    for name in names:
        variant = ENCODERS[name]
        meta = build(variant, "meta")
        params = sum(p.numel() for p in meta.backbone.parameters())
        flops = []
        for layers in (1, 2):
            small = build(variant, "cpu", layers)
            with FlopCounterMode(display=False) as counter:
                forward(small, inputs(small, "cpu"))
            flops.append(counter.get_total_flops())
            del small
        n_layers = getattr(meta.backbone.config, layer_key(variant))
        gflops = (flops[0] + (flops[1] - flops[0]) * (n_layers - 1)) / 1e9
        latency = f"n/a (> {args.max_params_m:g} M)"
        if params <= args.max_params_m * 1e6:
            encoder = build(variant, "cpu").eval()
            batch = inputs(encoder, "cpu")
            forward(encoder, batch)  # warm-up
            times = []
            for _ in range(args.repeats):
                started = time.perf_counter()
                forward(encoder, batch)
                times.append(time.perf_counter() - started)
            latency = f"{statistics.median(times) * 1000:.0f} ms"
            del encoder
        print(f"{name:<22}{params / 1e6:>12.1f}{gflops:>12.1f}{n_layers:>8}{latency:>20}")


if __name__ == "__main__":
    main()
