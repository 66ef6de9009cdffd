"""The core-scale benchmark's memory figure: the timed process's own peak, not its parent's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .conftest import BENCH_DIR

PEAK_OF_A_CHILD = f"""
import sys
sys.path.insert(0, {str(BENCH_DIR)!r})
from core_scale import peak_rss_mib
print(peak_rss_mib())
"""


def test_the_peak_is_read_from_the_processs_own_high_water_mark(tmp_path: Path) -> None:
    status = tmp_path / "status"
    status.write_text("Name:\tpython\nVmPeak:\t 999999 kB\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n")

    from core_scale import peak_rss_mib

    assert peak_rss_mib(status) == 200.0


def test_a_child_of_a_large_parent_reports_its_own_peak() -> None:
    ballast = bytearray(b"\x01") * (400 << 20)  # every page written, so resident in this (parent) process
    child = subprocess.run([sys.executable, "-c", PEAK_OF_A_CHILD], check=True, capture_output=True, text=True)

    assert len(ballast) == 400 << 20
    assert float(child.stdout) < 200  # ru_maxrss would say 400+: Linux carries the parent's peak across exec
