"""The long fuzz run (make fuzz: --fuzz-long) measures each processed message's peak memory
(tracemalloc) and prints the maximum and the 95th percentile at the end of the run."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

# peak bytes allocated while processing one message, and what it was (for the report)
PEAKS: list[tuple[int, str]] = []


@contextmanager
def _unmeasured(label: str) -> Iterator[None]:
    yield


@pytest.fixture
def measure_peak(request) -> Iterator[Callable[[str], Any]]:
    """`with measure_peak(label):` around one message's processing; a no-op unless
    --fuzz-long (tracemalloc slows Python down several times)."""
    if not request.config.getoption("fuzz_long"):
        yield _unmeasured
        return
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()

    @contextmanager
    def measured(label: str) -> Iterator[None]:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        yield
        PEAKS.append((tracemalloc.get_traced_memory()[1] - base, label))

    yield measured
    if started:
        tracemalloc.stop()


def _percentile(values: list[int], fraction: float) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not PEAKS:
        return
    peaks = [peak for peak, _ in PEAKS]
    top, label = max(PEAKS)
    write = terminalreporter.write_line
    terminalreporter.section("fuzz: peak memory per processed message (tracemalloc)")
    write(f"messages: {len(peaks)}")
    write(f"max: {top / 2**20:.1f} MiB ({label})")
    write(f"p95: {_percentile(peaks, 0.95) / 2**20:.2f} MiB")
    write(f"median: {_percentile(peaks, 0.5) / 2**20:.2f} MiB")
