"""An embedded server speaking the Redis protocol, for running without a Redis install.

Run as its own process (`python -m app.embedded_redis`): the web process, the
worker and the RQ dashboard then reach it over TCP exactly as they reach Redis.
"""

from __future__ import annotations

import argparse
import logging
import os
import select
import signal
import socket
import sys
import threading
import time

from fakeredis import TcpFakeServer
from fakeredis._helpers import SimpleError
from fakeredis._clients._tcp_server import TCPFakeRequestHandler

log = logging.getLogger("kiket.embedded_redis")


class _Handler(TCPFakeRequestHandler):
    """Remembers each connection's socket, so the reaper can tell when a blocked client has gone."""

    def setup(self) -> None:
        super().setup()
        # Replies go out one small write per command: without TCP_NODELAY, Nagle's algorithm holds each one
        # after the first until the client's delayed ACK (~40 ms), so every pipeline (RQ's MULTI/EXEC) stalls.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.kiket_sockets[self.client_address] = self.connection
        _give_up_when_the_peer_leaves(self.current_client.get_socket(), self.connection)

    def finish(self) -> None:
        self.server.kiket_sockets.pop(self.client_address, None)
        super().finish()


def _peer_closed(conn: socket.socket) -> bool:
    try:
        readable, _, _ = select.select([conn], [], [], 0)
        return bool(readable) and conn.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


def _give_up_when_the_peer_leaves(fake, conn: socket.socket) -> None:
    """Make a blocked command check its client is still there before it takes what woke it.

    Without this, a push landing between a client's death and the reaper's next look would be
    popped for a connection nobody reads (a killed RQ worker losing the next job).
    """
    blocking = fake._blocking

    def guarded(timeout, func, shape=None):
        def unless_gone(first_pass: bool):
            if not first_pass and _peer_closed(conn):
                raise SimpleError("client disconnected while blocked")
            return func(first_pass)

        return blocking(timeout, unless_gone, shape)

    fake._blocking = guarded


def _reap_blocked_ghosts(server: TcpFakeServer, stop: threading.Event) -> None:
    """Unblock BLPOPs of clients that disconnected while waiting.

    fakeredis serves a blocking command in the connection's own thread and only notices the
    peer is gone after the command returns, so a killed RQ worker's BLPOP would still pop the
    next job and lose it. Real Redis drops such clients at once; this does the same.
    """
    while not stop.wait(0.25):
        for address, conn in list(server.kiket_sockets.items()):
            client = server.clients.get(address)
            fake = client.get_socket() if client is not None else None
            if fake is None or not getattr(fake, "_blocked", False) or not _peer_closed(conn):
                continue
            fake._unblock_reason = b"timeout"
            with fake._db.condition:
                fake._db.condition.notify_all()


def _drain(server: TcpFakeServer, seconds: float) -> None:
    """Keep serving until every client has disconnected, for at most `seconds`.

    Under `make run` all processes get SIGTERM at once; stopping at once made the worker's and its
    scheduler's last writes (worker death, scheduler locks) fail with tracebacks. Waiting for them to
    leave lets them finish cleanly, whatever processes the Procfile lists.
    """
    deadline = time.monotonic() + seconds
    if server.kiket_sockets:
        log.info("embedded redis stopping: waiting for %d client(s) to disconnect", len(server.kiket_sockets))
    while server.kiket_sockets and time.monotonic() < deadline:
        time.sleep(0.02)
    if server.kiket_sockets:
        log.info("embedded redis stopping with %d client(s) still connected", len(server.kiket_sockets))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Embedded Redis-protocol server (fakeredis)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("KIKET_EMBEDDED_REDIS_PORT", "6390")))
    parser.add_argument("--drain-seconds", type=float, default=4.0,
                        help="On SIGTERM/SIGINT, serve connected clients this long at most before stopping "
                             "(below honcho's 5 s before it kills).")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    server = TcpFakeServer((args.host, args.port), server_type="redis")
    server.RequestHandlerClass = _Handler
    server.kiket_sockets = {}
    stop = threading.Event()
    threading.Thread(target=_reap_blocked_ghosts, args=(server, stop), daemon=True, name="reaper").start()
    # Open client connections must not keep the process alive once it is asked to stop.
    server.daemon_threads = True
    server.block_on_close = False
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    threading.Thread(target=server.serve_forever, daemon=True, name="accept").start()
    log.info("embedded redis listening on %s:%d", args.host, args.port)
    stopping.wait()
    _drain(server, args.drain_seconds)
    stop.set()
    server.shutdown()
    server.server_close()
    log.info("embedded redis stopped")


if __name__ == "__main__":
    main()
