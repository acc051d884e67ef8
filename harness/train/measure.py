"""Resource figures: parameters, peak memory (CUDA + NVML, or RSS on CPU), energy, latency."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import psutil
import torch
from torch import nn

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ParamCount:
    total: int
    trainable: int


def count_params(model: nn.Module) -> ParamCount:
    params = list(model.parameters())
    return ParamCount(sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad))


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _Nvml:
    """NVML handle for a CUDA device, or None where there is no NVML (CPU, CI).

    The handle is looked up by the device's UUID, not its index: Ray gives each trial its GPUs through
    CUDA_VISIBLE_DEVICES, so torch's cuda:0 may be NVML's device 3, whose memory and energy would
    otherwise be reported as this trial's.
    """

    def __init__(self, device: torch.device):
        self.handle = None
        if device.type != "cuda":
            return
        try:
            import pynvml

            pynvml.nvmlInit()
            self.pynvml = pynvml
            uuid = torch.cuda.get_device_properties(device).uuid
            self.handle = pynvml.nvmlDeviceGetHandleByUUID(f"GPU-{uuid}")
        except Exception as err:  # no driver library, permissions, a MIG slice ...
            log.debug("NVML unavailable for %s: %s", device, err)

    def used_bytes(self) -> int | None:
        return None if self.handle is None else int(self.pynvml.nvmlDeviceGetMemoryInfo(self.handle).used)

    def energy_mj(self) -> int | None:
        if self.handle is None:
            return None
        try:
            return int(self.pynvml.nvmlDeviceGetTotalEnergyConsumption(self.handle))
        except Exception:  # not supported before Volta
            return None


class ResourceMonitor:
    """Peak memory and energy over a block of work. On GPU: torch peak allocated (after resetting the
    peak counter) and NVML device memory; on CPU: the process's peak RSS, sampled by a thread."""

    def __init__(self, device: torch.device, interval_s: float = 0.05):
        self.device = device
        self.interval_s = interval_s
        self.peak_gpu_bytes: int | None = None
        self.peak_nvml_bytes: int | None = None
        self.peak_rss_bytes = 0
        self.energy_j: float | None = None
        self.wall_s = 0.0

    def __enter__(self) -> ResourceMonitor:
        self._nvml = _Nvml(self.device)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        self._energy0 = self._nvml.energy_mj()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        self._started = time.perf_counter()
        return self

    def _sample(self) -> None:
        process = psutil.Process()
        while True:
            self.peak_rss_bytes = max(self.peak_rss_bytes, process.memory_info().rss)
            used = self._nvml.used_bytes()
            if used is not None:
                self.peak_nvml_bytes = max(self.peak_nvml_bytes or 0, used)
            if self._stop.wait(self.interval_s):
                return

    def __exit__(self, *exc: object) -> None:
        synchronize(self.device)
        self.wall_s = time.perf_counter() - self._started
        self._stop.set()
        self._thread.join()
        if self.device.type == "cuda":
            self.peak_gpu_bytes = int(torch.cuda.max_memory_allocated(self.device))
        energy = self._nvml.energy_mj()
        if energy is not None and self._energy0 is not None:
            self.energy_j = (energy - self._energy0) / 1000.0


def measure_latency(run: Callable[[], object], device: torch.device, warmup: int, repeats: int) -> float:
    """Median seconds of ``run()`` after ``warmup`` calls, synchronising the device around each call."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        run()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return float(sorted(times)[len(times) // 2])


def model_memory_bytes(model: nn.Module) -> int:
    """Parameters (all) plus gradients and two AdamW moments (trainable ones): the model's own training
    footprint without activations, independent of the runtime that hosts it."""
    params = list(model.parameters())
    total = sum(p.numel() * p.element_size() for p in params)
    trainable = sum(p.numel() * p.element_size() for p in params if p.requires_grad)
    return total + 3 * trainable
