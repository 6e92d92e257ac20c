"""Unit tests of the example's classification service (service/): batcher and handlers.

The batcher runs against a fake model whose first call is held on an event, so the
batch sizes follow from the order of events, never from how fast this host is.  The
handlers run in the real server on a free port of 127.0.0.1, in a thread of this
process, with every socket and wait bounded by a timeout.  The readiness of the
service under load (p99 at a rate, capacity, memory, cold start) is judged elsewhere.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from service.app import (
    DEFAULT_MODEL,
    ClassifierServer,
    ClientError,
    Options,
    parse_options,
    parse_pixels,
    serving,
)
from service.batcher import Batcher, BatcherStopped

EXAMPLE_DIR = Path(__file__).resolve().parents[1]
HELD_OUT = EXAMPLE_DIR / "data" / "digits_test.npz"
TIMEOUT_S = 10.0  # bounds every wait; none of them is expected to come near it


class GatedModel:
    """A fake model: each row's result is its mean; the first call waits for ``release``."""

    def __init__(self) -> None:
        self.batch_sizes: list[int] = []
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, images: np.ndarray) -> list[float]:
        self.batch_sizes.append(len(images))
        self.entered.set()
        assert self.release.wait(TIMEOUT_S)
        return [float(image.mean()) for image in images]


def row(value: float) -> np.ndarray:
    """One input row whose fake-model result is ``value``."""
    return np.full((1, 8, 8), value, dtype=np.float32)


@pytest.fixture
def gated() -> Iterator[tuple[GatedModel, Batcher[float]]]:
    model = GatedModel()
    batcher: Batcher[float] = Batcher(model, max_batch=4, max_wait_s=0.0)
    batcher.start()
    yield model, batcher
    model.release.set()
    batcher.stop(TIMEOUT_S)


# --- batcher ---------------------------------------------------------------------


def test_requests_queued_behind_a_busy_model_leave_in_batches_of_max_batch(gated):
    model, batcher = gated
    first = batcher.submit(row(0))
    assert model.entered.wait(TIMEOUT_S)  # the model holds batch 1; the rest queue up
    futures = [first] + [batcher.submit(row(i)) for i in range(1, 11)]
    model.release.set()
    assert [f.result(TIMEOUT_S) for f in futures] == [float(i) for i in range(11)]
    assert model.batch_sizes == [1, 4, 4, 2]


def test_a_lone_request_is_flushed_after_the_wait_instead_of_waiting_for_a_full_batch():
    model = GatedModel()
    model.release.set()
    batcher: Batcher[float] = Batcher(model, max_batch=8, max_wait_s=0.005)
    batcher.start()
    try:
        assert batcher.submit(row(3)).result(TIMEOUT_S) == 3.0
    finally:
        batcher.stop(TIMEOUT_S)
    assert model.batch_sizes == [1]


def test_a_batch_that_fills_leaves_without_waiting_out_the_window():
    model = GatedModel()
    model.release.set()
    batcher: Batcher[float] = Batcher(model, max_batch=3, max_wait_s=60.0)
    batcher.start()
    try:
        futures = [batcher.submit(row(i)) for i in range(3)]
        assert [f.result(TIMEOUT_S) for f in futures] == [0.0, 1.0, 2.0]
    finally:
        batcher.stop(TIMEOUT_S)
    assert model.batch_sizes == [3]


def test_a_model_error_reaches_every_request_of_its_batch_and_the_batcher_goes_on():
    calls: list[int] = []

    def flaky(images: np.ndarray) -> list[float]:
        calls.append(len(images))
        if len(calls) == 1:
            raise RuntimeError("model crashed")
        return [1.0] * len(images)

    batcher: Batcher[float] = Batcher(flaky, max_batch=2, max_wait_s=60.0)
    batcher.start()
    try:
        failed = [batcher.submit(row(0)), batcher.submit(row(0))]
        for future in failed:
            with pytest.raises(RuntimeError, match="model crashed"):
                future.result(TIMEOUT_S)
        assert batcher.running
        again = [batcher.submit(row(0)), batcher.submit(row(0))]  # a full batch: no wait
        assert [future.result(TIMEOUT_S) for future in again] == [1.0, 1.0]
    finally:
        batcher.stop(TIMEOUT_S)


def test_a_model_returning_the_wrong_number_of_rows_fails_the_batch_with_one_line():
    batcher: Batcher[float] = Batcher(lambda images: [], max_batch=1, max_wait_s=0.0)
    batcher.start()
    try:
        with pytest.raises(RuntimeError, match="returned 0 results for 1 inputs"):
            batcher.submit(row(0)).result(TIMEOUT_S)
    finally:
        batcher.stop(TIMEOUT_S)


