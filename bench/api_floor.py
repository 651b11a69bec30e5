"""The app the API benchmark serves (`bench.api_wsgi:app`): the real one, plus (with KIKET_BENCH_FLOOR) its
floor endpoint.

`POST /bench/floor/<client>/<n>` replays the SQL statements recorded for client's request n with psycopg on
the thread's own connection, in one transaction: the same SQL as the API request, without our Python.
"""

from __future__ import annotations

import os
import pickle
import threading

from flask import Blueprint, Response, current_app

from app.extensions import csrf
from app.factory import create_app

floor = Blueprint("bench_floor", __name__)
# Like the API: no session, so no CSRF token.
csrf.exempt(floor)
_local = threading.local()


@floor.route("/bench/floor/<int:client>/<int:n>", methods=["POST"])
def replay(client: int, n: int):
    import psycopg
    from psycopg.pq import ExecStatus

    connection = getattr(_local, "connection", None)
    if connection is None:
        dsn = current_app.config["SQLALCHEMY_DATABASE_URI"].replace("postgresql+psycopg://", "postgresql://", 1)
        connection = _local.connection = psycopg.connect(dsn)
    with connection.transaction():
        for statement, parameters, many in current_app.extensions["bench_floor"][client][n]:
            cursor = connection.cursor()
            if many:
                cursor.executemany(statement, parameters)
            else:
                cursor.execute(statement, parameters)
            if cursor.pgresult.status == ExecStatus.TUPLES_OK:
                cursor.fetchall()
    return Response(b'{"ok":true}', 200, mimetype="application/json")


def build_app(overrides: dict | None = None):
    app = create_app(overrides)
    path = os.environ.get("KIKET_BENCH_FLOOR")
    if path:
        with open(path, "rb") as handle:
            app.extensions["bench_floor"] = pickle.load(handle)
        app.register_blueprint(floor)
    return app
