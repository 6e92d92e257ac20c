"""assert_no_drift and assert_agreement on seeded synthetic data, and as users run them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_deploycheck import assert_agreement, assert_no_drift
from pytest_deploycheck.checks import record
from pytest_deploycheck.checks.agreement import AgreementResult, compare_agreement
from pytest_deploycheck.checks.drift import detect_drift
from pytest_deploycheck.checks.metrics import AGREEMENT, DRIFT
from pytest_deploycheck.report.html import render_html

if TYPE_CHECKING:
    from conftest import DeployProject

EXAMPLE = Path(__file__).resolve().parents[1] / "example_project"


@dataclass(frozen=True)
class Spec:
    name: str
    dtype: str = "float32"


class Linear:
    """A fake model: class scores ``x @ W`` (plus *bias*), one input ``x``."""

    def __init__(
        self, weights: np.ndarray, bias: float | np.ndarray = 0.0, name: str = "linear"
    ) -> None:
        self.weights, self.bias, self.name = weights, bias, name
        self.inputs = [Spec("x")]
        self.outputs = [Spec("scores")]

    def run(self, feeds: dict[str, Any]) -> list[np.ndarray]:
        return [np.asarray(feeds["x"], dtype=np.float64) @ self.weights + self.bias]


@pytest.fixture
def recorder() -> Any:
    with record.recording(record.CheckRecorder()) as recorder:
        yield recorder


def normal(seed: int, n: int, shift: float = 0.0, columns: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).normal(shift, 1.0, size=(n, columns))


# --------------------------------------------------------------------------- drift


def test_the_same_distribution_does_not_drift_and_records_a_passing_check(recorder: Any) -> None:
    result = assert_no_drift(normal(1, 500), normal(2, 400))
    assert result.passed and len(result.features) == 3
    (check,) = recorder.checks
    assert (check.name, check.metric, check.passed, check.value) == ("no_drift", DRIFT, True, 0)
    assert check.extra["n_reference"] == 500 and check.extra["n_current"] == 400
    assert check.extra["correction"] == "holm"
    assert [f["name"] for f in check.extra["top"]] == [f.name for f in result.features]


def test_a_shifted_column_is_caught_and_named(recorder: Any) -> None:
    current = normal(2, 400)
    current[:, 1] += 0.5
    with pytest.raises(AssertionError, match=r"drift in 1 of 3 features: x\[1\] \(KS D="):
        assert_no_drift(normal(1, 500), current)
    (check,) = recorder.checks
    assert check.passed is False and check.extra["drifted"] == ["x[1]"]
    assert check.extra["top"][0]["name"] == "x[1]"  # the most drifted first


def test_the_report_says_what_the_sample_could_detect() -> None:
    result = detect_drift(normal(1, 450), normal(2, 300))
    # 1.358 * sqrt(750 / 135000): the asymptotic 5% critical D for 450 vs 300 items.
    assert result.critical_d == pytest.approx(0.1012, abs=1e-4)
    assert result.critical_d_first > result.critical_d  # alpha / 3 for the first step
    assert "detectable: a KS gap D >= 0.1012 at alpha 0.05" in result.message()
    assert "sd mean shift of a normal feature" in result.message()


def test_holm_keeps_many_null_features_from_raising_false_alarms() -> None:
    """200 features of pure noise: uncorrected, about 10 would be called drifted."""
    result = detect_drift(normal(5, 300, columns=200), normal(6, 300, columns=200))
    uncorrected = sum(f.p_value < 0.05 for f in result.features)
    assert uncorrected >= 3
    assert result.passed


def test_images_give_per_channel_mean_and_std_features() -> None:
    rng = np.random.default_rng(0)
    reference = rng.uniform(0, 1, size=(200, 3, 4, 4)).astype(np.float32)
    current = rng.uniform(0, 1, size=(150, 3, 4, 4)).astype(np.float32)
    current[:, 2] *= 0.5  # the blue channel darkens
    result = detect_drift({"image": reference}, {"image": current})
    names = {f.name for f in result.features}
    assert names == {f"image ch{c} {s}" for c in range(3) for s in ("mean", "std")}
    assert {f.name for f in result.drifted} == {"image ch2 mean", "image ch2 std"}


def test_categorical_features_get_chi_square_with_psi_beside() -> None:
    rng = np.random.default_rng(0)
    reference = {"colour": rng.choice(["red", "green", "blue"], 600, p=[0.5, 0.3, 0.2])}
    current = {"colour": rng.choice(["red", "green", "blue"], 400, p=[0.3, 0.3, 0.4])}
    (feature,) = detect_drift(reference, current).features
    assert (feature.kind, feature.test, feature.drifted) == ("categorical", "chi2", True)
    assert feature.detail == "df=2" and feature.psi > 0.1
    integers = detect_drift(rng.integers(0, 4, 300), rng.integers(0, 4, 300)).features[0]
    assert integers.test == "chi2"  # few distinct integers: categories
    many = detect_drift(rng.integers(0, 1000, 300), rng.integers(0, 1000, 300)).features[0]
    assert many.test == "ks"


def test_constant_features_no_drift_when_equal_drift_with_a_reason_when_not() -> None:
    equal = detect_drift(np.full(100, 3.0), np.full(80, 3.0)).features[0]
    assert (equal.drifted, equal.p_value, equal.reason) == (
        False,
        1.0,
        "constant 3 in both samples",
    )
    apart = detect_drift(np.full(100, 3.0), np.full(80, 4.0)).features[0]
    assert apart.drifted
    assert apart.reason == "constant 3 in the reference but 4 in the current sample"
    one = detect_drift(np.ones(50, dtype=bool), np.ones(40, dtype=bool)).features[0]
    assert (one.test, one.drifted) == ("chi2", False)
    assert "one category" in one.reason


def test_non_finite_values_are_left_out_and_said() -> None:
    reference, current = normal(1, 200, columns=1)[:, 0], normal(2, 200, columns=1)[:, 0]
    current[:5] = np.nan
    feature = detect_drift(reference, current).features[0]
    assert feature.n_current == 195
    assert feature.reason == "0 reference and 5 current values not finite, left out"


def test_data_forms_pairs_batches_and_callables_give_the_same_result() -> None:
    reference, current = normal(1, 120), normal(2, 100)
    labels = np.zeros(100, dtype=np.int64)
    expected = detect_drift(reference, current).features
    forms = [
        (current, labels),
        [(row, 0) for row in current],
        [current[:50], current[50:]],
        lambda: iter([current[:64], current[64:]]),
    ]
    for form in forms:
        assert detect_drift(reference, form).features == expected


def test_outputs_class_shares_and_top_scores_are_the_label_free_signal() -> None:
    model = Linear(np.array([[1.0, -1.0], [0.5, 0.5], [0.0, 1.0]]))
    reference, current = normal(1, 400), normal(2, 400)
    result = detect_drift(reference, current, on="outputs", model=model)
    assert [f.name for f in sorted(result.features, key=lambda f: f.name)] == [
        "scores class",
        "scores top score",
    ]
    assert result.passed
    shifted = detect_drift(reference, current + np.array([1.0, 0.0, -1.0]), on="both", model=model)
    assert {"scores class", "scores top score"} <= {f.name for f in shifted.drifted}
    assert len(shifted.features) == 5  # three inputs, two outputs, one Holm family


def test_an_embedding_output_is_compared_column_by_column() -> None:
    model = Linear(np.eye(3))
    result = detect_drift(
        normal(1, 300), normal(2, 300), on="outputs", model=model, output_view="features"
    )
    assert {f.name for f in result.features} == {"scores[0]", "scores[1]", "scores[2]"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"on": "labels"}, "on must be 'inputs', 'outputs' or 'both'"),
        ({"on": "outputs"}, "pass model="),
        ({"alpha": 1.5}, "alpha must be a number in"),
        ({"method": "t-test"}, "method must be"),
        ({"model": Linear(np.eye(3))}, "model= is only used with"),
    ],
)
def test_bad_options_are_one_line_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        detect_drift(normal(1, 10), normal(2, 10), **kwargs)


def test_mismatched_samples_are_one_line_errors() -> None:
    with pytest.raises(ValueError, match="reference items have shape"):
        detect_drift(normal(1, 10, columns=3), normal(2, 10, columns=4))
    with pytest.raises(ValueError, match="both samples need the same inputs"):
        detect_drift({"a": np.ones(3)}, {"b": np.ones(3)})
    with pytest.raises(ValueError, match="current is empty"):
        detect_drift(np.ones(3), [])


def test_gating_false_records_info_and_does_not_raise(recorder: Any) -> None:
    result = assert_no_drift(normal(1, 200), normal(2, 200) + 1.0, gating=False)
    assert not result.passed
    (check,) = recorder.checks
    assert (check.status, check.blocks_release) == ("INFO", False)


@settings(max_examples=40, deadline=None)
@given(
    m=st.integers(2, 200),
    n=st.integers(2, 200),
    columns=st.integers(1, 6),
    seed=st.integers(0, 2**32 - 1),
)
def test_any_sample_sizes_give_valid_probabilities_and_holm_order(
    m: int, n: int, columns: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    result = detect_drift(rng.normal(size=(m, columns)), rng.normal(size=(n, columns)))
    adjusted = [f.p_adjusted for f in result.features]
    assert adjusted == sorted(adjusted)
    for feature in result.features:
        assert 0.0 <= feature.p_value <= feature.p_adjusted <= 1.0
        assert feature.drifted == (feature.p_adjusted < 0.05)


# --------------------------------------------------------------------------- agreement


def test_identical_models_agree_and_pass_on_the_lower_bound(recorder: Any) -> None:
    model = Linear(np.eye(3))
    result = assert_agreement(model, model, normal(1, 500), min_agreement=0.99)
    assert (result.agreed, result.n, result.passed) == (500, 500, True)
    assert result.ci_low == pytest.approx(0.025 ** (1 / 500))  # Clopper-Pearson at k = n
    (check,) = recorder.checks
    assert (check.metric, check.value, check.budget) == (AGREEMENT, 1.0, 0.99)


def test_disagreement_below_the_floor_fails(recorder: Any) -> None:
    baseline = Linear(np.eye(3))
    optimized = Linear(np.eye(3), bias=np.array([0.0, 0.0, 0.6]))
    with pytest.raises(AssertionError, match=r"upper bound < min_agreement 0\.99"):
        assert_agreement(baseline, optimized, normal(1, 500), min_agreement=0.99)
    assert recorder.checks[0].passed is False


def test_a_straddling_interval_is_inconclusive_and_says_how_many_items(recorder: Any) -> None:
    model = Linear(np.eye(3))
    with pytest.raises(
        AssertionError, match=r"inconclusive: .* about \d+ items would make it pass"
    ):
        assert_agreement(model, model, normal(1, 40), min_agreement=0.95)
    assert recorder.checks[0].passed is None
    assert recorder.checks[0].status == "INCONCLUSIVE"


def test_the_rule_follows_the_interval() -> None:
    def result(agreed: int, n: int, floor: float) -> AgreementResult:
        from pytest_deploycheck.measure.stats import clopper_pearson

        low, high = clopper_pearson(agreed, n, 0.95)
        return AgreementResult("b", "o", "y", n, agreed, low, high, 0.95, floor, "top-1", ())

    assert result(1000, 1000, 0.99).passed is True  # lower bound 0.9963
    assert result(950, 1000, 0.99).passed is False  # upper bound 0.962
    assert result(995, 1000, 0.99).passed is None  # 0.988 to 0.998


def test_other_outputs_need_a_same_function() -> None:
    class Embed(Linear):
        def run(self, feeds: dict[str, Any]) -> list[np.ndarray]:
            return [np.asarray(feeds["x"])[:, :, None]]

    model = Embed(np.eye(3))
    with pytest.raises(ValueError, match="pass same=fn"):
        compare_agreement(model, model, normal(1, 20))
    close = compare_agreement(
        model, model, normal(1, 20), same=lambda b, o: bool(np.allclose(b, o)), min_agreement=0.5
    )
    assert close.agreed == 20 and close.comparison == "same=<lambda>"


# --------------------------------------------------------------------------- report.html


def _report(checks: list[dict[str, Any]]) -> dict[str, Any]:
    return {"target": "edge", "verdict": {"release_candidate": True}, "checks": checks}


def test_report_html_has_a_drift_section_with_escaped_feature_names(recorder: Any) -> None:
    current = {"<b>tag</b>": normal(2, 300, columns=1)[:, 0] + 1.0}
    assert_no_drift({"<b>tag</b>": normal(1, 300, columns=1)[:, 0]}, current, gating=False)
    page = render_html(_report([recorder.checks[0].as_dict()]))
    assert "<h2>Drift</h2>" in page
    assert "&lt;b&gt;tag&lt;/b&gt;" in page and "<b>tag</b>" not in page
    assert "detectable: a KS gap" in page


def test_report_html_has_no_drift_section_without_drift_checks() -> None:
    assert "<h2>Drift</h2>" not in render_html(_report([]))


# --------------------------------------------------------------------------- as users run it


def test_drift_and_agreement_as_users_run_them(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    tests = """
import numpy as np
from pytest_deploycheck import assert_agreement, assert_no_drift

