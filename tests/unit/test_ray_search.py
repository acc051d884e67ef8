"""harness.tune.ray_search: what a Ctrl-C during ``tuner.fit()`` does."""

from __future__ import annotations

import signal

import pytest

from harness.tune.ray_search import graceful_interrupts


def test_ctrl_c_during_fit_reaches_ray_tunes_stop_and_is_remembered():
    before = signal.getsignal(signal.SIGINT)
    stops = []
    with graceful_interrupts() as interrupts:
        assert not interrupts["interrupted"]
        signal.signal(signal.SIGUSR1, lambda sig, frame: stops.append(sig))  # what Ray Tune's fit registers
        signal.raise_signal(signal.SIGINT)
        assert interrupts["interrupted"] and len(stops) == 1  # Ray saves the experiment and returns
        with pytest.raises(KeyboardInterrupt):  # a second Ctrl-C skips Ray's final save
            signal.raise_signal(signal.SIGINT)
        assert len(stops) == 1
    assert signal.getsignal(signal.SIGINT) is before and signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL


def test_ctrl_c_before_ray_tunes_loop_is_a_keyboard_interrupt():
    with graceful_interrupts() as interrupts, pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGINT)  # no Ray Tune stop registered yet: nothing to stop gracefully
    assert interrupts["interrupted"]
