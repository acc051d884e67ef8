"""Resource figures: parameters, peak memory (CUDA + NVML, or RSS on CPU), device use, energy, timings.

Device use is measured, not allocated: on CPU the process's CPU core-seconds; on GPU the process's own
SM utilisation as NVML samples it per process (``nvmlDeviceGetProcessUtilization``), so a trial holding a
quarter of a GPU is charged what it kept busy. Energy from NVML is device-wide; ``attributed_energy_j``
splits each sampling interval's device energy by this process's share of the device's utilisation, and is
None where the driver gives no per-process figures (then only the device-wide figure exists, which must
never be summed over trials that ran at the same time).
"""

from __future__ import annotations

import copy
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
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

    def process_sm_percent(self, since_us: int) -> tuple[list[float], int] | None:
        """This process's SM utilisation samples (percent) newer than ``since_us`` and the newest sample's
        timestamp; None where the driver gives no per-process figures (a container's PID namespace, MIG)."""
        if self.handle is None:
            return None
        try:
            samples = self.pynvml.nvmlDeviceGetProcessUtilization(self.handle, since_us)
        except Exception as err:  # NVML_ERROR_NOT_FOUND: no sample since then (idle), else unsupported
            if "Not Found" in str(err):
                return [], since_us
            return None
        mine = [s for s in samples if s.pid == os.getpid()]
        newest = max((int(s.timeStamp) for s in samples), default=since_us)
        return [float(s.smUtil) for s in mine], newest

    def device_percent(self) -> float | None:
        if self.handle is None:
            return None
        try:
            return float(self.pynvml.nvmlDeviceGetUtilizationRates(self.handle).gpu)
        except Exception:
            return None

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
        self.energy_j: float | None = None  # device-wide (every process on the device)
        self.attributed_energy_j: float | None = None  # this process's share of it, where NVML allows
        self.busy_share: float | None = None  # GPU: mean own SM utilisation / 100; None on CPU or unsupported
        self.cpu_seconds = 0.0  # the process's CPU core-seconds (user + system, all threads)
        self.wall_s = 0.0

    def __enter__(self) -> ResourceMonitor:
        self._nvml = _Nvml(self.device)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        self._energy0 = self._nvml.energy_mj()
        self._cpu0 = _cpu_seconds()
        self._own: list[float] | None = [] if self._nvml.handle is not None else None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        self._started = time.perf_counter()
        return self

    def _sample(self) -> None:
        process = psutil.Process()
        since_us, energy = int(time.time() * 1e6), self._energy0
        while True:
            self.peak_rss_bytes = max(self.peak_rss_bytes, process.memory_info().rss)
            used = self._nvml.used_bytes()
            if used is not None:
                self.peak_nvml_bytes = max(self.peak_nvml_bytes or 0, used)
            if self._own is not None:
                since_us, energy = self._sample_use(since_us, energy)
            if self._stop.wait(self.interval_s):
                return

    def _sample_use(self, since_us: int, energy: int | None) -> tuple[int, int | None]:
        """One interval of GPU use: own SM samples, and the interval's device energy times own / device use."""
        own = self._nvml.process_sm_percent(since_us)
        if own is None:  # no per-process figures: no busy share and no attributed energy
            self._own = None
            return since_us, energy
        samples, since_us = own
        assert self._own is not None
        self._own.extend(samples)
        now = self._nvml.energy_mj()
        device = self._nvml.device_percent()
        if now is not None and energy is not None and device:
            share = min(1.0, (sum(samples) / len(samples) if samples else 0.0) / device)
            self.attributed_energy_j = (self.attributed_energy_j or 0.0) + (now - energy) / 1000.0 * share
        return since_us, now

    def __exit__(self, *exc: object) -> None:
        synchronize(self.device)
        self.wall_s = time.perf_counter() - self._started
        self._stop.set()
        self._thread.join()
        if self.device.type == "cuda":
            self.peak_gpu_bytes = int(torch.cuda.max_memory_allocated(self.device))
        self.cpu_seconds = _cpu_seconds() - self._cpu0
        energy = self._nvml.energy_mj()
        if energy is not None and self._energy0 is not None:
            self.energy_j = (energy - self._energy0) / 1000.0
        if self._own is not None:
            self.busy_share = sum(self._own) / len(self._own) / 100.0 if self._own else 0.0

    def shared(self, members: int) -> ResourceMonitor:
        """This monitor's figures as one of ``members`` models trained together (fused seeds): time, CPU
        seconds and energy divided evenly (the members run the same work); memory peaks stay the whole
        process's (what the fused run needed)."""
        share = copy.copy(self)
        share.wall_s, share.cpu_seconds = self.wall_s / members, self.cpu_seconds / members
        share.energy_j = None if self.energy_j is None else self.energy_j / members
        if self.attributed_energy_j is not None:
            share.attributed_energy_j = self.attributed_energy_j / members
        return share

    def device_seconds(self) -> float:
        """Seconds of device use: GPU wall time x own busy share (the whole wall where NVML has no
        per-process figures: the device was held), or CPU core-seconds on CPU."""
        if self.device.type != "cuda":
            return self.cpu_seconds
        return self.wall_s * (self.busy_share if self.busy_share is not None else 1.0)


def _cpu_seconds() -> float:
    times = psutil.Process().cpu_times()
    return float(times.user + times.system)


def time_calls(run: Callable[[], object], device: torch.device, warmup: int, repeats: int) -> list[float]:
    """Seconds of each of ``repeats`` calls of ``run()`` after ``warmup`` untimed ones, the device
    synchronised before and after each timed call."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        run()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return times


def measure_latency(run: Callable[[], object], device: torch.device, warmup: int, repeats: int) -> float:
    """Median seconds of ``run()`` after ``warmup`` calls, synchronising the device around each call."""
    return float(np.median(time_calls(run, device, warmup, repeats)))


def model_memory_bytes(model: nn.Module) -> int:
    """Parameters (all) plus gradients and two AdamW moments (trainable ones): the model's own training
    footprint without activations, independent of the runtime that hosts it."""
    params = list(model.parameters())
    total = sum(p.numel() * p.element_size() for p in params)
    trainable = sum(p.numel() * p.element_size() for p in params if p.requires_grad)
    return total + 3 * trainable


class ExtractionMeter:
    """The cost of building one feature spec, stored in the feature cache (``harness.features.cache.Meter``):
    wall time and this process's CPU core-seconds, and on a GPU machine the GPU's busy seconds (own SM
    utilisation where NVML gives it per process, else the whole wall: the device was held) and its energy
    (this process's share where NVML allows; else device-wide, labelled so: extraction runs before any
    trial starts, so it is the only work on the device but not necessarily on the machine)."""

    def __init__(self, spec: object = None, device: torch.device | None = None):
        self.device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.monitor = ResourceMonitor(self.device)

    def __enter__(self) -> ExtractionMeter:
        self.monitor.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.monitor.__exit__(*exc)

    def figures(self) -> dict[str, object]:
        m = self.monitor
        energy, basis = m.attributed_energy_j, "attributed"
        if energy is None:
            energy, basis = m.energy_j, "device-wide"
        return {
            "extract_seconds": round(m.wall_s, 3),
            "cpu_seconds": round(m.cpu_seconds, 3),
            "device": self.device.type,
            "device_seconds": round(m.device_seconds(), 3),
            "energy_j": None if energy is None else round(energy, 1),
            "energy_basis": basis if energy is not None else None,
        }
