"""The classification service as the camera line calls it: over HTTP, on loopback.

`service/` is the example's own service (stdlib HTTP server, the int8 model behind a
dynamic batcher); `[tool.deploycheck.services.classifier]` in pyproject.toml says how to
start it, and the `deploy_service` fixture starts it once, waits for `/health`, and
stops its whole process group after the run.  Requests are held-out crops, cycled.
"""

from concurrent.futures import ThreadPoolExecutor
from itertools import cycle
from pathlib import Path

import numpy as np
import pytest

from pytest_deploycheck import capacity_over, cold_start_under, latency_under, memory_under

HELD_OUT = Path(__file__).resolve().parents[1] / "data" / "digits_test.npz"


@pytest.fixture(scope="module")
def crops():
    """Request bodies: raw 8x8 crops (0-16) as JSON lists, cycled."""
    with np.load(HELD_OUT) as data:
        images = (data["images"] * 16).round().astype(int)
    return cycle([{"pixels": image.reshape(-1).tolist()} for image in images])


def classify(service, body) -> int:
    """One request as the camera line sends it; anything but a digit is a failure."""
    response = service.client.post("/classify", json=body)
    assert response.status_code == 200, response.text
    label = response.json()["label"]
    assert 0 <= label <= 9
    return label


# 50 frames per second arrive at random (Poisson) from the line's cameras; each must be
# answered within 100 ms, waiting time included.
@latency_under(100, percentile=99, qps=50, duration_s=10)
def test_answers_50_requests_per_second_within_100_ms(deploy_service, crops):
    classify(deploy_service, next(crops))


# Headroom: the highest rate at which p99 stays under 100 ms must be at least 100 req/s.
@capacity_over(100, latency_ms=100, percentile=99)
def test_has_headroom_over_the_line_rate(deploy_service, crops):
    classify(deploy_service, next(crops))


@memory_under(512)  # MB: the service's whole process tree, while it serves requests
def test_service_fits_in_memory_under_load(deploy_service, crops):
    """A burst of 16 requests in flight at once: the batcher's buffers at their fullest."""
    bodies = [next(crops) for _ in range(16)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        labels = list(pool.map(lambda body: classify(deploy_service, body), bodies))
    assert len(labels) == 16


# The line has no network.  The service runs under the socket block (`offline = true`
# in pyproject.toml); this test blocks its own process too, loopback excepted, and
# fails if the service, or the test, tried to reach anything else.
@pytest.mark.offline(allow_loopback=True)
def test_serves_with_the_network_blocked(deploy_service, crops):
    for _ in range(20):
        classify(deploy_service, next(crops))


@cold_start_under(3000, service="classifier", runs=3)  # process start to first /health
def test_service_answers_soon_after_power_on(deploy_target):
    """The device reboots unattended: the service must be up within 3 s."""
