"""harness.train.measure"""

from __future__ import annotations

import pytest


def test_nvml_reads_the_gpu_torch_uses_not_the_one_at_the_same_index(monkeypatch):
    """Under Ray, cuda:0 is whichever GPU CUDA_VISIBLE_DEVICES names; NVML must be asked by UUID."""
    import sys
    import types

    import torch

    from harness.train.measure import _Nvml

    handles = {"GPU-1111": "physical-gpu-0", "GPU-2222": "physical-gpu-3"}
    fake = types.SimpleNamespace(
        nvmlInit=lambda: None,
        nvmlDeviceGetHandleByUUID=lambda uuid: handles[uuid],
        nvmlDeviceGetHandleByIndex=lambda index: f"physical-gpu-{index}",
        nvmlDeviceGetMemoryInfo=lambda handle: types.SimpleNamespace(used={"physical-gpu-3": 7}[handle]),
    )
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: types.SimpleNamespace(uuid="2222"))
    assert _Nvml(torch.device("cuda", 0)).used_bytes() == 7
    assert _Nvml(torch.device("cpu")).used_bytes() is None


def _fake_nvml(monkeypatch, samples_by_call, device_percent, energy_mj):
    """A pynvml whose per-process samples, device utilisation and energy counter follow the given lists."""
    import os
    import sys
    import types

    import torch

    calls = {"samples": 0, "energy": 0}

    def process_utilisation(handle, since):
        i = min(calls["samples"], len(samples_by_call) - 1)
        calls["samples"] += 1
        if samples_by_call[i] is None:
            raise RuntimeError("Not Supported")
        return [types.SimpleNamespace(pid=pid, smUtil=sm, timeStamp=since + 1) for pid, sm in samples_by_call[i]]

    def energy(handle):
        i = min(calls["energy"], len(energy_mj) - 1)
        calls["energy"] += 1
        return energy_mj[i]

    fake = types.SimpleNamespace(
        nvmlInit=lambda: None,
        nvmlDeviceGetHandleByUUID=lambda uuid: "gpu",
        nvmlDeviceGetMemoryInfo=lambda handle: types.SimpleNamespace(used=1),
        nvmlDeviceGetProcessUtilization=process_utilisation,
        nvmlDeviceGetUtilizationRates=lambda handle: types.SimpleNamespace(gpu=device_percent),
        nvmlDeviceGetTotalEnergyConsumption=energy,
    )
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: types.SimpleNamespace(uuid="1"))
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda device: None)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device: None)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device: 0)
    return os.getpid()


def test_a_trial_sharing_a_gpu_is_charged_its_own_use_and_share_of_the_energy(monkeypatch):
    """Four trials on one GPU, each 20% busy of a device 80% busy: each is charged a quarter of the device
    energy and 20% of its wall time, not the whole device's (which summed over the four counts it 4x)."""
    import os
    import time

    import torch

    from harness.train.measure import ResourceMonitor

    me = os.getpid()
    _fake_nvml(
        monkeypatch,
        [[(me, 20.0), (me + 1, 20.0), (me + 2, 40.0)]],  # other processes' samples are not ours
        80.0,
        [1000 * i for i in range(10_000)],  # 1 J more at every reading
    )
    with ResourceMonitor(torch.device("cuda", 0), interval_s=0.01) as monitor:
        time.sleep(0.1)
    assert monitor.busy_share == 0.2
    assert monitor.device_seconds() == monitor.wall_s * 0.2
    assert monitor.energy_j > monitor.attributed_energy_j > 0
    assert monitor.attributed_energy_j == pytest.approx(monitor.energy_j / 4, rel=0.35)


def test_without_per_process_figures_nothing_is_attributed_and_the_device_counts_as_held(monkeypatch):
    import time

    import torch

    from harness.train.measure import ResourceMonitor

    _fake_nvml(monkeypatch, [None], 80.0, [1000 * i for i in range(10_000)])
    with ResourceMonitor(torch.device("cuda", 0), interval_s=0.01) as monitor:
        time.sleep(0.05)
    assert monitor.busy_share is None and monitor.attributed_energy_j is None
    assert monitor.energy_j > 0  # device-wide, kept apart
    assert monitor.device_seconds() == monitor.wall_s


def test_on_cpu_device_use_is_the_process_cpu_time():
    import torch

    from harness.train.measure import ResourceMonitor

    with ResourceMonitor(torch.device("cpu")) as monitor:
        sum(i * i for i in range(2_000_000))
    assert 0 < monitor.device_seconds() == monitor.cpu_seconds
    assert monitor.busy_share is None and monitor.attributed_energy_j is None
