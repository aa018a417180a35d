"""Preemption signals outside a trainer call (the real-process test of a preempted fit is in test_resume.py):
SIGTERM/SIGUSR2 stop the run at once with exit code 128 + signum; while the record is written they are only noted."""

from __future__ import annotations

import os
import signal

import pytest

from lightning_dims.runs.preemption import Preempted, PreemptionSignals, preemption_message


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGUSR2])
def test_a_preemption_signal_outside_a_trainer_call_stops_with_128_plus_signum(signum):
    before = signal.getsignal(signum)
    with pytest.raises(Preempted) as stopped, PreemptionSignals() as signals:
        os.kill(os.getpid(), signum)
    assert stopped.value.code == 128 + signum and signals.signum == signum
    assert str(stopped.value) == preemption_message(signum) and "--ckpt_path last" in str(stopped.value)
    assert signal.getsignal(signum) is before  # handlers restored


def test_a_signal_while_the_record_is_written_is_only_noted():
    with PreemptionSignals() as signals:
        signals.holding = True
        os.kill(os.getpid(), signal.SIGTERM)
    assert signals.signum == signal.SIGTERM
