"""Core statements compiled once per dialect and run on the session's own DBAPI connection.

For the handful of statements on the transition hot path, SQLAlchemy's per-execution work (cache key,
parameter processing, result objects) costs about as much as the database round trip itself. A
`Prepared` statement keeps what SQLAlchemy does that matters here: the SQL is compiled by SQLAlchemy
for the connection's dialect, bind values go through the column types' bind processors, and result
values through their result processors, so callers get exactly what `Session.execute` would return.
It runs inside the session's transaction (the session's connection), so the session's commit or
rollback covers it, and the engine's cursor events see it (SQLAlchemy's own echo logging does not).
Statements with expanding IN parameters are not supported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement

from app.extensions import db


@dataclass(frozen=True)
class _Compiled:
    sql: str
    # Positional drivers (SQLite): the parameter name of each placeholder, in order; None for named styles.
    positions: tuple[str, ...] | None
    # Each parameter's bind processor, and its value when the statement carries one (literals, constants).
    binds: dict[str, tuple[Callable[[Any], Any] | None, Any]]
    results: tuple[Callable[[Any], Any] | None, ...]


class Prepared:
    """One statement; `execute` returns (rows as tuples, rowcount)."""

    def __init__(self, statement: ClauseElement, keys: Sequence[str] | None = None):
        self.statement = statement
        # For INSERT/UPDATE without explicit values: the columns the caller passes.
        self.keys = list(keys) if keys is not None else None
        self._compiled: dict[str, _Compiled] = {}
        self._columns = tuple(getattr(statement, "exported_columns", ()))
        # The result columns' names, for rows read as mappings; none: the statement returns no rows.
        self.names = tuple(c.key for c in self._columns)

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiled = self.statement.compile(dialect=dialect, column_keys=self.keys)
        return _Compiled(
            sql=compiled.string,
            positions=tuple(compiled.positiontup) if compiled.positional else None,
            binds={name: (bind.type._cached_bind_processor(dialect), bind.value)
                   for name, bind in compiled.binds.items()},
            results=tuple(c.type._cached_result_processor(dialect, None) for c in self._columns),
        )

    def execute(self, params: Mapping[str, Any]) -> tuple[list[tuple], int]:
        connection = db.session.connection()
        dialect = connection.dialect
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            compiled = self._compiled[dialect.name] = self._compile(dialect)
        values = {}
        for name, (process, carried) in compiled.binds.items():
            value = params[name] if name in params else carried
            values[name] = process(value) if process is not None and value is not None else value
        arguments = [values[name] for name in compiled.positions] if compiled.positions is not None else values
        cursor = connection.connection.dbapi_connection.cursor()
        try:
            # The engine's cursor events still see the statement (instrumentation, statement counts).
            for listener in connection.dispatch.before_cursor_execute:
                listener(connection, cursor, compiled.sql, arguments, None, False)
            try:
                cursor.execute(compiled.sql, arguments)
            except dialect.loaded_dbapi.Error as error:
                raise _wrapped(connection, cursor, compiled.sql, arguments, error) from error
            for listener in connection.dispatch.after_cursor_execute:
                listener(connection, cursor, compiled.sql, arguments, None, False)
            rows = cursor.fetchall() if self.names else []
            count = cursor.rowcount
        finally:
            cursor.close()
        if rows and any(compiled.results):
            rows = [tuple(p(v) if p is not None else v for p, v in zip(compiled.results, row)) for row in rows]
        return rows, count


def _wrapped(connection: Connection, cursor: Any, sql: str, arguments: Any, error: Exception) -> DBAPIError:
    """The driver's error as SQLAlchemy raises it (IntegrityError, OperationalError, …); a lost connection
    is invalidated, so the pool never hands it out again."""
    dialect = connection.dialect
    lost = dialect.is_disconnect(error, connection.connection.dbapi_connection, cursor)
    if lost:
        connection.invalidate(error)
    return DBAPIError.instance(sql, arguments, error, dialect.loaded_dbapi.Error, connection_invalidated=lost,
                               dialect=dialect)
