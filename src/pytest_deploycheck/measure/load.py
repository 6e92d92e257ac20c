"""Open-loop load: Poisson arrivals at an offered rate, latency from the scheduled arrival.

A closed loop (one call after another) cannot see queueing: when one call stalls for
500 ms it records one slow sample, while a real service at 50 req/s has 25 requests
piled up behind the stall.  Here requests arrive on a Poisson schedule fixed before the
run (exponential gaps at the offered rate, seeded), and every request's latency is
measured **from its scheduled arrival time**, so a request that waited for a free
worker counts its wait (no "coordinated omission").

There is no dispatcher thread: ``concurrency`` workers each take the next scheduled
arrival from one shared, locked cursor, sleep until its time, call the body and record
``scheduled``, ``start`` and ``end``.  The workers grab arrivals in the order they
become free, which is exactly a FIFO queue in front of ``concurrency`` servers; the
pure :func:`simulate_queue` gives the same accounting and the tests hold the threaded
runner to it on a virtual clock.

The rules, and why:

* **Workers** (``concurrency=None``): three calibration calls estimate the service
  time ``s``; the pool gets ``min(32, max(2, ceil(2 * qps * s)))`` workers -- twice the
  offered load in Erlangs, so the pool itself rarely queues a request that a service of
  that speed could take, and never more than 32 threads on a small host.
* **Generator validity**: a request is *late* when its worker was free (its previous
  request had ended) and its scheduled time had come, yet it started more than
  ``schedule_tolerance_ms`` (1 ms) later -- the sleep overslept or the host starved the
  generator.  More than 1% of the judged requests late (and more than one) makes the
  run **invalid**
  (inconclusive), with the reason; a late generator is never passed off as a slower
  service, and it never silently becomes a closed loop.
* **Saturation**: the achieved rate is the judged requests completed over the time
  from the end of the warm-up to the later of the schedule's end and the last judged
  completion; it is compared with the rate the schedule actually offered (so Poisson
  noise in the count cancels out).  Short by more than ``saturation_tolerance`` (5%)
  -- the last request finishing more than about 5% of the window after the schedule
  ended -- or queueing time growing at more than 5% of wall time between the first and
  last quarter of the run, means **saturated**, in words naming both rates.  A stable
  service finishing its last request one latency after the schedule ends costs
  ``latency / window`` of the achieved rate, so keep the window 40 times the latency
  bound or more (:func:`pytest_deploycheck.measure.capacity.step_duration_for` does).
* **Bounded**: no request starts later than ``drain_s`` (default ``max(1 s, 25%`` of
  the run) after the schedule ends; the rest are *dropped* and count in the judged
  percentile with the latency they had already accrued (a lower bound), and the run is
  saturated.
* **Early stop** (``budget_ms`` set): at doubling looks the binomial rule of
  :func:`pytest_deploycheck.measure.stats.decide` is applied to the completed judged
  requests; once it says the percentile is over the budget the run stops taking
  requests.  Slow requests complete last, so the completed ones favour a pass: the
  early fail is conservative.  A pass never stops a run early: holding the rate
  means keeping up for the whole window, which only the whole window shows.
* Requests in the first ``warmup_s`` are run but not judged; errors (the body raised)
  are counted, never raised, and left out of the latency percentiles (a fast failure
  would flatter the tail).

Clock and sleep are injected, so the tests drive the runner on a virtual clock.
Nothing here imports pytest; numpy comes in through the statistics, inside functions.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

Clock = Callable[[], int]
SleepUntil = Callable[[int], None]
Body = Callable[[], object]

NS_PER_S = 1_000_000_000
NS_PER_MS = 1_000_000
MAX_AUTO_CONCURRENCY = 32
MIN_AUTO_CONCURRENCY = 2
CONCURRENCY_HEADROOM = 2.0
CALIBRATION_CALLS = 3
SCHEDULE_TOLERANCE_MS = 1.0
LATE_FRACTION = 0.01
# One late request never makes a run invalid: in a short run (under 100 requests) the
# 1% rule would otherwise allow none, which no shared host can promise.
LATE_ALLOWED = 1
SATURATION_TOLERANCE = 0.05
MAX_ERROR_SAMPLES = 5
DEFAULT_CONFIDENCE = 0.99
# The workers are released this long after they are started, so thread start-up is not
# charged to the first arrivals.
START_LEAD_NS = 2 * NS_PER_MS
# A worker still inside the body this long after the run should have ended is left.
JOIN_GRACE_S = 5.0
_SPIN_NS = 200_000
_FIRST_LOOK = 32
_MIN_TREND_SAMPLES = 8


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def _is_positive(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def _is_non_negative(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


@dataclass(frozen=True)
class LoadPlan:
    """What to offer: ``qps`` for ``duration_s`` judged seconds after ``warmup_s``."""

    qps: float
    duration_s: float
    concurrency: int | None = None
    warmup_s: float = 0.0
    seed: int | None = None
    percentile: float = 99.0
    schedule_tolerance_ms: float = SCHEDULE_TOLERANCE_MS
    saturation_tolerance: float = SATURATION_TOLERANCE
    drain_s: float | None = None
    budget_ms: float | None = None
    confidence: float = DEFAULT_CONFIDENCE

    def __post_init__(self) -> None:
        _require(_is_positive(self.qps), f"LoadPlan qps must be > 0 req/s, got {self.qps!r}")
        _require(
            _is_positive(self.duration_s),
            f"LoadPlan duration_s must be > 0 seconds, got {self.duration_s!r}",
        )
        _require(
            _is_non_negative(self.warmup_s),
            f"LoadPlan warmup_s must be >= 0 seconds, got {self.warmup_s!r}",
        )
        self._check_concurrency()
        self._check_judging()

    def _check_concurrency(self) -> None:
        value = self.concurrency
        ok = value is None or (isinstance(value, int) and not isinstance(value, bool) and value > 0)
        _require(ok, f"LoadPlan concurrency must be a whole number >= 1 or None, got {value!r}")
        _require(
            self.seed is None or (isinstance(self.seed, int) and not isinstance(self.seed, bool)),
            f"LoadPlan seed must be an integer or None, got {self.seed!r}",
        )

    def _check_judging(self) -> None:
        p = self.percentile
        _require(_is_positive(p) and p < 100, f"LoadPlan percentile must be in (0, 100), got {p!r}")
        _require(
            _is_non_negative(self.schedule_tolerance_ms),
            f"LoadPlan schedule_tolerance_ms must be >= 0, got {self.schedule_tolerance_ms!r}",
        )
        tolerance = self.saturation_tolerance
        _require(
            _is_positive(tolerance) and tolerance < 1,
            f"LoadPlan saturation_tolerance must be in (0, 1), got {tolerance!r}",
        )
        _require(
            self.drain_s is None or _is_non_negative(self.drain_s),
            f"LoadPlan drain_s must be >= 0 seconds or None, got {self.drain_s!r}",
        )
        _require(
            self.budget_ms is None or _is_positive(self.budget_ms),
            f"LoadPlan budget_ms must be > 0 ms or None, got {self.budget_ms!r}",
        )
        c = self.confidence
        _require(_is_positive(c) and c < 1, f"LoadPlan confidence must be in (0, 1), got {c!r}")

    @property
    def total_s(self) -> float:
        """The whole schedule: warm-up plus the judged window."""
        return self.warmup_s + self.duration_s

    @property
    def drain_limit_s(self) -> float:
        """How long after the schedule ends requests may still start."""
        return self.drain_s if self.drain_s is not None else max(1.0, 0.25 * self.total_s)


def choose_concurrency(qps: float, service_s: float, cap: int = MAX_AUTO_CONCURRENCY) -> int:
    """Workers enough to keep up: twice the offered load in Erlangs, at least 2, capped."""
    wanted = math.ceil(CONCURRENCY_HEADROOM * qps * max(service_s, 0.0))
    return min(cap, max(MIN_AUTO_CONCURRENCY, wanted))


def poisson_arrivals(qps: float, duration_s: float, rng: random.Random) -> list[int]:
    """Arrival offsets in ns from the start: exponential gaps of mean 1/qps, all < duration."""
    _require(_is_positive(qps), f"poisson_arrivals qps must be > 0, got {qps!r}")
    offsets: list[int] = []
    t = rng.expovariate(qps)
    while t < duration_s:
        offsets.append(int(t * NS_PER_S))
        t += rng.expovariate(qps)
    return offsets


def simulate_queue(
    arrivals_ns: Sequence[int], service_ns: Sequence[int], workers: int
) -> list[tuple[int, int]]:
    """(start, end) of each request in a FIFO queue before *workers* servers.

    The discrete-event twin of :func:`run_open_loop`: arrival i (in order) goes to the
    server that is free first, starting at ``max(arrival, free)``.
    """
    import heapq

    _require(len(arrivals_ns) == len(service_ns), "simulate_queue needs one service time each")
    _require(workers >= 1, f"simulate_queue needs at least 1 worker, got {workers!r}")
    free = [0] * workers
    spans: list[tuple[int, int]] = []
    for arrival, service in zip(arrivals_ns, service_ns, strict=True):
        start = max(arrival, heapq.heappop(free))
        spans.append((start, start + service))
        heapq.heappush(free, start + service)
    return spans


def default_sleep_until(clock: Clock = time.perf_counter_ns) -> SleepUntil:
    """A sleep to an absolute *clock* time: the OS sleep, then a short spin for the rest."""

    def sleep_until(target_ns: int) -> None:
        remaining = target_ns - clock()
        if remaining > _SPIN_NS:
            time.sleep((remaining - _SPIN_NS / 2) / NS_PER_S)
        while clock() < target_ns:
            time.sleep(0)  # yields the GIL to a worker whose time has come

    return sleep_until


# --- the run -------------------------------------------------------------------------


@dataclass
class _Run:
    """The shared state of one run: the schedule, the cursor and the ledger."""

    body: Body
    plan: LoadPlan
    clock: Clock
    sleep_until: SleepUntil
    scheduled: list[int]
    origin: int
    judged_from: int
    stop_at: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    cursor: int = 0
    stopped_at: int | None = None
    judged_done: int = 0
    judged_over: int = 0
    next_look: int = _FIRST_LOOK
    start: list[int] = field(default_factory=list)
    end: list[int] = field(default_factory=list)
    free: list[int] = field(default_factory=list)
    errors: dict[int, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.scheduled)
        self.start, self.end, self.free = [-1] * n, [-1] * n, [-1] * n

    def take(self) -> int | None:
        """The next arrival for a free worker, or None once the run is over."""
        with self.lock:
            if self.stopped_at is not None or self.cursor >= len(self.scheduled):
                return None
            if self.clock() > self.stop_at:
                return None
            index = self.cursor
            self.cursor += 1
            return index

    def record(self, index: int, free: int, start: int, end: int, error: str | None) -> None:
        self.free[index], self.start[index], self.end[index] = free, start, end
        if error is not None:
            self.errors[index] = error
        if self.plan.budget_ms is None or self.scheduled[index] < self.judged_from:
            return
        with self.lock:
            self._count_judged(end, end - self.scheduled[index], error is not None)

    def _count_judged(self, end: int, latency_ns: int, failed: bool) -> None:
        if failed or self.stopped_at is not None:
            return
        assert self.plan.budget_ms is not None
        self.judged_done += 1
        self.judged_over += latency_ns > self.plan.budget_ms * NS_PER_MS
        if self.judged_done < self.next_look:
            return
        self.next_look *= 2
        from .stats import decide

        plan = self.plan
        if decide(self.judged_done, self.judged_over, plan.percentile, plan.confidence) == "fail":
            self.stopped_at = end


def _call(body: Body) -> str | None:
    """Call the body once; the exception's text when it raised (never re-raised)."""
    try:
        body()
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return None


