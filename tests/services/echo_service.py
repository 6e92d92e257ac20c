"""A tiny stdlib HTTP service for the service tests, with switches for each way to fail.

    python echo_service.py --port PORT [--host H] [--bind-port P] [--exit-code N]
        [--sleep-before-bind S] [--spawn-child] [--child-ignores-term] [--health-status N]

GET /health answers {"ok": true} (or --health-status), GET /info answers the pid and
the child's pid, POST /echo answers the JSON body it got.  Standard library only, so
the tests need nothing installed to run it.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CHILD_SLEEP_S = 120  # the child outlives any test unless the teardown kills it
IGNORE_TERM = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep({s})"
PLAIN_CHILD = "import time; time.sleep({s})"


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=int(os.environ.get("ECHO_PORT", "0")))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--bind-port", type=int, default=None, help="bind this port instead")
    parser.add_argument("--exit-code", type=int, default=None, help="exit at once with it")
    parser.add_argument("--sleep-before-bind", type=float, default=0.0)
    parser.add_argument("--spawn-child", action="store_true")
    parser.add_argument("--child-ignores-term", action="store_true")
    parser.add_argument("--health-status", type=int, default=200)
    return parser.parse_args(argv)


def _phone_home() -> str:
    """Try to reach a documentation address (never routed), only under the socket block.

    Without deploycheck's block in the environment nothing is attempted: the suite
    sends no traffic beyond loopback, even when the block it tests is broken.
    """
    if not os.environ.get("DEPLOYCHECK_OFFLINE"):
        return "not attempted: no block in the environment"
    try:
        with socket.create_connection(("192.0.2.1", 9), timeout=0.5):
            return "connected"
    except OSError as exc:
        return f"refused: {type(exc).__name__}"


class Handler(BaseHTTPRequestHandler):
    server: EchoServer

    def do_GET(self) -> None:
        if self.path == "/health":
            status = self.server.health_status
            self._answer(status, {"ok": 200 <= status < 300})
        elif self.path == "/info":
            self._answer(200, {"pid": os.getpid(), "child_pid": self.server.child_pid})
        elif self.path == "/phone-home":
            self._answer(200, {"outcome": _phone_home()})
        else:
            self._answer(404, {"error": "not found"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if self.path != "/echo":
            self._answer(404, {"error": "not found"})
            return
        try:
            self._answer(200, {"echo": json.loads(body or b"null")})
        except ValueError:
            self._answer(400, {"error": "not JSON"})

    def _answer(self, status: int, payload: Any) -> None:
        body = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep stderr for the messages the tests read


class EchoServer(ThreadingHTTPServer):
    daemon_threads = True
    health_status = 200
    child_pid: int | None = None


def _spawn_child(ignores_term: bool) -> int:
    code = (IGNORE_TERM if ignores_term else PLAIN_CHILD).format(s=CHILD_SLEEP_S)
    return subprocess.Popen([sys.executable, "-c", code]).pid


def main(argv: list[str]) -> int:
    options = _arguments(argv)
    print(f"echo service starting (pid {os.getpid()})", file=sys.stderr, flush=True)
    if options.exit_code is not None:
        print("echo service: told to exit before binding", file=sys.stderr, flush=True)
        return int(options.exit_code)
    time.sleep(options.sleep_before_bind)
    port = options.port if options.bind_port is None else options.bind_port
    server = EchoServer((options.host, port), Handler)
    server.health_status = options.health_status
    if options.spawn_child or options.child_ignores_term:
        server.child_pid = _spawn_child(options.child_ignores_term)
    print(f"echo service listening on {options.host}:{port}", file=sys.stderr, flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
