"""The open-loop load generator's own limits: schedule kept, client cost, vs a reference.

What it measures
    1. In process: ``run_open_loop`` of a no-op body at 1k, 2k, 5k, 10k and 20k req/s
       offered (3 s judged after 0.5 s of warm-up each, default worker pool): the
       achieved rate, the generator's own lateness at p99 (``late_p99_ms``: start minus
       the later of the scheduled time and the worker being free) and whether the run
       is valid (at most 1% of requests more than 1 ms late) and not saturated.
    2. Over HTTP on loopback: the same, with a body doing ``client.get("/health")``
       through the plugin's ``HttpClient`` against the lightest fair server: a
       stdlib ``ThreadingHTTPServer`` in its own process, HTTP/1.1 keep-alive, Nagle off
       and each answer (12 bytes of JSON) in one write, as the example service does
       (the test echo service answers HTTP/1.0 and closes every connection, so each
       request would pay a TCP connect).  8 workers.
       The client's added latency at p99 is the generator's p99 (from the scheduled
       arrival) minus the server's own p99 handling time (read by the server from
       the parsed request line to the written answer): an upper bound, since the
       loopback transport and the server's socket reads are charged to the client.
       The body also times its own call (send to answer, no queueing, no lateness):
       "call p99", what hey reports per request.  Server times cover the whole run.
    3. The reference: ``hey`` on the same server at the same rate with the same 8
       connections (``-c 8 -q rate/8``, per-request times from ``-o csv``, the first
       0.5 s dropped), interleaved with the generator, 3 rounds, medians of the p99s.
       hey rather than wrk: wrk is closed-loop (as fast as it can), so it cannot be
       held at a given rate; hey's ``-q`` paces every worker.  hey's pacing is a
       throttled closed loop (its latency is from the actual send), so its p99 holds
       no queueing; the generator's holds any wait its Poisson arrivals met.  A
       ``wrk -c 8`` run is printed as info: the server's closed-loop capacity.

Goal
    in process >= 5,000 req/s kept; over HTTP >= 1,000 req/s kept with the client
    adding <= 1 ms at p99; the generator's p99 within 10% of hey's at the same rate.

Run
    apt-get install -y hey wrk        # the reference tools, not plugin dependencies
    . .venv/bin/activate && python benchmarks/bench_load.py     # about 2 minutes
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import goal_line, percentile_ms, print_header, print_table

from pytest_deploycheck.measure.http import HttpClient
from pytest_deploycheck.measure.load import LoadPlan, LoadResult, run_open_loop

HOST = "127.0.0.1"  # load traffic goes to loopback only
WARMUP_S = 0.5
DURATION_S = 3.0
IN_PROCESS_RATES = (1_000, 2_000, 5_000, 10_000, 20_000)
HTTP_RATES = (250, 500, 1_000, 2_000, 4_000)
COMPARE_RATES = (500, 1_000, 2_000)
COMPARE_ROUNDS = 3
HTTP_WORKERS = 8
KEPT_TOLERANCE = 0.01
ANSWER = b'{"ok": true}'


# --------------------------------------------------------------------------- server


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as any real service
    disable_nagle_algorithm = True  # small replies must not wait for the client's ACK
    wbufsize = 1 << 16  # headers and body leave in one write
    server: _Server

    def parse_request(self) -> bool:
        self._started = time.perf_counter_ns()  # the request line has just been read
        return super().parse_request()

    def do_GET(self) -> None:
        if self.path == "/stats":
            self._answer(json.dumps(self.server.take_samples()).encode())
            return
        self._answer(ANSWER)
        self.server.add_sample(time.perf_counter_ns() - self._started)

    def _answer(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, port: int) -> None:
        super().__init__((HOST, port), _Handler)
        self._samples: list[int] = []
        self._lock = threading.Lock()

    def add_sample(self, ns: int) -> None:
        with self._lock:
            self._samples.append(ns)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client closing its keep-alive connection at the end is no news

    def take_samples(self) -> list[int]:
        with self._lock:
            samples, self._samples = self._samples, []
        return samples


def serve(port: int) -> None:
    _Server(port).serve_forever()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def start_server() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, __file__, "--serve", str(port)])
    url = f"http://{HOST}:{port}"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((HOST, port), timeout=0.2):
                return process, url
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"the benchmark server did not listen on {url} within 10 s")


def server_samples(client: HttpClient) -> list[int]:
    """The handling times recorded since the last call (and forget them)."""
    samples: list[int] = client.get("/stats").json()
    return samples


# --------------------------------------------------------------------------- generator


@dataclass(frozen=True)
class Row:
    rate: int
    result: LoadResult

    @property
    def late_fraction(self) -> str:
        reason = self.result.invalid_reason or ""
        found = re.search(r"(\d+) of (\d+) requests", reason)
        if found:
            return f"{int(found[1]) / int(found[2]):.1%}"
        return "<= 1%" if self.result.generator_valid else "n/a"

    @property
    def kept(self) -> bool:
        r = self.result
        on_rate = abs(r.achieved_qps / r.scheduled_qps - 1) <= KEPT_TOLERANCE
        return r.generator_valid and not r.saturated and r.errors == 0 and on_rate

    def cells(self) -> list[str]:
        r = self.result
        late = "n/a" if r.late_p99_ms is None else f"{r.late_p99_ms:.3f}"
        return [
            f"{self.rate:,}",
            f"{r.scheduled_qps:,.0f}",
            f"{r.achieved_qps:,.0f}",
            str(r.concurrency),
            late,
            self.late_fraction,
            f"{r.p99_ms:.3f}" if r.p99_ms is not None else "n/a",
            "yes" if r.generator_valid else "NO",
            "yes" if r.saturated else "no",
            "yes" if self.kept else "NO",
        ]


HEADERS = (
    "offered",
    "scheduled",
    "achieved",
    "workers",
    "late p99 ms",
    "late",
    "p99 ms",
    "valid",
    "saturated",
    "kept",
)


def load(body: Callable[[], object], rate: int, concurrency: int | None) -> LoadResult:
    plan = LoadPlan(
        qps=rate, duration_s=DURATION_S, warmup_s=WARMUP_S, concurrency=concurrency, seed=rate
    )
    return run_open_loop(body, plan)


def highest_kept(rows: list[Row]) -> int:
    kept = [row.rate for row in rows if row.kept]
    return max(kept) if kept else 0


def in_process() -> int:
    print("\n-- 1. in process, no-op body")
    rows = [Row(rate, load(lambda: None, rate, None)) for rate in IN_PROCESS_RATES]
    print_table(HEADERS, [row.cells() for row in rows])
    best = highest_kept(rows)
    goal_line(">= 5,000 req/s kept in process", best >= 5_000, f"highest kept {best:,} req/s")
    return best


@dataclass(frozen=True)
class HttpRun:
    """One generator run over HTTP, with the server's and the calls' own times (ns)."""

    row: Row
    server_ns: list[int]
    call_ns: list[int]

    def server_p99(self) -> float:
        return percentile_ms(self.server_ns, 99) if self.server_ns else float("nan")

    def call_p99(self) -> float:
        return percentile_ms(self.call_ns, 99) if self.call_ns else float("nan")

    def client_adds(self) -> float:
        return (self.row.result.p99_ms or float("nan")) - self.server_p99()


def http_row(client: HttpClient, rate: int) -> HttpRun:
    """The generator at *rate*; the body also times its own call (send to answer)."""
    calls: list[tuple[int, int]] = []
    clock = time.perf_counter_ns

    def body() -> None:
        started = clock()
        client.get("/health")
        calls.append((started, clock() - started))

    server_samples(client)  # forget the previous run's
    judged_from = clock() + round(WARMUP_S * 1e9)
    result = load(body, rate, HTTP_WORKERS)
    call_ns = [ns for started, ns in calls if started >= judged_from]
    return HttpRun(Row(rate, result), server_samples(client), call_ns)


def over_http(client: HttpClient) -> dict[int, HttpRun]:
    print(f"\n-- 2. over HTTP on loopback, GET /health, {HTTP_WORKERS} workers")
    runs = {rate: http_row(client, rate) for rate in HTTP_RATES}
    rows = [
        [
            *run.row.cells(),
            f"{run.call_p99():.3f}",
            f"{run.server_p99():.3f}",
            f"{run.client_adds():.3f}",
        ]
        for run in runs.values()
    ]
    print_table((*HEADERS, "call p99 ms", "server p99 ms", "client adds ms"), rows)
    return runs


# --------------------------------------------------------------------------- references


def hey_p99_ms(url: str, rate: int) -> tuple[float, float]:
    """(p99 ms, achieved req/s) of hey at *rate* over the 8 connections, warm-up dropped."""
    seconds = WARMUP_S + DURATION_S
    command = ["hey", "-z", f"{seconds:g}s", "-c", str(HTTP_WORKERS)]
    command += ["-q", f"{rate / HTTP_WORKERS:g}", "-o", "csv", f"{url}/health"]
    out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=60).stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    kept = [row for row in rows if float(row["offset"]) >= WARMUP_S and row["status-code"] == "200"]
    samples = [round(float(row["response-time"]) * 1e9) for row in kept]
    return percentile_ms(samples, 99), len(kept) / DURATION_S


Comparison = tuple[int, float, float, float, float, float]


def compare(client: HttpClient, url: str) -> list[Comparison]:
    print(f"\n-- 3. generator vs hey, same server, same rate, {HTTP_WORKERS} connections")
    out = []
    for rate in COMPARE_RATES:
        ours, calls, theirs, hey_rates = [], [], [], []
        for _ in range(COMPARE_ROUNDS):
            run = http_row(client, rate)
            ours.append(run.row.result.p99_ms or float("nan"))
            calls.append(run.call_p99())
            p99, achieved = hey_p99_ms(url, rate)
            theirs.append(p99)
            hey_rates.append(achieved)
        a, b = statistics.median(ours), statistics.median(theirs)
        out.append((rate, a, statistics.median(calls), b, statistics.median(hey_rates), a / b - 1))
        print(
            f"   {rate} req/s: generator p99 {fmt_list(ours)} ms, its calls' p99"
            f" {fmt_list(calls)} ms, hey p99 {fmt_list(theirs)} ms"
        )
    print_table(
        ("rate", "generator p99 ms", "calls p99 ms", "hey p99 ms", "hey achieved", "difference"),
        [
            [f"{r:,}", f"{a:.3f}", f"{c:.3f}", f"{b:.3f}", f"{h:,.0f}", f"{d:+.1%}"]
            for r, a, c, b, h, d in out
        ],
    )
    return out


def fmt_list(values: list[float]) -> str:
    return "/".join(f"{v:.3f}" for v in values)


def wrk_info(url: str) -> None:
    if shutil.which("wrk") is None:
        print("info wrk not found (apt-get install -y wrk): server capacity not measured")
        return
    command = ["wrk", "-t", "1", "-c", str(HTTP_WORKERS), "-d", "3s", "--latency", f"{url}/health"]
    out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=60).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p99 = re.search(r"99%\s+(\S+)", out)
    print(
        f"info wrk closed loop, {HTTP_WORKERS} connections, 3 s: "
        f"{float(rate[1]) if rate else float('nan'):,.0f} req/s, p99 {p99[1] if p99 else 'n/a'}"
    )


def http_part() -> None:
    process, url = start_server()
    try:
        with HttpClient(url) as client:
            for _ in range(200):
                client.get("/health")  # connections and the server's threads warm
            runs = over_http(client)
            judge_http(runs)
            wrk_info(url)
            if shutil.which("hey") is None:
                print("goal p99 within 10% of hey: not measured (apt-get install -y hey)")
                return
            judge_compare(compare(client, url))
    finally:
        process.terminate()
        process.wait(timeout=10)


def judge_http(runs: dict[int, HttpRun]) -> None:
    best = highest_kept([run.row for run in runs.values()])
    goal_line(">= 1,000 req/s kept over HTTP", best >= 1_000, f"highest kept {best:,} req/s")
    added = runs[1_000].client_adds()
    goal_line("client adds <= 1 ms at p99, 1,000 req/s", added <= 1.0, f"{added:.3f} ms")


def judge_compare(rows: list[Comparison]) -> None:
    for rate, *_figures, difference in rows:
        goal = f"p99 within 10% of hey's at {rate:,} req/s"
        goal_line(goal, abs(difference) <= 0.10, f"{difference:+.1%}")


def main() -> int:
    print_header("open-loop load generator")
    print(f"   load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {time.ctime()}")
    in_process()
    http_part()
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve(int(sys.argv[2]))
    else:
        sys.exit(main())
