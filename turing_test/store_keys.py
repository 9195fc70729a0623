"""Secrets and hashes of the store: a participant's resume secret and its stored hash, and the
salted hash kept in place of a client's address.

May touch: nothing but hashlib and secrets. The salt comes from the Store passed in
(Store.salt(), which reads, or once writes, the database's own key); no SQL here.
"""
from __future__ import annotations

import hashlib
import secrets


def new_secret() -> str:
    return secrets.token_hex(24)


def _secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _address_hash(store, client: str | None) -> str | None:
    """A client address as stored: salted with the database's own key, so that the address itself
    is never kept (a start limit only needs to know that two starts came from the same one)."""
    if not client or client == "unknown":
        return None
    return hashlib.sha256(store.salt() + client.encode()).hexdigest()[:32]
