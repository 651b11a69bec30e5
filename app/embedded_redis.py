"""An embedded server speaking the Redis protocol, for running without a Redis install.

Run as its own process (`python -m app.embedded_redis`): the web process, the
worker and the RQ dashboard then reach it over TCP exactly as they reach Redis.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

from fakeredis import TcpFakeServer

log = logging.getLogger("kiket.embedded_redis")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Embedded Redis-protocol server (fakeredis)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("KIKET_EMBEDDED_REDIS_PORT", "6390")))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    server = TcpFakeServer((args.host, args.port), server_type="redis")
    # Open client connections must not keep the process alive once it is asked to stop.
    server.daemon_threads = True
    server.block_on_close = False
    # Let SIGTERM (honcho, tests) stop the loop the same way Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    log.info("embedded redis listening on %s:%d", args.host, args.port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
