"""Which labels an iteration adds to a manifest version: the source of a human label, the auto-labels kept.

A human label answers an audit task or another task; audit answers are marked ``audit`` (DESIGN.md
"Manifest format": the audit slice spot-checks the auto-labels against humans). An image sent to
humans as an audit gets the human answer, never its auto-label.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Iterator

from boxloop.models import LabelSource, Prediction


def human_label_source(image_id: str, audit_ids: Container[str]) -> LabelSource:
    """``audit`` when ``image_id`` was sent to humans as an audit task in the label's iteration, else ``human``."""
    return LabelSource.AUDIT if image_id in audit_ids else LabelSource.HUMAN


def kept_auto_labels(auto: Iterable[Prediction], audit_ids: Container[str]) -> Iterator[Prediction]:
    """The auto-label candidates whose image was not sent to humans as an audit task."""
    return (prediction for prediction in auto if prediction.image_id not in audit_ids)
