"""Suite-wide: the tests run in random order (pytest-randomly); the seed is printed at the end, even with ``-q``."""

from __future__ import annotations

import pytest


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """Print the order's seed and how to run the same order again."""
    if config.pluginmanager.hasplugin("randomly") and config.getoption("randomly_reorganize"):
        seed = config.getoption("randomly_seed")
        terminalreporter.write_line(
            f"random test order: seed {seed} (rerun it with -p randomly --randomly-seed={seed})"
        )
