"""The loopback HTTP client: what it sends, what it returns, and where it refuses to go."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from pytest_deploycheck.measure.http import HttpClient, HttpError, Response, loopback_problem
from pytest_deploycheck.measure.service import free_port

RELEASE = threading.Event()  # set at teardown: a /slow request never outlives its test
SLOW_WAIT_S = 10.0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real service would

    def do_GET(self) -> None:
        if self.path == "/slow":
            RELEASE.wait(SLOW_WAIT_S)
        if self.path == "/moved":
            self._answer(302, b"", {"Location": "http://example.com/"})
        elif self.path == "/latin":
            self._answer(
                200, "café".encode("latin-1"), {"Content-Type": "text/plain; charset=latin-1"}
            )
        elif self.path == "/missing":
            self._answer(404, b'{"error": "missing"}')
        else:
            self._answer(
                200, json.dumps({"path": self.path, "agent": self.headers["X-Who"]}).encode()
            )

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        reply = {"body": body.decode(), "type": self.headers.get("Content-Type")}
        self._answer(201, json.dumps(reply).encode())

    def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {"Content-Type": "application/json"}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server_url() -> Iterator[str]:
    RELEASE.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        RELEASE.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def client(server_url: str) -> Iterator[HttpClient]:
    with HttpClient(server_url, timeout_s=5.0) as made:
        yield made


def test_get_returns_status_headers_and_json(client: HttpClient) -> None:
    answer = client.get("/hello?x=1", headers={"X-Who": "test"})
    assert answer.status_code == 200
    assert answer.ok
    assert answer.json() == {"path": "/hello?x=1", "agent": "test"}
    assert answer.headers["content-type"] == "application/json"  # any case
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.content == answer.text.encode()
    assert answer.url.endswith("/hello?x=1")


def test_post_sends_json(client: HttpClient) -> None:
    answer = client.post("/items", json={"image": [1, 2]})
    assert answer.status_code == 201
    assert answer.json() == {"body": '{"image": [1, 2]}', "type": "application/json"}


def test_post_sends_raw_data(client: HttpClient) -> None:
    answer = client.post("/items", data="a=1", headers={"Content-Type": "text/plain"})
    assert answer.json() == {"body": "a=1", "type": "text/plain"}


def test_post_takes_json_or_data_not_both(client: HttpClient) -> None:
    with pytest.raises(ValueError, match="pass json or data, not both"):
        client.post("/items", json={}, data=b"x")


def test_an_error_status_is_an_answer_not_an_exception(client: HttpClient) -> None:
    answer = client.get("/missing")
    assert answer.status_code == 404
    assert not answer.ok
    assert answer.json() == {"error": "missing"}


def test_text_uses_the_declared_charset(client: HttpClient) -> None:
    assert client.get("/latin").text == "café"


def test_a_redirect_is_returned_never_followed(client: HttpClient) -> None:
    answer = client.get("/moved")
    assert answer.status_code == 302
    assert answer.headers["Location"] == "http://example.com/"


def test_one_client_serves_many_threads(client: HttpClient) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda i: client.get(f"/n{i}").status_code, range(64)))
    assert statuses == [200] * 64


def test_the_client_reconnects_after_close(client: HttpClient) -> None:
    client.close()
    assert client.get("/again").status_code == 200


def test_no_answer_within_the_timeout_is_an_http_error(server_url: str) -> None:
    with HttpClient(server_url, timeout_s=0.2) as quick, pytest.raises(HttpError) as caught:
        quick.get("/slow")
    assert str(caught.value) == f"GET {server_url}/slow: no answer within 0.2 s"


def test_a_refused_connection_is_an_http_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with HttpClient(url) as nowhere, pytest.raises(HttpError) as caught:
        nowhere.get("/health")
    assert str(caught.value) == f"GET {url}/health: connection refused"


@pytest.mark.parametrize("path", ["health", "http://example.com/", "//example.com/x", ""])
def test_a_path_must_be_a_path(client: HttpClient, path: str) -> None:
    with pytest.raises(ValueError, match="expected a path starting with a single '/'"):
        client.get(path)


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com",
        "http://10.0.0.1:8000",
        "http://0.0.0.0:8000",
        "https://127.0.0.1:8443",
        "ftp://127.0.0.1",
        "127.0.0.1:8000",
        "http://127.0.0.1:99999",
        "http://localhost.example.com",
    ],
)
def test_only_loopback_http_is_allowed(url: str) -> None:
    with pytest.raises(ValueError) as caught:
        HttpClient(url)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"HttpClient: base URL {url!r}")
    assert "load traffic goes only to loopback" in message


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8000", "http://localhost:1", "http://[::1]:8000/v1", "http://127.0.0.2"],
)
def test_loopback_urls_are_accepted(url: str) -> None:
    assert loopback_problem(url) is None


def test_a_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="timeout_s must be > 0"):
        HttpClient("http://127.0.0.1:1", timeout_s=0)


def test_a_response_falls_back_to_utf8_for_an_unknown_charset() -> None:
    answer = Response(200, {"Content-Type": "text/plain; charset=nonsense"}, "é".encode())
    assert answer.text == "é"
    assert Response(200, {}, b"[1]").json() == [1]


def test_importing_the_module_does_not_load_urllib3() -> None:
    # A fresh interpreter: this one has urllib3 loaded already by the tests above.
    code = "import sys, pytest_deploycheck.measure.http; print('urllib3' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "False"
