"""The example's image-classification service: HTTP in front of the int8 model.

Run it from ``example_project/`` (stop it with Ctrl-C or SIGTERM; it exits 0)::

    python -m service.app --port 8080 [--model PATH] [--max-batch 8] [--max-wait-ms 2]

Endpoints: ``POST /classify`` with ``{"pixels": [64 numbers from 0 to 16]}`` (or 8 rows
of 8) answers ``{"label": digit, "probabilities": [10 floats]}``; ``GET /health``
answers 200 once the model is loaded and the batcher runs; ``GET /metrics`` is the
Prometheus text format.  It binds to 127.0.0.1 only and never opens a connection of
its own: the camera line has no network.

Why the standard library's ``ThreadingHTTPServer`` and not FastAPI + uvicorn: the
service is one model behind one endpoint with a fixed JSON shape.  FastAPI would bring
an event loop, pydantic and starlette for request parsing that fits in thirty lines
here, and its import chain would lengthen the cold start that the readiness tests
judge.  Inference is not async anyway: each request would still hand its crop to a
thread.  The stdlib server's thread per connection blocks on the batcher's future,
which is exactly the hand-off the batcher needs, and ONNX Runtime releases the GIL
while it runs, so the request threads never wait on Python for the model.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import onnxruntime as ort
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

from .batcher import Batcher, BatcherStopped

LOG = logging.getLogger("example.service")

HOST = "127.0.0.1"  # loopback only: the service is reached on the device, never from outside
DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "models" / "classifier_int8.onnx"
ENV_MAX_BATCH = "EXAMPLE_MAX_BATCH"
ENV_MAX_WAIT_MS = "EXAMPLE_MAX_WAIT_MS"
ENV_THREADS = "EXAMPLE_INTRA_OP_THREADS"

PIXEL_MAX = 16  # the camera's raw crops are 8x8 values from 0 to 16
PIXELS_HELP = 'send {"pixels": [64 numbers from 0 to 16]} (or 8 rows of 8)'
MAX_BODY_BYTES = 16 * 1024  # a crop is under 2 KB of JSON; more is a client bug
REQUEST_TIMEOUT_S = 10.0  # a request the batcher never answers gets a 503, not a hang
IDLE_TIMEOUT_S = 30.0  # an idle keep-alive connection is closed after this
ENDPOINTS = ("/classify", "/health", "/metrics")
ENDPOINTS_HELP = "POST /classify, GET /health, GET /metrics"
# Inference takes well under a millisecond per crop; the buckets resolve the ms range
# where batching waits and queueing show, with a tail up to seconds for stalls.
LATENCY_BUCKETS_S = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64)

#: One answer of the model: the digit and its ten probabilities.
Prediction = tuple[int, list[float]]


class ClientError(Exception):
    """A request the service cannot serve: answered with ``status`` and a one-line error."""

    def __init__(self, status: int, message: str, *, close: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.close = close


@dataclass(frozen=True)
class Options:
    """How the service runs: the command line, with env vars as defaults."""

    port: int
    model: Path = DEFAULT_MODEL
    max_batch: int = 8
    max_wait_ms: float = 2.0
    threads: int = 1


@dataclass(frozen=True)
class Reply:
    """One HTTP answer, built before anything is written so it goes out in one piece."""

    status: int
    body: bytes
    content_type: str = "application/json"
    close: bool = False

    @classmethod
    def json(cls, status: int, document: object, *, close: bool = False) -> Reply:
        """A JSON reply on one line (errors stay greppable in a client's log)."""
        return cls(status, json.dumps(document).encode(), close=close)


# --- options -------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


def _port(text: str) -> int:
    """argparse type: a TCP port, 0 meaning any free one."""
    value = int(text)
    if not 0 <= value <= 65535:
        raise ValueError(text)
    return value


def _non_negative_float(text: str) -> float:
    """argparse type: a number of milliseconds >= 0."""
    value = float(text)
    if not value >= 0:  # also rejects nan
        raise ValueError(text)
    return value


def _env_default(
    parser: argparse.ArgumentParser, name: str, convert: Callable[[str], Any], default: Any
) -> Any:
    """The env var's value, so a test can set the batching window without the argv."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return convert(raw)
    except ValueError:
        parser.error(f"{name}={raw!r} is not valid: expected {convert.__doc__}")


def _parser() -> argparse.ArgumentParser:
    """The command line; defaults that have an env var are filled in by parse_options."""
    parser = argparse.ArgumentParser(
        prog="python -m service.app", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--port", type=_port, required=True, help="TCP port on 127.0.0.1 (0: any free)"
    )
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="ONNX model file")
    parser.add_argument(
        "--max-batch",
        type=_positive_int,
        help=f"requests per model call (env {ENV_MAX_BATCH}, default 8)",
    )
    parser.add_argument(
        "--max-wait-ms",
        type=_non_negative_float,
        help=f"longest wait for a batch to fill (env {ENV_MAX_WAIT_MS}, default 2)",
    )
    return parser


def parse_options(argv: Sequence[str] | None = None) -> Options:
    """Options from argv, then env vars, then defaults; bad values exit 2 with one line."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.model.is_file():
        parser.error(f"--model {args.model}: no such file")
    return Options(
        port=args.port,
        model=args.model,
        max_batch=args.max_batch or _env_default(parser, ENV_MAX_BATCH, _positive_int, 8),
        max_wait_ms=(
            args.max_wait_ms
            if args.max_wait_ms is not None
            else _env_default(parser, ENV_MAX_WAIT_MS, _non_negative_float, 2.0)
        ),
        threads=_env_default(parser, ENV_THREADS, _positive_int, 1),
    )


# --- model and metrics ---------------------------------------------------------------


def load_model(path: Path, threads: int) -> ort.InferenceSession:
    """A CPU session with a fixed thread count, so the device's cores are budgeted."""
    session_options = ort.SessionOptions()
    session_options.intra_op_num_threads = threads
    session_options.inter_op_num_threads = 1
    return ort.InferenceSession(
        str(path), sess_options=session_options, providers=["CPUExecutionProvider"]
    )


def make_classifier(session: ort.InferenceSession) -> Callable[[np.ndarray], list[Prediction]]:
    """The batcher's model call: a stack of scaled crops in, one prediction per crop out."""

    def classify_batch(images: np.ndarray) -> list[Prediction]:
        (probabilities,) = session.run(["probabilities"], {"image": images})
        return [(int(row.argmax()), row.tolist()) for row in probabilities]

    return classify_batch


@dataclass(frozen=True)
class Metrics:
    """The service's Prometheus metrics, in a private registry (no process-wide state)."""

    registry: CollectorRegistry
    requests: Counter
    errors: Counter
    latency: Histogram
    batch_size: Histogram

    def record(self, endpoint: str, status: int, seconds: float | None) -> None:
        """Count one answered request; an error is any 4xx or 5xx status."""
        self.requests.labels(endpoint=endpoint).inc()
        if status >= 400:
            self.errors.labels(endpoint=endpoint, status=str(status)).inc()
        if seconds is not None:
            self.latency.labels(endpoint=endpoint).observe(seconds)


def create_metrics() -> Metrics:
    """Fresh metrics; each endpoint's series exists from the start, at zero."""
    registry = CollectorRegistry()
    metrics = Metrics(
        registry=registry,
        requests=Counter(
            "classifier_requests",
            "HTTP requests answered, by endpoint",
            ["endpoint"],
            registry=registry,
        ),
        errors=Counter(
            "classifier_errors",
            "HTTP requests answered with a 4xx or 5xx status, by endpoint and status",
            ["endpoint", "status"],
            registry=registry,
        ),
        latency=Histogram(
            "classifier_request_latency_seconds",
            "Time from request read to response ready, by endpoint",
            ["endpoint"],
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        ),
        batch_size=Histogram(
            "classifier_batch_size",
            "Requests per model call",
            buckets=BATCH_SIZE_BUCKETS,
            registry=registry,
        ),
    )
    for endpoint in ENDPOINTS:
        metrics.requests.labels(endpoint=endpoint)
        metrics.latency.labels(endpoint=endpoint)
    return metrics


# --- requests ------------------------------------------------------------------------


def _is_pixel(value: object) -> bool:
    """A JSON number from 0 to 16 (booleans are not numbers here; nan fails the bounds)."""
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= PIXEL_MAX
    )


