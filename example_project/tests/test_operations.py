"""Edge operation: the service keeps running for a shift, without a network.

The checklist before calling a device ready: it starts from cold boot (the cold start
test in test_performance.py drops the model file from the page cache first), runs for
30 minutes without memory growth, handles network loss, leaves logs for remote
troubleshooting (``run.log`` and the soak's time series in the evidence directory), and
has a rollback path (``--deploy-save`` on a release, ``--deploy-baseline`` afterwards).

Pull requests run each soak for ``soak_max_minutes`` (pyproject.toml); the nightly job
runs them in full:

    pytest example_project --deploy-target edge-c --deploy-soak-minutes=full
"""

from itertools import cycle
from pathlib import Path

import numpy as np
import pytest

from pytest_deploycheck import soak

HELD_OUT = Path(__file__).resolve().parents[1] / "data" / "digits_test.npz"


@pytest.fixture(scope="module")
def camera():
    """Raw crops as the camera delivers them, forever: 8x8 pixel values from 0 to 16."""
    with np.load(HELD_OUT) as data:
        images = data["images"]
    return cycle(list((images * 16).round().astype(np.uint8)))


@soak(30)  # minutes of back-to-back requests; memory growth judged in MB per hour
def test_runs_a_shift_without_growing(deploy_model, camera):
    """One request per call, as the service loop does it: scale, run, take the digit."""
    image = (next(camera).astype(np.float32) / 16.0).reshape(1, 1, 8, 8)
    _, probabilities = deploy_model.run({"image": image})
    assert 0 <= int(probabilities.argmax()) <= 9


@pytest.mark.offline  # the line has no network: the inference path must not need one
def test_serves_without_network(deploy_model, camera):
    image = (next(camera).astype(np.float32) / 16.0).reshape(1, 1, 8, 8)
    _, probabilities = deploy_model.run({"image": image})
    assert probabilities.shape == (1, 10)
