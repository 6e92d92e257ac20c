"""The int8 model must keep the fp32 model's accuracy on held-out digits."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_deploycheck import assert_accuracy_drop
from pytest_deploycheck.strategies import feeds, perturbed

HELD_OUT = Path(__file__).resolve().parents[1] / "data" / "digits_test.npz"


@pytest.fixture(scope="session")
def eval_set():
    """450 held-out images (scaled to [0, 1]) and their labels, never seen in training."""
    with np.load(HELD_OUT) as data:
        return data["images"], data["labels"]


def test_quantization_keeps_accuracy(deploy_models, eval_set):
    assert_accuracy_drop(
        deploy_models["baseline"], deploy_models["optimized"], eval_set, max_drop=0.01
    )


@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_outputs_are_probabilities_for_any_valid_image(deploy_model, data):
    feed = data.draw(feeds(deploy_model, values={"image": (0.0, 1.0)}))
    _, probabilities = deploy_model.run(feed)
    assert np.isfinite(probabilities).all()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)


@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_models_agree_under_sensor_noise(deploy_models, data):
    """With 1% sensor noise, the int8 model gives the digit the fp32 model is sure of.

    Quantization may flip a near-tie, so only images where the fp32 model's top
    probability leads the runner-up by 0.5 or more must agree.
    """
    baseline, optimized = deploy_models["baseline"], deploy_models["optimized"]
    clean, noisy = data.draw(perturbed(feeds(baseline, values={"image": (0.0, 1.0)}), scale=0.01))
    expected = baseline.run(clean)[1]
    actual = optimized.run(noisy)[1]
    ranked = np.sort(expected, axis=1)
    confident = ranked[:, -1] - ranked[:, -2] >= 0.5
    agree = expected.argmax(axis=1) == actual.argmax(axis=1)
    assert agree[confident].all()
