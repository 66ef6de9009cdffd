"""DynamoDB transactions that write something exactly once (guarded by their first item's condition)."""

from __future__ import annotations


def transact_once(client, items: list[dict]) -> bool:
    """Write ``items`` in one transaction; False when the first item's condition failed (written before).

    Any other cancellation, or a failed condition on a later item, is raised.
    """
    try:
        client.transact_write_items(TransactItems=items)
    except client.exceptions.TransactionCanceledException as exc:
        reasons = exc.response.get("CancellationReasons", [])
        if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
            return False
        raise
    return True
