"""Export a kept model (``harness.train.keep``) to TorchScript or ONNX, check it, and time it.

What is exported is the network, from its collated input tensors to class probabilities: the front ends
(log-mel frames, word splitting and vocabulary look-up, subword tokenisation) are not tensor programs
and stay outside, in ``harness.train.keep.collate_raw``; a sidecar JSON next to the model names its
inputs in order, the class set and the vocabularies, so that a deployment can feed it.

Parity: the exported model's probabilities must equal the stored model's within ``TOLERANCE`` on the
same inputs (checked on a short and a long synthetic utterance, so that the sequence length is not baked
in). Latency: the latency protocol of ``harness.train.costs`` (a 4-s synthetic utterance and its
transcript, front ends included, batch size 1, median of ``repeats`` timed calls after warm-up), run on
the exported model and printed beside the fold record's figure.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from harness.errors import UserError
from harness.train.costs import synthetic_utterance
from harness.train.keep import KeptModel, collate_raw

log = logging.getLogger(__name__)
FORMATS = ("torchscript", "onnx")
TOLERANCE = 1e-4
PARITY_SECONDS = (1.0, 6.0)  # two lengths: a traced length must not be baked into the graph


class ExportError(UserError):
    """A model that cannot be exported, or whose export does not match it."""


def flatten(batch: dict) -> tuple[list[str], list[torch.Tensor]]:
    """A collated batch's tensors in a fixed order, with their names (``audio.frames`` ...)."""
    names, tensors = [], []
    for modality in sorted(batch):
        for key in sorted(batch[modality]):
            names.append(f"{modality}.{key}")
            tensors.append(batch[modality][key])
    return names, tensors


class Probabilities(nn.Module):
    """The network as a function of its input tensors in ``names`` order, returning probabilities."""

    def __init__(self, model: nn.Module, names: list[str]):
        super().__init__()
        self.model, self.names = model, names

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        batch: dict[str, dict[str, torch.Tensor]] = {}
        for name, tensor in zip(self.names, tensors):
            modality, key = name.split(".", 1)
            batch.setdefault(modality, {})[key] = tensor
        return torch.softmax(self.model(batch).float(), -1)


@dataclass(frozen=True)
class Exported:
    path: Path
    format: str
    max_abs_diff: float  # worst |exported - stored| over the parity inputs
    latency_4s_ms: float  # the exported model, front ends included (median)
    stored_latency_4s_ms: float  # the stored model, same protocol, same machine, now
    report_latency_4s_ms: float | None  # the fold record's figure (the report's)
    repeats: int


def _example(kept: KeptModel, seconds: float) -> tuple[list[str], list[torch.Tensor]]:
    utterance = synthetic_utterance(seconds)
    return flatten(collate_raw(kept, utterance.audio, utterance.text))


def export_model(kept: KeptModel, path: str | Path, fmt: str) -> Callable[[list[torch.Tensor]], np.ndarray]:
    """Write ``kept`` to ``path`` in ``fmt``; returns a function running the written file."""
    if fmt not in FORMATS:
        raise ExportError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    path = Path(path)
    names, example = _example(kept, PARITY_SECONDS[0])
    wrapper = Probabilities(kept.model.eval(), names).eval()
    with torch.no_grad():
        if fmt == "torchscript":
            traced = torch.jit.trace(wrapper, tuple(example), check_trace=False)
            torch.jit.save(traced, str(path))
            loaded = torch.jit.load(str(path))

            def run_torchscript(tensors: list[torch.Tensor]) -> np.ndarray:
                with torch.no_grad():
                    return loaded(*tensors).numpy()

            return run_torchscript
        import onnxruntime

        # Batch size 1 (the latency protocol's; an LSTM exported with a variable batch may fail at another
        # batch size); each modality has its own length (frames, words), shared by its mask.
        dynamic = {n.replace(".", "_"): {1: f"{n.split('.')[0]}_length"} for n in names}
        torch.onnx.export(
            wrapper,
            tuple(example),
            str(path),
            input_names=[n.replace(".", "_") for n in names],
            output_names=["probabilities"],
            dynamic_axes=dynamic,
            dynamo=False,
        )
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inputs = [i.name for i in session.get_inputs()]

    def run_onnx(tensors: list[torch.Tensor]) -> np.ndarray:
        feed = {n: t.numpy() for n, t in zip([n.replace(".", "_") for n in names], tensors) if n in inputs}
        return np.asarray(session.run(["probabilities"], feed)[0])

    return run_onnx


def sidecar(kept: KeptModel, path: Path, fmt: str, names: list[str]) -> Path:
    """``<model>.json``: how to feed the exported model (input order, classes, vocabularies, features)."""
    info = kept.info
    out = path.with_suffix(path.suffix + ".json")
    out.write_text(
        json.dumps(
            {
                "format": fmt,
                "inputs": names,
                "output": "probabilities [1, classes] (batch size 1)",
                "classes": list(info.classes),
                "pair": info.pair,
                "fold": info.fold,
                "seed": info.seed,
                "features": info.features,
                "vocabularies": info.vocabularies,
                "config": info.config,
            },
            indent=1,
            default=str,
        )
    )
    return out


def _median_ms(call: Callable[[], Any], repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        call()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return float(np.median(times))


def export_and_check(kept: KeptModel, path: str | Path, fmt: str, repeats: int = 10) -> Exported:
    """Export, check parity on two input lengths (``TOLERANCE``), time the exported and the stored model."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    run = export_model(kept, path, fmt)
    worst = 0.0
    names: list[str] = []
    for seconds in PARITY_SECONDS:
        names, tensors = _example(kept, seconds)
        with torch.no_grad():
            stored = torch.softmax(kept.model(collate_raw(kept, *_raw(seconds))).float(), -1).numpy()
        worst = max(worst, float(np.abs(run(tensors) - stored).max()))
    if worst > TOLERANCE:
        raise ExportError(f"{path}: exported outputs differ from the stored model's by {worst:.2e} > {TOLERANCE:g}")
    sidecar(kept, path, fmt, names)
    audio, text = _raw(4.0)

    def exported_call() -> None:
        run(_flat(kept, audio, text))

    def stored_call() -> None:
        with torch.no_grad():
            kept.model(collate_raw(kept, audio, text))

    return Exported(
        path,
        fmt,
        worst,
        _median_ms(exported_call, repeats),
        _median_ms(stored_call, repeats),
        kept.info.latency_4s_ms,
        repeats,
    )


def _raw(seconds: float) -> tuple[np.ndarray, str]:
    utterance = synthetic_utterance(seconds)
    return utterance.audio, utterance.text


def _flat(kept: KeptModel, audio: np.ndarray, text: str) -> list[torch.Tensor]:
    return flatten(collate_raw(kept, audio, text))[1]
