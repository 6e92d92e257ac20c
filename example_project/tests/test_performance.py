"""Latency, throughput, memory and cold start of the classifier on the target.

Each request is what the service does per camera crop: scale the raw 8x8 pixel values
(0-16) to [0, 1], run the model, take the most likely digit.  Requests cycle through the
held-out images so no cache can flatter the figures.
"""

from itertools import cycle
from pathlib import Path

import numpy as np
import pytest

from pytest_deploycheck import cold_start_under, latency_under, memory_under

HELD_OUT = Path(__file__).resolve().parents[1] / "data" / "digits_test.npz"


@pytest.fixture(scope="module")
def crops():
    """Raw crops as the camera delivers them: 8x8 pixel values from 0 to 16."""
    with np.load(HELD_OUT) as data:
        images = data["images"]  # stored scaled to [0, 1]
    return cycle(list((images * 16).round().astype(np.uint8)))


def classify(model, crop: np.ndarray, batch: int = 1) -> np.ndarray:
    """One request: preprocess, run, postprocess."""
    image = (crop.astype(np.float32) / 16.0).reshape(1, 1, 8, 8)
    _, probabilities = model.run({"image": np.repeat(image, batch, axis=0)})
    return probabilities.argmax(axis=1)


@latency_under(80)  # ms, p95 by default, measured on the target's cores
@memory_under(512)  # MB, peak resident memory of the workload, measured alone
def test_optimized_is_fast_and_small(deploy_model, crops):
    classify(deploy_model, next(crops))


@pytest.mark.throughput_over(1000, batch=[1, 32])
def test_batching_trade_off(deploy_model, deploy_batch, crops):
    """Items per second at batch 1 and 32: the report shows what batching buys."""
    classify(deploy_model, next(crops), batch=deploy_batch)


@cold_start_under(2000, runs=3)  # ms from a fresh process to the first result
def test_optimized_starts_quickly(deploy_target):
    """The device reboots unattended: the service must answer soon after power-on."""
