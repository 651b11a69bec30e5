"""Pooled database connections are checked before use only when they have sat idle for a while.

`pool_pre_ping` would send a `SELECT 1` on every checkout, a round trip per transaction. A connection
checked in moments ago is almost surely alive; one idle longer than IDLE_PING_S (a database restart, a
proxy's idle timeout) is pinged, and a dead one is replaced by the pool before anyone uses it.
"""

from __future__ import annotations

import time

from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import Pool

IDLE_PING_S = 10.0
_CHECKED_IN = "kiket_checked_in"


@event.listens_for(Pool, "checkin")
def _remember_checkin(dbapi_connection, record) -> None:
    if record is not None:
        record.info[_CHECKED_IN] = time.monotonic()


@event.listens_for(Pool, "checkout")
def _ping_if_idle(dbapi_connection, record, proxy) -> None:
    checked_in = record.info.get(_CHECKED_IN)
    if checked_in is None or time.monotonic() - checked_in < IDLE_PING_S:
        return
    try:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SELECT 1")
        finally:
            cursor.close()
        dbapi_connection.rollback()
    except Exception as error:  # noqa: BLE001 - any failure means the connection is unusable
        # The pool discards this connection and checks out (or opens) another one.
        raise DisconnectionError(f"pooled connection found dead after idling: {error}") from error
