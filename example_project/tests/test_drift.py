"""Production inputs must still look like the held-out set the models were accepted on.

``data/production_sample.npz`` (written by ``make_production_sample.py``) stands in for
the camera station's export: 300 held-out crops with 1% sensor noise and +-1% exposure
jitter.  It does not drift; a washed-out camera does, and is caught.
"""

from pathlib import Path

import numpy as np
import pytest

from pytest_deploycheck import assert_agreement, assert_no_drift
from pytest_deploycheck.checks.drift import detect_drift

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="session")
def reference():
    """The 450 held-out images the accuracy check runs on: the accepted distribution."""
    with np.load(DATA / "digits_test.npz") as data:
        return data["images"]


@pytest.fixture(scope="session")
def production():
    with np.load(DATA / "production_sample.npz") as data:
        return data["images"]


def test_production_inputs_and_outputs_do_not_drift(deploy_models, reference, production):
    """Per-channel brightness and contrast, and the int8 model's class shares and top
    scores on both samples: nothing differs beyond what 450 vs 300 items can resolve."""
    assert_no_drift(reference, production, on="both", model=deploy_models["optimized"])


def test_models_agree_on_production_inputs(deploy_models, production):
    """No labels in production: the int8 model must give the fp32 model's digit."""
    assert_agreement(
        deploy_models["baseline"], deploy_models["optimized"], production, min_agreement=0.97
    )


def test_a_washed_out_camera_is_caught(reference, production):
    """The same crops through a camera with lifted blacks and 30% less contrast.

    This is a demonstration, not a check of this deployment: recorded as a gating
    check, its (intended) failure would count against the example's verdict, even
    inside an xfail test.  So it calls detect_drift, the statistics of
    assert_no_drift without recording a check, and asserts that they report drift.
    """
    washed_out = np.clip(production * 0.7 + 0.15, 0.0, 1.0)
    result = detect_drift(reference, washed_out)
    assert not result.passed
    assert {f.name for f in result.drifted} == {"x ch0 mean", "x ch0 std"}
