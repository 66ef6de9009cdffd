"""The keyed-hash draw behind every random choice of the loop: the same on every retry, uniform over images.

An image's draw for a purpose is ``sha256("<seed>:<purpose>:<image id>")``: its hex digest ranks
images (the smallest ranks are a uniform random sample), and its first 8 bytes read as a share in
[0, 1) place an image on one side of a split. The purposes in use: ``initial`` (the initial sample),
``validation`` (the train / validation split), ``gold:<iteration>`` (the gold order) and no purpose at
all for the audit slice, whose key has always been ``sha256("<seed>:<image id>")``.
"""

from __future__ import annotations

import hashlib

_SHARE_BYTES = 8


def _key(seed: int, purpose: str | None, image_id: str) -> bytes:
    return (f"{seed}:{image_id}" if purpose is None else f"{seed}:{purpose}:{image_id}").encode()


def keyed_rank(seed: int, purpose: str | None, image_id: str) -> str:
    """The image's rank for ``purpose``: the hex SHA-256 of its key (smallest first is a uniform random order)."""
    return hashlib.sha256(_key(seed, purpose, image_id)).hexdigest()


def keyed_share(seed: int, purpose: str | None, image_id: str) -> float:
    """The image's uniform share in [0, 1) for ``purpose``: the key's first 8 digest bytes over 2**64."""
    digest = hashlib.sha256(_key(seed, purpose, image_id)).digest()
    return int.from_bytes(digest[:_SHARE_BYTES], "big") / 2**64
