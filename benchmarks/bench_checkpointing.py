"""What gradient checkpointing (``gradient_checkpointing=true``) saves and costs on a fine-tuned large encoder.

    python benchmarks/bench_checkpointing.py [--encoders wavlm_large,roberta_large] [--batch 4] [--repeats 2]

For each encoder, a real-size random-init backbone (``bench_encoders.build``'s config) is fine-tuned two
ways the harness offers (LoRA rank 8 on its default targets, and its top 4 layers), each with and without
checkpointing, through the same encoder code a trial trains (``PretrainedEncoder``: embed, every hidden
state, the learned layer mix), on a batch of ``--batch`` 4-s utterances or 64-token transcripts.

Printed per row:
- **activations kept for backward (MB)**: the bytes of every tensor autograd saves during the forward pass,
  counted exactly with ``torch.autograd.graph.saved_tensors_hooks`` (each storage once; the model's own
  weights, which autograd also keeps but which are resident anyway, left out). Checkpointing keeps
  each layer's inputs only and recomputes the rest in backward; this is the memory it saves, on any device.
- **forward + backward (s)**: the median wall time on this CPU, i.e. what the recomputation costs.

Parameters, gradients and optimiser state are the same with and without checkpointing and are not counted
here (``harness.train.measure.model_memory_bytes`` gives them). A GPU's peak memory adds those and the
allocator's slack; run it there for that figure.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_encoders import build, layer_key  # noqa: E402

from harness.models.encoders.pretrained import PretrainedEncoder, Tuning  # noqa: E402
from harness.models.encoders.registry import ENCODERS  # noqa: E402

SECONDS, TOKENS = 4.0, 64


def batch_of(encoder: PretrainedEncoder, size: int) -> dict[str, torch.Tensor]:
    rng = np.random.default_rng(0)
    if encoder.modality == "audio":
        items = [(rng.standard_normal(int(SECONDS * 16_000)) * 3000).astype(np.int16) for _ in range(size)]
    else:
        items = [np.arange(5, 5 + TOKENS, dtype=np.int64) + i for i in range(size)]
    return encoder.collate_live(items)


def kept_bytes(encoder: PretrainedEncoder, batch: dict[str, torch.Tensor]) -> tuple[int, float]:
    """Bytes autograd keeps for backward in one forward pass (each storage once), and that step's wall time."""
    seen: dict[int, int] = {}
    # a weight autograd keeps (for the gradient of a layer's input) is resident anyway: not an activation
    weights = {t.untyped_storage().data_ptr() for t in [*encoder.parameters(), *encoder.buffers()]}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in weights:
            seen[storage.data_ptr()] = storage.nbytes()
        return tensor

    started = time.perf_counter()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = encoder.encode(encoder.embed(batch)).seq
    out.float().pow(2).mean().backward()
    return sum(seen.values()), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoders", default="wavlm_large,roberta_large")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"bench_checkpointing: {platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"batch of {args.batch} x ({SECONDS:g}-s utterance | {TOKENS}-token transcript), real-size random-init")
    print()
    print("| encoder | fine-tuning | checkpointing | activations kept for backward (MB) | forward + backward (s) |")
    print("|---|---|---|---:|---:|")
    for name in args.encoders.split(","):
        variant = ENCODERS[name.strip()]
        assert variant.arch is not None
        layers = variant.arch.real[layer_key(variant)]
        for tuning in (Tuning("lora", 0, 8, 16.0, "attention"), Tuning("layers", min(4, layers))):
            kept = {}
            for checkpointing in (False, True):
                encoder = build(variant, "cpu", tuning=replace(tuning, checkpointing=checkpointing)).train()
                batch = batch_of(encoder, args.batch)
                runs = [kept_bytes(encoder, batch) for _ in range(args.repeats)]
                kept[checkpointing] = runs[-1][0]
                wall = statistics.median(r[1] for r in runs)
                ratio = "" if not checkpointing else f" ({kept[False] / max(kept[True], 1):.1f}x less)"
                print(
                    f"| {name} | {tuning.label} | {'on' if checkpointing else 'off'} | "
                    f"{kept[checkpointing] / 2**20:.0f}{ratio} | {wall:.2f} |",
                    flush=True,
                )
                del encoder


if __name__ == "__main__":
    main()
