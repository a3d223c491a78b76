"""Wall time and peak resident memory around a block of work."""
from __future__ import annotations

import threading
import time

import psutil


class Measured:
    """`with Measured() as m: ...` then m.seconds and m.peak_mb (process RSS, sampled every 50 ms)."""

    def __init__(self, interval: float = 0.05):
        self.interval = interval
        self.seconds = 0.0
        self.peak_mb = 0.0
        self._proc = psutil.Process()
        self._stop = threading.Event()

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak_mb = max(self.peak_mb, self._proc.memory_info().rss / 2**20)

    def __enter__(self) -> "Measured":
        self.peak_mb = self._proc.memory_info().rss / 2**20
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self._t0
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, self._proc.memory_info().rss / 2**20)