def _pixel_values(pixels: object) -> list[Any]:
    """The 64 values of a flat list or of 8 rows of 8."""
    if not isinstance(pixels, list):
        raise ClientError(400, f'"pixels" is not a list: {PIXELS_HELP}')
    if len(pixels) == 64:
        return pixels
    if len(pixels) == 8 and all(isinstance(row, list) and len(row) == 8 for row in pixels):
        return [value for row in pixels for value in row]
    raise ClientError(400, f'"pixels" has the wrong shape: {PIXELS_HELP}')


def _reject_constant(name: str) -> None:
    """json.loads hook: NaN and Infinity are not JSON, so they are not pixels either."""
    raise ClientError(400, f"{name} is not a pixel value; {PIXELS_HELP}")


def parse_pixels(body: bytes) -> np.ndarray:
    """The request's crop as one model input row, shape (1, 8, 8), scaled to [0, 1]."""
    try:
        document = json.loads(body, parse_constant=_reject_constant)
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError
        raise ClientError(400, f"the body is not JSON ({error}); {PIXELS_HELP}") from None
    if not isinstance(document, dict) or "pixels" not in document:
        raise ClientError(400, f'no "pixels" key; {PIXELS_HELP}')
    values = _pixel_values(document["pixels"])
    bad = [value for value in values if not _is_pixel(value)]
    if bad:
        shown = json.dumps(bad[0])[:40]
        raise ClientError(400, f'"pixels" values must be numbers from 0 to 16, got {shown}')
    return (np.asarray(values, dtype=np.float32) / PIXEL_MAX).reshape(1, 8, 8)