def _worker(run: _Run) -> None:
    free_at = run.origin
    while (index := run.take()) is not None:
        scheduled = run.scheduled[index]
        if scheduled > run.clock():
            run.sleep_until(scheduled)
        start = run.clock()
        error = _call(run.body)
        end = run.clock()
        run.record(index, free_at, start, end, error)
        free_at = end


def _calibrate(body: Body, clock: Clock) -> float:
    """The median time of a few calls, in seconds: the service time the pool is sized by."""
    times = []
    for _ in range(CALIBRATION_CALLS):
        before = clock()
        _call(body)
        times.append(clock() - before)
    return sorted(times)[len(times) // 2] / NS_PER_S


def _resolve_concurrency(plan: LoadPlan, body: Body, clock: Clock) -> int:
    if plan.concurrency is not None:
        return plan.concurrency
    return choose_concurrency(plan.qps, _calibrate(body, clock))


def _resolve_seed(seed: int | None) -> int:
    """The seed used: the plan's, or a fresh one recorded so the run can be replayed."""
    return seed if seed is not None else random.SystemRandom().randrange(2**32)


def _run_workers(run: _Run, workers: int) -> int:
    """Start the pool, wait for it (bounded), and return how many workers were left hung."""
    threads = [
        threading.Thread(target=_worker, args=(run,), name=f"deploycheck-load-{i}", daemon=True)
        for i in range(workers)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + run.plan.total_s + run.plan.drain_limit_s + JOIN_GRACE_S
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return sum(thread.is_alive() for thread in threads)


def run_open_loop(
    body: Body,
    plan: LoadPlan,
    *,
    clock: Clock = time.perf_counter_ns,
    sleep_until: SleepUntil | None = None,
    arrivals_ns: Sequence[int] | None = None,
) -> LoadResult:
    """Offer *plan*'s Poisson load to *body* and judge it (see the module's rules).

    *arrivals_ns* replaces the Poisson schedule with given offsets (tests, replays);
    *sleep_until* must sleep to an absolute time of *clock* (default: a sleep on it).
    """
    seed = _resolve_seed(plan.seed)
    if arrivals_ns is None:
        arrivals_ns = poisson_arrivals(plan.qps, plan.total_s, random.Random(seed))
    workers = _resolve_concurrency(plan, body, clock)
    if plan.budget_ms is not None:
        # The early-stop rule's first look imports the statistics: done here, not in a
        # worker between two requests, where it would make that request late.
        from .stats import decide

        decide(_FIRST_LOOK, 0, plan.percentile, plan.confidence)
    origin = clock() + START_LEAD_NS
    run = _Run(
        body=body,
        plan=plan,
        clock=clock,
        sleep_until=sleep_until or default_sleep_until(clock),
        scheduled=[origin + offset for offset in sorted(arrivals_ns)],
        origin=origin,
        judged_from=origin + round(plan.warmup_s * NS_PER_S),
        stop_at=origin + round((plan.total_s + plan.drain_limit_s) * NS_PER_S),
    )
    hung = _run_workers(run, workers)
    return _summarise(run, workers, seed, hung, finished=clock())


# --- judging ---------------------------------------------------------------------------


def _ms(value_ns: float) -> float:
    return value_ns / NS_PER_MS


def percentiles_ms(samples_ns: Sequence[int], points: Sequence[float]) -> list[float | None]:
    """Nearest-rank percentiles in ms of ns samples (None when empty); 100 means the max.

    Nearest rank, as every latency figure of the package: the value reported was seen.
    """
    if not samples_ns:
        return [None for _ in points]
    from .stats import percentile_nearest_rank

    return [
        _ms(max(samples_ns)) if p >= 100 else _ms(percentile_nearest_rank(samples_ns, p))
        for p in points
    ]


def _median(values: Sequence[int]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return float(ordered[middle])
    return (ordered[middle - 1] + ordered[middle]) / 2


def queue_growth(scheduled_ns: Sequence[int], queued_ns: Sequence[int]) -> float | None:
    """How fast queueing time grows per unit of wall time, from the first to the last quarter.

    Medians of quarters, not a fitted line: one stalled request cannot tip them.  None
    when there are too few requests to tell.
    """
    n = len(scheduled_ns)
    if n < _MIN_TREND_SAMPLES:
        return None
    quarter = n // 4
    first, last = slice(0, quarter), slice(n - quarter, n)
    elapsed = _median(scheduled_ns[last]) - _median(scheduled_ns[first])
    if elapsed <= 0:
        return None
    return (_median(queued_ns[last]) - _median(queued_ns[first])) / elapsed


@dataclass(frozen=True)
class _Window:
    """The judged requests of a run, split by what became of them."""

    scheduled: list[int]
    completed: list[int]
    dropped: list[int]
    failed: list[int]
    cutoff: int
    last_end: int
    finished: int


def _window(run: _Run, finished: int) -> _Window:
    judged = [i for i, s in enumerate(run.scheduled) if s >= run.judged_from]
    cutoff = run.origin + round(run.plan.total_s * NS_PER_S)
    if run.stopped_at is not None:
        # Stopped early: judge what had arrived by then; the rest was never offered.
        cutoff = min(cutoff, max(run.stopped_at, run.judged_from))
        judged = [i for i in judged if run.scheduled[i] <= cutoff and run.start[i] >= 0]
    started = [i for i in judged if run.end[i] >= 0]
    return _Window(
        scheduled=judged,
        completed=[i for i in started if i not in run.errors],
        dropped=[i for i in judged if run.start[i] < 0],
        failed=[i for i in started if i in run.errors],
        cutoff=cutoff,
        last_end=max([run.end[i] for i in started] + [cutoff]),
        finished=max(finished, run.stop_at),
    )


def _rates(run: _Run, window: _Window) -> tuple[float, float]:
    """(arrived, achieved) req/s over the judged window."""
    span_s = max(window.cutoff - run.judged_from, 1) / NS_PER_S
    done = len(window.completed) + len(window.failed)
    busy_s = max(max(window.last_end, window.cutoff) - run.judged_from, 1) / NS_PER_S
    return len(window.scheduled) / span_s, done / busy_s


def _saturation(
    run: _Run, window: _Window, arrived: float, achieved: float
) -> tuple[bool, str | None]:
    plan = run.plan
    rates = f"offered {plan.qps:.1f} req/s, achieved {achieved:.1f} req/s: the service saturates"
    if window.dropped:
        return True, f"{rates} ({len(window.dropped)} requests never started before the drain)"
    if arrived > 0 and achieved < (1 - plan.saturation_tolerance) * arrived:
        over_s = (window.last_end - window.cutoff) / NS_PER_S
        return True, f"{rates} (the last request ended {over_s:.2f} s after the schedule)"
    started = [i for i in window.scheduled if run.start[i] >= 0]
    growth = queue_growth(
        [run.scheduled[i] for i in started], [run.start[i] - run.scheduled[i] for i in started]
    )
    if growth is not None and growth > plan.saturation_tolerance:
        return True, f"{rates} (queueing time grows {growth * 1000:.0f} ms per second)"
    return False, None


def _validity(run: _Run, window: _Window, hung: int) -> tuple[bool, str | None, list[int]]:
    """Whether the generator kept its schedule; the lateness of each started request."""
    started = [i for i in window.scheduled if run.start[i] >= 0]
    late_ns = [run.start[i] - max(run.scheduled[i], run.free[i]) for i in started]
    if hung:
        return False, f"{hung} workers were still inside the body when the run ended", late_ns
    limit = run.plan.schedule_tolerance_ms * NS_PER_MS
    late = sum(value > limit for value in late_ns)
    if late_ns and late > max(LATE_ALLOWED, LATE_FRACTION * len(late_ns)):
        reason = (
            f"the load generator could not keep its schedule: {late} of {len(late_ns)} "
            f"requests started more than {run.plan.schedule_tolerance_ms:g} ms late with a "
            "worker free (host too busy or too few cores)"
        )
        return False, reason, late_ns
    return True, None, late_ns


def _summarise(run: _Run, workers: int, seed: int, hung: int, *, finished: int) -> LoadResult:
    plan = run.plan
    window = _window(run, finished)
    latency_ns = [run.end[i] - run.scheduled[i] for i in window.completed]
    latency_ns += [window.finished - run.scheduled[i] for i in window.dropped]
    queued_ns = [run.start[i] - run.scheduled[i] for i in window.scheduled if run.start[i] >= 0]
    arrived, achieved = _rates(run, window)
    saturated, saturation_reason = _saturation(run, window, arrived, achieved)
    valid, invalid_reason, late_ns = _validity(run, window, hung)
    p50, p90, p99, peak, judged = percentiles_ms(latency_ns, (50, 90, 99, 100, plan.percentile))
    q50, q99, qmax = percentiles_ms(queued_ns, (50, 99, 100))
    return LoadResult(
        offered_qps=plan.qps,
        scheduled_qps=arrived,
        achieved_qps=achieved,
        requests=len(window.completed),
        errors=len(window.failed),
        error_samples=[run.errors[i] for i in sorted(run.errors)][:MAX_ERROR_SAMPLES],
        dropped=len(window.dropped),
        percentile=plan.percentile,
        percentile_ms=judged,
        p50_ms=p50,
        p90_ms=p90,
        p99_ms=p99,
        max_ms=peak,
        queue_p50_ms=q50,
        queue_p99_ms=q99,
        queue_max_ms=qmax,
        late_p99_ms=percentiles_ms(late_ns, (99,))[0],
        generator_valid=valid,
        invalid_reason=invalid_reason,
        generator_late=not valid and not hung,
        saturated=saturated,
        saturation_reason=saturation_reason,
        stopped_early=run.stopped_at is not None,
        duration_s=plan.duration_s,
        warmup_s=plan.warmup_s,
        concurrency=workers,
        seed=seed,
        latency_samples_ns=latency_ns,
    )


def _fmt(value: float | None, unit: str = " ms") -> str:
    return "n/a" if value is None else f"{value:.1f}{unit}"


@dataclass(frozen=True)
class LoadResult:
    """One open-loop run: rates, latency from scheduled arrival, queueing, validity.

    Counts are of judged requests (after the warm-up): ``requests`` completed without
    error, ``errors`` raised, ``dropped`` never started before the drain ended.
    ``scheduled_qps`` is the rate the seeded schedule really offered in the window,
    ``late_p99_ms`` the generator's own lateness; ``error_samples`` are the first
    messages of the whole run, warm-up included.
    """

    offered_qps: float
    scheduled_qps: float
    achieved_qps: float
    requests: int
    errors: int
    error_samples: list[str]
    dropped: int
    percentile: float
    percentile_ms: float | None
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    queue_p50_ms: float | None
    queue_p99_ms: float | None
    queue_max_ms: float | None
    late_p99_ms: float | None
    generator_valid: bool
    invalid_reason: str | None
    saturated: bool
    saturation_reason: str | None
    stopped_early: bool
    duration_s: float
    warmup_s: float
    concurrency: int
    seed: int
    latency_samples_ns: list[int] = field(repr=False)
    # Invalid only because requests started late (no worker hung): every latency still
    # counts from its scheduled arrival, so the lateness is inside the figures and can
    # only overstate them; checks.load and capacity.step_holds accept a pass then.
    generator_late: bool = False

    def as_extra(self, *, samples: bool = False) -> dict[str, Any]:
        """Plain JSON figures for the report; the raw samples only when asked for."""
        extra = {
            name: getattr(self, name)
            for name in self.__dataclass_fields__
            if name != "latency_samples_ns"
        }
        extra["error_samples"] = list(self.error_samples)
        if samples:
            extra["latency_samples_ns"] = list(self.latency_samples_ns)
        return extra

    def display(self) -> str:
        """A short phrase, e.g. ``p99 84.2 ms at 50.0 req/s offered (49.8 achieved)``."""
        return (
            f"p{self.percentile:g} {_fmt(self.percentile_ms)} at {self.offered_qps:.1f} req/s "
            f"offered ({self.achieved_qps:.1f} achieved)"
        )


# --- closed-loop clients ---------------------------------------------------------------


@dataclass(frozen=True)
class ClientStats:
    """One closed-loop client's share of a run."""

    client: int
    requests: int
    errors: int
    p50_ms: float | None
    p99_ms: float | None


@dataclass(frozen=True)
class ClientsResult:
    """N closed-loop clients at once: per-client figures and the aggregate."""

    clients: int
    duration_s: float
    requests: int
    errors: int
    error_samples: list[str]
    throughput_qps: float
    percentile: float
    percentile_ms: float | None
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    per_client: list[ClientStats]
    hung_clients: int
    latency_samples_ns: list[int] = field(repr=False)

    def as_extra(self, *, samples: bool = False) -> dict[str, Any]:
        """Plain JSON figures, one dict per client under ``per_client``."""
        extra = {
            name: getattr(self, name)
            for name in self.__dataclass_fields__
            if name not in ("latency_samples_ns", "per_client")
        }
        extra["error_samples"] = list(self.error_samples)
        extra["per_client"] = [vars(stats).copy() for stats in self.per_client]
        if samples:
            extra["latency_samples_ns"] = list(self.latency_samples_ns)
        return extra

    def display(self) -> str:
        """A short phrase, e.g. ``4 clients: p99 12.0 ms, 310.5 req/s in all``."""
        return (
            f"{self.clients} clients: p{self.percentile:g} {_fmt(self.percentile_ms)}, "
            f"{self.throughput_qps:.1f} req/s in all"
        )


@dataclass
class _ClientLog:
    latency_ns: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _client_loop(body: Body, clock: Clock, judged_from: int, end_at: int, log: _ClientLog) -> None:
    """One client: call after call until *end_at*; calls starting before *judged_from* warm up."""
    while (start := clock()) < end_at:
        error = _call(body)
        finished = clock()
        if start < judged_from:
            continue
        if error is None:
            log.latency_ns.append(finished - start)
        else:
            log.errors.append(error)


def run_closed_loop_clients(
    body: Body,
    clients: int,
    duration_s: float,
    *,
    warmup_s: float = 0.0,
    percentile: float = 99.0,
    clock: Clock = time.perf_counter_ns,
) -> ClientsResult:
    """Run *clients* closed loops on *body* at once (MLPerf MultiStream-like) and sum them up.

    Each client calls the body back to back, so the figure is the service's behaviour
    with that many requests in flight.  *clock* is read by every client thread: a fake
    clock for tests may keep one virtual time per thread.
    """
    _require(
        isinstance(clients, int) and not isinstance(clients, bool) and clients >= 1,
        f"run_closed_loop_clients clients must be a whole number >= 1, got {clients!r}",
    )
    _require(_is_positive(duration_s), f"duration_s must be > 0 seconds, got {duration_s!r}")
    _require(_is_non_negative(warmup_s), f"warmup_s must be >= 0 seconds, got {warmup_s!r}")
    logs = [_ClientLog() for _ in range(clients)]
    hung = _run_clients(body, clock, logs, warmup_s, duration_s)
    return _summarise_clients(logs, duration_s, percentile, hung)


def _run_clients(
    body: Body, clock: Clock, logs: list[_ClientLog], warmup_s: float, duration_s: float
) -> int:
    """Start every client with the same time window; the number left hung."""

    def client(log: _ClientLog) -> None:
        begin = clock()
        judged_from = begin + round(warmup_s * NS_PER_S)
        _client_loop(body, clock, judged_from, judged_from + round(duration_s * NS_PER_S), log)

    threads = [
        threading.Thread(target=client, args=(log,), name=f"deploycheck-client-{i}", daemon=True)
        for i, log in enumerate(logs)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + warmup_s + duration_s + JOIN_GRACE_S
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return sum(thread.is_alive() for thread in threads)


def _summarise_clients(
    logs: list[_ClientLog], duration_s: float, percentile: float, hung: int
) -> ClientsResult:
    per_client = []
    for index, log in enumerate(logs):
        p50, p99 = percentiles_ms(log.latency_ns, (50, 99))
        per_client.append(ClientStats(index, len(log.latency_ns), len(log.errors), p50, p99))
    latency_ns = [value for log in logs for value in log.latency_ns]
    errors = [message for log in logs for message in log.errors]
    p50, p90, p99, peak, judged = percentiles_ms(latency_ns, (50, 90, 99, 100, percentile))
    return ClientsResult(
        clients=len(logs),
        duration_s=duration_s,
        requests=len(latency_ns),
        errors=len(errors),
        error_samples=errors[:MAX_ERROR_SAMPLES],
        throughput_qps=(len(latency_ns) + len(errors)) / duration_s,
        percentile=percentile,
        percentile_ms=judged,
        p50_ms=p50,
        p90_ms=p90,
        p99_ms=p99,
        max_ms=peak,
        per_client=per_client,
        hung_clients=hung,
        latency_samples_ns=latency_ns,
    )