def test_stop_serves_what_was_queued_then_refuses_new_requests(gated):
    model, batcher = gated
    first = batcher.submit(row(0))
    assert model.entered.wait(TIMEOUT_S)
    queued = batcher.submit(row(5))
    stopper = threading.Thread(target=batcher.stop, args=(TIMEOUT_S,))
    stopper.start()
    model.release.set()
    stopper.join(TIMEOUT_S)
    assert (first.result(TIMEOUT_S), queued.result(TIMEOUT_S)) == (0.0, 5.0)
    assert not batcher.running
    with pytest.raises(BatcherStopped):
        batcher.submit(row(1)).result(TIMEOUT_S)
    batcher.stop()  # a second stop is harmless


@pytest.mark.parametrize(("max_batch", "max_wait_s"), [(0, 0.0), (1, -1.0)])
def test_a_batcher_with_an_impossible_window_is_refused(max_batch, max_wait_s):
    with pytest.raises(ValueError, match="max_batch must be >= 1"):
        Batcher(lambda images: [], max_batch=max_batch, max_wait_s=max_wait_s)


# --- request parsing and options -------------------------------------------------


def test_a_flat_crop_and_8_rows_of_8_give_the_same_scaled_model_row():
    pixels = list(range(16)) * 4
    flat = parse_pixels(json.dumps({"pixels": pixels}).encode())
    rows = parse_pixels(
        json.dumps({"pixels": [pixels[i : i + 8] for i in range(0, 64, 8)]}).encode()
    )
    assert flat.shape == (1, 8, 8) and flat.dtype == np.float32
    np.testing.assert_array_equal(flat, rows)
    assert float(flat.max()) == 15 / 16


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", 'no "pixels" key'),
        (b'{"image": []}', 'no "pixels" key'),
        (b'{"pixels": 5}', '"pixels" is not a list'),
        (json.dumps({"pixels": [0] * 63}).encode(), "wrong shape"),
        (json.dumps({"pixels": [[0] * 8] * 7 + [[0] * 7]}).encode(), "wrong shape"),
        (json.dumps({"pixels": [0] * 63 + [17]}).encode(), "got 17"),
        (json.dumps({"pixels": [-1] + [0] * 63}).encode(), "got -1"),
        (json.dumps({"pixels": [True] + [0] * 63}).encode(), "got true"),
        (json.dumps({"pixels": ["3"] + [0] * 63}).encode(), 'got "3"'),
        (b'{"pixels": [NaN' + b", 0" * 63 + b"]}", "NaN is not a pixel value"),
        (b'{"pixels": [1e999' + b", 0" * 63 + b"]}", "got Infinity"),
    ],
)
def test_a_bad_request_body_is_a_400_with_one_line_naming_what_to_send(body, message):
    with pytest.raises(ClientError, match=message) as caught:
        parse_pixels(body)
    assert caught.value.status == 400
    assert "\n" not in str(caught.value)


def test_the_batching_window_comes_from_env_vars_and_the_command_line_wins(monkeypatch):
    monkeypatch.setenv("EXAMPLE_MAX_BATCH", "16")
    monkeypatch.setenv("EXAMPLE_MAX_WAIT_MS", "0.5")
    monkeypatch.setenv("EXAMPLE_INTRA_OP_THREADS", "2")
    assert parse_options(["--port", "0"]) == Options(0, DEFAULT_MODEL, 16, 0.5, 2)
    assert parse_options(["--port", "0", "--max-batch", "1", "--max-wait-ms", "0"]).max_batch == 1


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        ([], {}, "--port"),
        (["--port", "0", "--max-batch", "0"], {}, "--max-batch"),
        (["--port", "0"], {"EXAMPLE_MAX_WAIT_MS": "soon"}, "EXAMPLE_MAX_WAIT_MS='soon'"),
        (["--port", "0", "--model", "missing.onnx"], {}, "missing.onnx: no such file"),
    ],
)
def test_bad_options_exit_2_with_one_line(monkeypatch, capsys, argv, env, message):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as exited:
        parse_options(argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err.splitlines()[-1]


# --- handlers, through the real server on loopback -------------------------------


@pytest.fixture
def service() -> Iterator[ClassifierServer]:
    with serving(Options(port=0, max_batch=8, max_wait_ms=1.0)) as server:
        yield server


def call(server, method, path, body=None, headers=None, connection=None):
    """One request; the status, headers and body of the reply."""
    host, port = server.server_address[:2]
    conn = connection or http.client.HTTPConnection(host, port, timeout=TIMEOUT_S)
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    payload = response.read()
    if connection is None:
        conn.close()
    return response.status, response.headers, payload


def classify(server, pixels, connection=None):
    body = json.dumps({"pixels": pixels}).encode()
    status, _headers, payload = call(server, "POST", "/classify", body, connection=connection)
    return status, json.loads(payload)


@pytest.fixture(scope="module")
def crops() -> list[np.ndarray]:
    """Raw held-out crops, 0..16, as the camera sends them."""
    with np.load(HELD_OUT) as data:
        images = data["images"][:8].reshape(-1, 8, 8)  # stored (n, 1, 8, 8), scaled
    return list((images * 16).round().astype(np.uint8))


def test_health_is_ok_once_serving(service):
    status, headers, payload = call(service, "GET", "/health")
    assert (status, json.loads(payload)) == (200, {"status": "ok"})
    assert headers["Content-Length"] == str(len(payload))


def test_classify_answers_what_the_model_answers_for_the_same_crop(service, crops):
    session = ort.InferenceSession(str(DEFAULT_MODEL), providers=["CPUExecutionProvider"])
    images = np.stack([crop.astype(np.float32) / 16 for crop in crops]).reshape(-1, 1, 8, 8)
    _, expected = session.run(None, {"image": images})
    for crop, probabilities in zip(crops, expected, strict=True):
        status, answer = classify(service, crop.reshape(-1).tolist())  # the flat form
        assert status == 200
        assert answer["label"] == int(probabilities.argmax())
        np.testing.assert_allclose(answer["probabilities"], probabilities, atol=1e-6)


def test_a_bad_request_gets_a_json_400_and_the_connection_stays_usable(service, crops):
    host, port = service.server_address[:2]
    connection = http.client.HTTPConnection(host, port, timeout=TIMEOUT_S)
    try:
        status, headers, payload = call(service, "POST", "/classify", b"{", connection=connection)
        assert status == 400 and headers["Content-Type"] == "application/json"
        assert payload.count(b"\n") == 0 and "not JSON" in json.loads(payload)["error"]
        assert classify(service, crops[0].tolist(), connection=connection)[0] == 200
    finally:
        connection.close()


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/nowhere", None, 404),
        ("GET", "/classify", None, 405),
        ("POST", "/health", b"", 405),
    ],
)
def test_unknown_paths_and_methods_get_json_errors_naming_the_endpoints(
    service, method, path, body, status
):
    answer = call(service, method, path, body)
    assert answer[0] == status
    assert "POST /classify, GET /health, GET /metrics" in json.loads(answer[2])["error"]


