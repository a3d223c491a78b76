"""Use only the cores other processes leave free, re-checked as the work goes on.

On a 2-core machine, torch's two OpenMP threads stall at every barrier whenever another busy process holds one
core: a LoRA step went from 2.9 s to 9.2-9.4 s (3.2x) here whatever the spin count. One thread on the free core
is far better than two fighting for one. So between steps (training) and batches (answering) we read how much
CPU the rest of the machine used since the last look and set torch's thread count to the cores left over.
On a quiet machine that is every core, as before.
"""
from __future__ import annotations

import math
import os
import time

import psutil

# The CPUs this process may run on: other processes count only where they compete with us.
_CPUS = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))


class FreeCores:
    """Call `adjust()` between units of work; it sets torch's threads to the cores others leave free."""

    def __init__(self):
        import torch

        self.torch = torch
        self.cores = len(_CPUS)
        self.proc = psutil.Process()
        self.most = torch.get_num_threads()  # the user's or torch's choice stays the ceiling
        self._last = 0.0
        self.others()  # start both counters: later calls report usage since the previous one

    def others(self) -> float:
        """Cores used by other processes since the last call (our CPUs' busy time minus this process's)."""
        per_cpu = psutil.cpu_percent(None, percpu=True)
        machine = sum(per_cpu[i] for i in _CPUS if i < len(per_cpu)) / 100
        own = self.proc.cpu_percent(None) / 100
        self._last = time.monotonic()
        return max(0.0, machine - own)

    def adjust(self) -> int:
        if time.monotonic() - self._last < 0.1:  # too short an interval to say anything: look for a moment
            time.sleep(0.2)
        want = max(1, min(self.most, self.cores - math.floor(self.others() + 0.5)))
        if want != self.torch.get_num_threads():
            self.torch.set_num_threads(want)
        return want


_shared: FreeCores | None = None


def free_cores() -> FreeCores:
    """One watcher per process, so each look covers the time since the previous one (answer batch or step)."""
    global _shared
    if _shared is None:
        _shared = FreeCores()
    return _shared


def training_callback():
    """A transformers TrainerCallback that adjusts threads before every optimiser step."""
    from transformers import TrainerCallback

    class FollowFreeCores(TrainerCallback):
        def __init__(self):
            self.free = free_cores()

        def on_step_begin(self, args, state, control, **kwargs):
            self.free.adjust()

        def on_train_end(self, args, state, control, **kwargs):
            self.free.torch.set_num_threads(self.free.most)

    return FollowFreeCores()
