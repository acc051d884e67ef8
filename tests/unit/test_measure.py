"""harness.train.measure"""

from __future__ import annotations


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
