"""A small thread-safe HTTP client for services under test, on loopback only.

Built on urllib3 rather than httpx: it is one small pure-Python dependency (no h11,
anyio, sniffio, certifi or idna chain pulled into every user's test environment), its
``PoolManager`` is documented thread-safe and keeps connections alive per host, which
is what load-test workers sharing one client need, and a plain blocking call adds the
least client-side latency to what the load generator measures.  urllib3 is imported
when a client is made, never at plugin load.

Traffic goes only to this host: a base URL that is not ``http://`` on a loopback
address is refused, paths must be paths (not another URL), and redirects are returned
as responses, never followed.
"""

from __future__ import annotations

import ipaddress
import json as jsonlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_MAX_CONNECTIONS = 32  # kept alive; more are opened (and closed) under a burst
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


class HttpError(Exception):
    """A request that got no HTTP answer (refused, timed out, cut off): one line."""


@dataclass(frozen=True)
class Response:
    """One HTTP answer, read in full."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes
    url: str = ""
    elapsed_ms: float = field(default=0.0, compare=False)

    @property
    def ok(self) -> bool:
        """Whether the status is 2xx (what a ready check waits for)."""
        return 200 <= self.status_code < 300

    @property
    def text(self) -> str:
        """The body decoded with the charset the server declared (UTF-8 when none)."""
        return self.content.decode(_charset(self.headers), errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON (raises ``ValueError`` when it is not JSON)."""
        return jsonlib.loads(self.content)


def _charset(headers: Mapping[str, str]) -> str:
    content_type = headers.get("content-type") or headers.get("Content-Type") or ""
    for part in content_type.split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.lower() == "charset" and value:
            charset = value.strip("\"' ")
            return charset if _known_codec(charset) else "utf-8"
    return "utf-8"


def _known_codec(name: str) -> bool:
    try:
        "".encode(name)
    except LookupError:
        return False
    return True


def loopback_problem(base_url: str) -> str | None:
    """Why *base_url* is not an ``http://`` URL on this host's loopback, or None."""
    try:
        parts = urlsplit(base_url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    if parts.scheme != "http":
        return "must start with http:// (plain HTTP on loopback)"
    if host == "localhost":
        return None
    try:
        return None if ipaddress.ip_address(host).is_loopback else "is not a loopback address"
    except ValueError:
        return "is not a loopback address"


class HttpClient:
    """Requests to one loopback base URL, safe to share between threads.

    ``get``/``post`` return a :class:`Response` for every HTTP answer (4xx and 5xx
    included: the caller judges them) and raise :class:`HttpError` when there is none.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        problem = loopback_problem(base_url)
        if problem:
            raise ValueError(
                f"HttpClient: base URL {base_url!r} {problem}; load traffic goes only to"
                " loopback: use http://127.0.0.1:PORT, http://localhost:PORT or http://[::1]:PORT"
            )
        if not timeout_s > 0:
            raise ValueError(f"HttpClient: timeout_s must be > 0, got {timeout_s!r}")
        import urllib3  # deferred: nothing of the client is loaded at plugin start

        self._urllib3 = urllib3
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._pool = urllib3.PoolManager(
            num_pools=4, maxsize=max_connections, block=False, retries=False
        )

    def get(
        self,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
    ) -> Response:
        """``GET base_url + path``."""
        return self.request("GET", path, headers=headers, timeout_s=timeout_s)

    def post(
        self,
        path: str,
        json: Any = None,
        data: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        *,
        timeout_s: float | None = None,
    ) -> Response:
        """``POST base_url + path`` with a JSON body (*json*) or raw bytes/text (*data*)."""
        if json is not None and data is not None:
            raise ValueError("HttpClient.post: pass json or data, not both")
        sent = dict(headers or {})
        body = data.encode("utf-8") if isinstance(data, str) else data
        if json is not None:
            body = jsonlib.dumps(json).encode("utf-8")
            sent.setdefault("Content-Type", "application/json")
        return self.request("POST", path, body=body, headers=sent, timeout_s=timeout_s)

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
    ) -> Response:
        """Any method; the answer read in full, the connection returned to the pool."""
        url = self.url_for(path)
        timeout = self.timeout_s if timeout_s is None else timeout_s
        exceptions = self._urllib3.exceptions
        try:
            answer = self._pool.request(
                method,
                url,
                body=body,
                headers=dict(headers or {}),
                timeout=timeout,
                redirect=False,
            )
        except (exceptions.HTTPError, OSError) as exc:
            raise HttpError(f"{method} {url}: {_reason(exc, exceptions, timeout)}") from None
        return Response(answer.status, answer.headers, answer.data, url)

    def url_for(self, path: str) -> str:
        """The full URL of *path*; a path that is really another URL is refused."""
        if not path.startswith("/") or path.startswith("//"):
            raise ValueError(
                f"HttpClient: expected a path starting with a single '/', e.g. '/health',"
                f" got {path!r}"
            )
        return self.base_url + path

    def close(self) -> None:
        """Close every pooled connection; the client can still be used (it reconnects)."""
        self._pool.clear()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"HttpClient({self.base_url!r})"


def _reason(exc: BaseException, exceptions: Any, timeout_s: float) -> str:
    """A short reason for a request that got no answer, for one-line messages."""
    text = str(exc)
    # NewConnectionError subclasses ConnectTimeoutError in urllib3 2: test it first.
    if isinstance(exc, exceptions.NewConnectionError | ConnectionRefusedError):
        return "connection refused" if "refused" in text.lower() else _last_part(text)
    if isinstance(exc, exceptions.TimeoutError | TimeoutError):
        return f"no answer within {timeout_s:.3g} s"
    if isinstance(exc, exceptions.ProtocolError):
        return f"connection closed without an answer ({_last_part(text)})"
    return _last_part(text) or type(exc).__name__


def _last_part(text: str) -> str:
    first_line = text.splitlines()[0] if text else ""
    return first_line.rsplit(": ", 1)[-1].strip(" ')(\"")
