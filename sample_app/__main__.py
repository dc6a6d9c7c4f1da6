"""``python -m sample_app``: serve the sample app (threaded ``wsgiref``) until SIGTERM/SIGINT.

Flags have environment twins: ``--host`` / ``HOST`` (default 0.0.0.0), ``--port`` / ``PORT``
(default 8000). ``RELEASE_SHA`` and ``DATABASE_URL`` come from the environment only (the
container app sets them; the database URL is a Key Vault reference).
"""

from __future__ import annotations

import argparse
import os
import signal
import socketserver
import sys
import threading
from types import FrameType
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from sample_app.web import SampleApp


class _Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Handler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write(f"sample_app: {self.address_string()} {format % args}\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sample_app",
        description="Serve the gated-release sample app: /healthz, /readyz, /openapi.json, "
                    "/api/documents.",
        epilog="environment: HOST, PORT (twins of the flags), RELEASE_SHA, DATABASE_URL")
    parser.add_argument("--host", default=os.environ.get("HOST", "0.0.0.0"),
                        help="address to listen on [HOST] (default 0.0.0.0)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")),
                        help="port to listen on [PORT] (default 8000)")
    args = parser.parse_args(argv)
    app = SampleApp(os.environ.get("RELEASE_SHA", "unknown"), os.environ.get("DATABASE_URL"))
    server = make_server(args.host, args.port, app, server_class=_Server,
                         handler_class=_Handler)

    def stop(signum: int, _frame: FrameType | None) -> None:
        # shutdown() waits for serve_forever to return, so it must not run on its thread
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"sample_app: release {app.release_sha} listening on {args.host}:{args.port}",
          file=sys.stderr, flush=True)
    with server:
        server.serve_forever(poll_interval=0.2)
    print("sample_app: stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