class ClassifierHandler(BaseHTTPRequestHandler):
    """One connection's requests; HTTP/1.1 keep-alive, every reply with a Content-Length."""

    protocol_version = "HTTP/1.1"
    server_version = "example-classifier/1.0"
    disable_nagle_algorithm = True  # small replies must not wait for the client's ACK
    wbufsize = 1 << 16  # headers and body leave in one write (flushed by the base class)
    timeout = IDLE_TIMEOUT_S
    server: ClassifierServer

    def do_GET(self) -> None:
        """GET /health, GET /metrics."""
        self._dispatch(b"")

    def do_POST(self) -> None:
        """POST /classify."""
        try:
            body = self._read_body()
        except ClientError as error:
            self._send(Reply.json(error.status, {"error": str(error)}, close=error.close))
            self.server.metrics.record("other", error.status, None)
            return
        self._dispatch(body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Protocol errors (a garbled request line, an unknown method) as one-line JSON too."""
        self.close_connection = True
        self._send(Reply.json(code, {"error": message or HTTPStatus(code).phrase}, close=True))
        self.server.metrics.record("other", code, None)

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: a line per request would flood the device's log at hundreds per second."""

    def _read_body(self) -> bytes:
        """The request body, bounded; framing errors close the connection (it is out of sync)."""
        length_header = self.headers.get("Content-Length")
        if length_header is None or not length_header.isdigit():
            raise ClientError(411, "a Content-Length header is required", close=True)
        length = int(length_header)
        if length > MAX_BODY_BYTES:
            raise ClientError(413, f"the body is over {MAX_BODY_BYTES} bytes", close=True)
        return self.rfile.read(length)

    def _dispatch(self, body: bytes) -> None:
        """Route, answer, and record the request in the metrics."""
        started = time.perf_counter()
        path = urlsplit(self.path).path
        endpoint = path if path in ENDPOINTS else "other"
        try:
            reply = self._route(path, body)
        except ClientError as error:
            reply = Reply.json(error.status, {"error": str(error)}, close=error.close)
        except Exception as error:  # a bug must cost one 500, not the connection
            LOG.exception("%s %s failed", self.command, path)
            reply = Reply.json(500, {"error": f"internal error: {type(error).__name__}"})
        self._send(reply)
        self.server.metrics.record(endpoint, reply.status, time.perf_counter() - started)

    def _route(self, path: str, body: bytes) -> Reply:
        """The reply for a method and path; 404 and 405 name what exists."""
        routes: dict[tuple[str, str], Callable[[bytes], Reply]] = {
            ("POST", "/classify"): self._classify,
            ("GET", "/health"): self._health,
            ("GET", "/metrics"): self._metrics,
        }
        handler = routes.get((self.command, path))
        if handler is not None:
            return handler(body)
        if path in ENDPOINTS:
            raise ClientError(
                405,
                f"{self.command} {path} is not supported: {ENDPOINTS_HELP}",
            )
        raise ClientError(404, f"no endpoint {path}: {ENDPOINTS_HELP}")

    def _classify(self, body: bytes) -> Reply:
        """Hand the crop to the batcher and wait for its row of the batch."""
        future = self.server.batcher.submit(parse_pixels(body))
        try:
            label, probabilities = future.result(timeout=REQUEST_TIMEOUT_S)
        except BatcherStopped:
            return Reply.json(503, {"error": "the service is stopping"})
        except FutureTimeout:
            return Reply.json(
                503, {"error": f"no answer from the model in {REQUEST_TIMEOUT_S:g} s"}
            )
        return Reply.json(200, {"label": label, "probabilities": probabilities})

    def _health(self, body: bytes) -> Reply:
        """200 only while the batcher runs: the model is loaded before the socket opens."""
        if self.server.batcher.running:
            return Reply.json(200, {"status": "ok"})
        return Reply.json(503, {"status": "stopping"})

    def _metrics(self, body: bytes) -> Reply:
        """The Prometheus text exposition of this service's registry."""
        return Reply(200, generate_latest(self.server.metrics.registry), CONTENT_TYPE_LATEST)

    def _send(self, reply: Reply) -> None:
        """Status, headers with Content-Length (keep-alive needs it), body."""
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        if reply.close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(reply.body)


class ClassifierServer(ThreadingHTTPServer):
    """The HTTP server, holding the batcher and metrics its handlers share."""

    daemon_threads = True  # an idle keep-alive connection must not hold up the exit
    request_queue_size = 128  # the default backlog of 5 drops connections under a burst

    def __init__(self, port: int, batcher: Batcher[Prediction], metrics: Metrics) -> None:
        self.batcher = batcher
        self.metrics = metrics
        super().__init__((HOST, port), ClassifierHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up mid-reply is routine under load: no traceback for it."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    @property
    def url(self) -> str:
        """The base URL, with the port the OS chose when the service was given port 0."""
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


# --- life cycle ----------------------------------------------------------------------


def build_server(options: Options) -> ClassifierServer:
    """Load the model, start the batcher, then bind: /health is true from the first answer."""
    classify_batch = make_classifier(load_model(options.model, options.threads))
    metrics = create_metrics()
    batcher: Batcher[Prediction] = Batcher(
        classify_batch,
        max_batch=options.max_batch,
        max_wait_s=options.max_wait_ms / 1000,
        on_batch=metrics.batch_size.observe,
    )
    batcher.start()
    try:
        return ClassifierServer(options.port, batcher, metrics)
    except OSError:
        batcher.stop()
        raise


def close_server(server: ClassifierServer) -> None:
    """Close the listening socket and stop the batcher (after serve_forever has returned)."""
    server.server_close()
    server.batcher.stop()


@contextmanager
def serving(options: Options) -> Iterator[ClassifierServer]:
    """The service running in a background thread, for tests and benchmarks in-process."""
    server = build_server(options)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="http", daemon=True
    )
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        thread.join(timeout=5)
        close_server(server)


def _stop_on_signals(server: ClassifierServer) -> None:
    """SIGTERM and SIGINT end serve_forever; shutdown() runs in a thread since it blocks."""

    def request_stop(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown, name="shutdown", daemon=True).start()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, request_stop)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT; 0 on a clean stop, 1 when it cannot start."""
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    options = parse_options(argv)
    try:
        server = build_server(options)
    except Exception as error:  # a bad model file or a taken port: one line, no traceback
        LOG.error("cannot start on %s:%d with %s: %s", HOST, options.port, options.model, error)
        return 1
    _stop_on_signals(server)
    LOG.info("listening on %s", server.url)
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        close_server(server)
    LOG.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
