"""Opaque, signed pagination cursors. A cursor holds the last position seen (keyset pagination, so rows
inserted meanwhile never shift a page) and is bound to the listing and filters it was made for."""

from __future__ import annotations

import hashlib
from typing import Any

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer

from app.services.errors import ServiceError

SALT = "kiket.api-cursor"
DEFAULT_LIMIT = 50
MAX_LIMIT = 200


class BadCursor(ServiceError):
    status = 400
    title = "Bad cursor"


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def _binding(listing: str) -> str:
    return hashlib.sha256(listing.encode()).hexdigest()[:16]


def encode(position: Any, listing: str) -> str:
    return _serializer().dumps({"p": position, "l": _binding(listing)})


def decode(cursor: str, listing: str) -> Any:
    """The position a cursor holds; BadCursor when it was altered or made for another listing or filters."""
    try:
        data = _serializer().loads(cursor)
    except BadSignature:
        raise BadCursor("The cursor is not one this API made; start again without it.") from None
    if not isinstance(data, dict) or data.get("l") != _binding(listing):
        raise BadCursor("The cursor belongs to another listing or other filters; start again without it.")
    return data.get("p")
