"""Stand-in Lambda handlers for the in-process Lambda runtime tests."""

from __future__ import annotations

import os
from typing import Any


def echo(event: Any, context: Any) -> dict[str, Any]:
    """Return the event, one environment variable and the function name."""
    return {"event": event, "greeting": os.environ.get("GREETING"), "function": context.function_name}


def fail(event: Any, context: Any) -> None:
    """Always raise, naming the event."""
    raise ValueError(f"cannot handle {event!r}")
