"""Transactions on the embedded DynamoDB that cost what they cost on AWS: item snapshots, not table copies.

moto's ``transact_write_items`` (5.2.5) keeps a rollback copy of a table by deep-copying all of it, once per
operation in the transaction, so each transaction costs time in proportion to the tables it names: registering
1,500 uploads (a transaction each) and clearing them from the pending index (49 a transaction) took about
3.5 minutes of the demo's first five, most of it in ``copy.deepcopy`` of the images table. The hook keeps the
all-or-nothing semantics and changes only what is kept for a rollback: the items the transaction names. moto then
runs the transaction on the live tables (its table copy becomes the table itself); if it fails, those items are
put back as they were. A transaction the hook cannot read (a malformed request, which moto rejects) runs
through moto's own code unchanged.
"""

from __future__ import annotations

import copy
import threading
import types
from collections.abc import Callable
from typing import Any

from moto.dynamodb import models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table

_ORIGINAL_TRANSACT: Callable[..., None] = DynamoDBBackend.transact_write_items
_IN_TRANSACTION = threading.local()

Snapshot = tuple[Table, Any, Any, Any]
"""A table, an item's hash and range key values, and a deep copy of the item (None when there was none)."""


def _deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
    """``copy.deepcopy``, except that a table inside a hooked transaction is not copied (its items are saved)."""
    if isinstance(value, Table) and getattr(_IN_TRANSACTION, "active", False):
        return value
    return copy.deepcopy(value, memo)


_COPY_FOR_DYNAMODB = types.SimpleNamespace(deepcopy=_deepcopy, copy=copy.copy)
"""What ``moto.dynamodb.models`` sees as its ``copy`` module while the hook is installed."""


def _snapshots(backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> list[Snapshot]:
    """Each named item as it is now; raises (KeyError, ValueError, moto's errors) for a request it cannot read."""
    saved = []
    for entry in transact_items:
        [(operation, request)] = entry.items()
        table = backend.get_table(request["TableName"])
        if operation == "Put":
            attributes = request["Item"]
            key = {name: attributes[name] for name in (table.hash_key_attr, table.range_key_attr) if name}
        else:
            key = request["Key"]
        hash_value, range_value = backend.get_keys_value(table, key)
        saved.append((table, hash_value, range_value, copy.deepcopy(table.get_item(hash_value, range_value))))
    return saved


def _restore(snapshots: list[Snapshot]) -> None:
    """Put every saved item back as it was (an item that did not exist is removed)."""
    for table, hash_value, range_value, item in reversed(snapshots):
        if item is None:
            if range_value is None:
                table.items.pop(hash_value, None)
            else:
                table.items.get(hash_value, {}).pop(range_value, None)
        elif range_value is None:
            table.items[hash_value] = item
        else:
            table.items[hash_value][range_value] = item


def _transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    try:
        snapshots = _snapshots(self, transact_items) if len(transact_items) <= 100 else None
    except Exception:  # moto raises its own, clearer error for the same request
        snapshots = None
    if snapshots is None:
        return _ORIGINAL_TRANSACT(self, transact_items)
    _IN_TRANSACTION.active = True
    try:
        return _ORIGINAL_TRANSACT(self, transact_items)
    except BaseException:
        _restore(snapshots)
        raise
    finally:
        _IN_TRANSACTION.active = False


def install() -> None:
    """Make moto's DynamoDB transactions keep item snapshots (idempotent; ``uninstall`` undoes it)."""
    DynamoDBBackend.transact_write_items = _transact_write_items  # type: ignore[method-assign]
    dynamodb_models.copy = _COPY_FOR_DYNAMODB  # type: ignore[attr-defined]


def uninstall() -> None:
    """Give moto back its own transactions."""
    DynamoDBBackend.transact_write_items = _ORIGINAL_TRANSACT  # type: ignore[method-assign]
    dynamodb_models.copy = copy  # type: ignore[attr-defined]