def test_an_oversized_body_is_refused_without_reading_it(service):
    huge = {"Content-Length": str(10**6)}
    status, headers, payload = call(service, "POST", "/classify", b"{}", headers=huge)
    assert status == 413 and headers["Connection"] == "close"
    assert "bytes" in json.loads(payload)["error"]


def metric(text: str, line_start: str) -> float:
    """The value of the one sample line that starts with ``line_start``."""
    (value,) = [line.split()[-1] for line in text.splitlines() if line.startswith(line_start)]
    return float(value)


def test_metrics_count_requests_errors_latency_and_batch_sizes(service, crops):
    requests = [threading.Thread(target=classify, args=(service, c.tolist())) for c in crops]
    for thread in requests:
        thread.start()
    for thread in requests:
        thread.join(TIMEOUT_S)
    call(service, "POST", "/classify", b"[]")
    status, headers, payload = call(service, "GET", "/metrics")
    text = payload.decode()
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    assert metric(text, 'classifier_requests_total{endpoint="/classify"}') == len(crops) + 1
    assert metric(text, 'classifier_errors_total{endpoint="/classify",status="400"}') == 1
    assert (
        metric(text, 'classifier_request_latency_seconds_count{endpoint="/classify"}')
        == len(crops) + 1
    )
    assert (
        metric(text, 'classifier_request_latency_seconds_bucket{endpoint="/classify",le="+Inf"}')
        == len(crops) + 1
    )
    assert metric(text, "classifier_batch_size_sum") == len(crops)  # the 400 never reached it
    assert 1 <= metric(text, "classifier_batch_size_count") <= len(crops)


def test_leaving_serving_stops_the_batcher_and_closes_the_port():
    with serving(Options(port=0)) as server:
        host, port = server.server_address[:2]
        assert server.batcher.running
    assert not server.batcher.running
    with pytest.raises(ConnectionRefusedError):
        http.client.HTTPConnection(host, port, timeout=TIMEOUT_S).connect()


# Subprocess: SIGTERM handling and the exit code belong to a real process.
def test_the_service_process_logs_its_url_and_exits_0_on_sigterm():
    child = subprocess.Popen(
        [sys.executable, "-m", "service.app", "--port", "0"],
        cwd=EXAMPLE_DIR,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        url = _listening_url(child)
        host, port = url.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT_S)
        connection.request("GET", "/health")
        assert connection.getresponse().status == 200
        connection.close()
        child.send_signal(signal.SIGTERM)
        assert child.wait(TIMEOUT_S) == 0
    finally:
        child.kill()
        child.wait(TIMEOUT_S)
        child.stderr.close()


def _listening_url(child: subprocess.Popen[str]) -> str:
    """The URL from the child's start line, read in a thread so a silent child cannot hang."""
    found: list[str] = []

    def read() -> None:
        for line in child.stderr:
            if "listening on " in line:
                found.append(line.split("listening on ")[1].strip())
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(TIMEOUT_S * 3)
    assert found, "the service printed no 'listening on' line"
    assert found[0].startswith("http://127.0.0.1:")
    return found[0]