with np.load("digits.npz") as data:
    IMAGES = data["images"]
RNG = np.random.default_rng(0)
PRODUCTION = np.clip(IMAGES[RNG.choice(450, 300, replace=False)]
                     + RNG.normal(0, 0.01, (300, 1, 8, 8)), 0, 1).astype(np.float32)

def test_no_drift(deploy_models):
    assert_no_drift(IMAGES, PRODUCTION, on="both", model=deploy_models["optimized"])

def test_drift(deploy_models):
    assert_no_drift(IMAGES, PRODUCTION * 0.5, name="washed_out")

def test_agreement(deploy_models):
    assert_agreement(deploy_models["baseline"], deploy_models["optimized"], PRODUCTION,
                     min_agreement=0.97)
"""
    deploy_project.make(
        tests,
        models={
            "baseline": {"path": "models/fp32.onnx"},
            "optimized": {"path": "models/int8.onnx"},
        },
        files={
            "models/fp32.onnx": EXAMPLE / "models" / "classifier_fp32.onnx",
            "models/int8.onnx": EXAMPLE / "models" / "classifier_int8.onnx",
            "digits.npz": EXAMPLE / "data" / "digits_test.npz",
        },
    )
    result = pytester.runpytest("--deploy-target", "edge-c")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
    result.stdout.fnmatch_lines(["*AssertionError: drift in 2 of 2 features: x ch0 *"])
    report = json.loads((deploy_project.evidence("edge-c") / "report.json").read_text())
    by_name = {c["name"]: c for c in report["checks"]}
    assert by_name["no_drift"]["status"] == "PASS"
    assert by_name["no_drift"]["extra"]["features_tested"] == 4
    assert by_name["washed_out"]["status"] == "FAIL"
    assert by_name["agreement_ok"]["status"] == "PASS"
    page = (deploy_project.evidence("edge-c") / "report.html").read_text()
    assert "<h2>Drift</h2>" in page


def test_a_bad_call_fails_on_the_users_line_with_one_error(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    tests = """
import numpy as np
from pytest_deploycheck import assert_no_drift

def test_bad():
    assert_no_drift(np.ones((10, 2)), np.ones((10, 3)), on="inputs")
"""
    deploy_project.make(tests)
    result = pytester.runpytest("--deploy-target", "edge-c")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["E *ValueError: x: reference items have shape (2,)*"])
    result.stdout.no_fnmatch_line("*checks/drift.py*")
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
