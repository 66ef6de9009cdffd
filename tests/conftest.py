"""Session-wide settings every test folder relies on.

Powertools reads its settings when a handler module is imported, and a handler module may first be
imported by any folder's tests (the benchmark harness imports the loop Lambdas' pure functions), so
they are set here, before any test module is collected.
"""

from __future__ import annotations

import os

os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "boxloop-test")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "boxloop")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
