"""The accuracy-drop assertion: known answers from fake models whose predictions are fixed.

Each fake model reads an item id from its input and looks the scores up in a table, so
every prediction, confidence and figure below is known exactly.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_deploycheck.checks import record as checks
from pytest_deploycheck.checks.accuracy import (
    AccuracyComparison,
    FailureCase,
    assert_accuracy_drop,
    compare,
    evaluate,
    top_confidence,
)
from pytest_deploycheck.checks.metrics import FAILURE_CASE_FIELDS, FAILURE_CASES_KEY
from pytest_deploycheck.checks.record import CheckRecorder, recording
from pytest_deploycheck.report.failure_cases import failure_cases_markdown, failure_cases_section

EXAMPLE = Path(__file__).resolve().parent.parent / "example_project"


@dataclass(frozen=True)
class Spec:
    name: str
    dtype: str | None = None


class TableModel:
    """Returns ``table[id]`` for each item, the id being the first value of its input."""

    def __init__(
        self,
        name: str,
        table: Any,
        inputs: Sequence[str] = ("x",),
        outputs: Sequence[str] = ("scores",),
        dtype: str | None = None,
    ) -> None:
        self.name = name
        self.table = np.asarray(table, dtype=np.float64)
        self.inputs = [Spec(input_name, dtype) for input_name in inputs]
        self.outputs = [Spec(output_name) for output_name in outputs]
        self.batches: list[int] = []
        self.dtypes: list[np.dtype[Any]] = []

    def run(self, feeds: Mapping[str, Any]) -> list[Any]:
        assert set(feeds) == {spec.name for spec in self.inputs}
        first = np.asarray(feeds[self.inputs[0].name])
        ids = first.reshape(len(first), -1)[:, 0].astype(np.int64)
        self.batches.append(len(ids))
        self.dtypes.append(first.dtype)
        scores = self.table[ids]
        return [scores, scores * 10.0][: len(self.outputs)]


def probabilities(predictions: Sequence[int], classes: int = 3, top: Any = 0.8) -> Any:
    """Rows with ``top`` on the predicted class and the rest shared equally."""
    tops = np.broadcast_to(np.asarray(top, dtype=np.float64), (len(predictions),))
    rows = np.repeat(((1.0 - tops) / (classes - 1))[:, None], classes, axis=1)
    rows[np.arange(len(predictions)), predictions] = tops
    return rows


def model(name: str, predictions: Sequence[int], **kwargs: Any) -> TableModel:
    return TableModel(name, probabilities(predictions, top=kwargs.pop("top", 0.8)), **kwargs)


def ids(n: int) -> Any:
    return np.arange(n, dtype=np.float32).reshape(n, 1)


# Ten items of class 0: the baseline misses item 9, the optimized model items 7, 8, 9.
LABELS = np.zeros(10, dtype=np.int64)
BASE_PRED = [0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
OPT_PRED = [0, 0, 0, 0, 0, 0, 0, 1, 2, 2]


def pair() -> tuple[TableModel, TableModel]:
    return model("fp32", BASE_PRED), model("int8", OPT_PRED)


def evaluations(base_pred: Sequence[int], opt_pred: Sequence[int], labels: Any) -> Any:
    data = (ids(len(labels)), np.asarray(labels))
    return evaluate(model("b", base_pred), data), evaluate(model("o", opt_pred), data)


def rates(regressions: int, fixes: int, both_right: int, both_wrong: int) -> Any:
    """Predictions for a set with the given discordant and concordant counts."""
    base = [0] * regressions + [1] * fixes + [0] * both_right + [1] * both_wrong
    opt = [1] * regressions + [0] * fixes + [0] * both_right + [1] * both_wrong
    return base, opt, np.zeros(len(base), dtype=np.int64)


# --------------------------------------------------------------------------- known answers


def test_known_figures() -> None:
    baseline, optimized = evaluations(BASE_PRED, OPT_PRED, LABELS)
    result = compare(baseline, optimized, max_drop=0.25)
    assert (result.baseline, result.optimized, result.drop) == (0.9, 0.7, 0.2)
    assert result.agreement == 0.7  # items 7, 8 and 9 differ (9: 1 against 2)
    assert result.discordant == (2, 0)
    assert result.mcnemar_p == 0.5  # 2 * 0.5**2
    assert result.n == 10
    assert result.passed
    assert (result.baseline_name, result.optimized_name, result.metric) == ("b", "o", "top1")


def test_agreement_counts_only_equal_top1_predictions() -> None:
    # Item 9: baseline says 1, optimized 2 — both wrong, yet they disagree.
    baseline, optimized = evaluations(BASE_PRED, OPT_PRED, LABELS)
    equal = np.mean(np.asarray(BASE_PRED) == np.asarray(OPT_PRED))
    assert compare(baseline, optimized, max_drop=1).agreement == equal == 0.7


def test_relative_drop() -> None:
    baseline, optimized = evaluations(BASE_PRED, OPT_PRED, LABELS)
    result = compare(baseline, optimized, max_drop=0.25, relative=True)
    assert result.drop == pytest.approx(0.2 / 0.9)
    assert result.relative
    assert result.passed
    assert "relative accuracy drop" in result.message()


def test_relative_drop_needs_a_baseline_above_zero() -> None:
    baseline, optimized = evaluations([1, 1], [1, 0], [0, 0])
    with pytest.raises(ValueError, match="baseline metric > 0"):
        compare(baseline, optimized, max_drop=0.1, relative=True)


def test_a_drop_exactly_on_the_budget_passes() -> None:
    # 452/500 against 447/500: 0.904 - 0.894 is 0.01000000000000001 in floating point.
    base, opt, labels = rates(regressions=5, fixes=0, both_right=447, both_wrong=48)
    result = compare(*evaluations(base, opt, labels), max_drop=0.01)
    assert (result.baseline, result.optimized) == (0.904, 0.894)
    assert result.drop == 0.01
    assert result.passed


def test_confidence_is_the_softmax_of_logits_or_the_probability_itself() -> None:
    logits = np.array([[2.0, 0.0, 0.0], [1000.0, 0.0, -1000.0]])
    expected = [math.exp(2) / (math.exp(2) + 2), 1.0]
    assert top_confidence(logits).tolist() == pytest.approx(expected)
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    assert top_confidence(probs).tolist() == [0.7, 0.8]


# --------------------------------------------------------------------------- bootstrap


def test_ci_is_zero_when_the_models_agree_on_every_item() -> None:
    result = compare(*evaluations(BASE_PRED, BASE_PRED, LABELS), max_drop=0.01)
    assert (result.ci_low, result.ci_high) == (0.0, 0.0)
    assert result.resolved


def test_ci_contains_the_true_drop() -> None:
    # 3% regressions and 1% fixes: a true drop of exactly 0.02 on this set.
    base, opt, labels = rates(regressions=60, fixes=20, both_right=1700, both_wrong=220)
    result = compare(*evaluations(base, opt, labels), max_drop=0.05)
    assert result.drop == 0.02
    assert result.ci_low < 0.02 < result.ci_high
    # The paired interval is about 2 * 1.96 * sqrt(0.04 / 2000) = 0.018 wide.
    assert 0.012 < result.ci_high - result.ci_low < 0.024


def test_ci_narrows_with_n() -> None:
    widths = []
    for copies in (2, 20):
        base, opt, labels = rates(3 * copies, copies, 85 * copies, 11 * copies)
        result = compare(*evaluations(base, opt, labels), max_drop=0.05)
        widths.append(result.ci_high - result.ci_low)
    assert widths[1] < widths[0] / 2.5  # sqrt(10) = 3.16 in theory


def test_ci_is_reproducible_with_the_seed() -> None:
    base, opt, labels = rates(6, 2, 80, 12)
    evaluated = evaluations(base, opt, labels)
    first = compare(*evaluated, max_drop=0.05, seed=7)
    again = compare(*evaluated, max_drop=0.05, seed=7)
    other = compare(*evaluated, max_drop=0.05, seed=8)
    assert (first.ci_low, first.ci_high) == (again.ci_low, again.ci_high)
    assert first == again
    assert (first.ci_low, first.ci_high) != (other.ci_low, other.ci_high)


def test_a_small_set_cannot_resolve_the_budget() -> None:
    # n=20, one regression and one fix: no drop, but a CI far wider than 0.01.
    base, opt, labels = rates(regressions=1, fixes=1, both_right=16, both_wrong=2)
    evaluated = evaluations(base, opt, labels)
    lenient = compare(*evaluated, max_drop=0.01)
    width = lenient.ci_high - lenient.ci_low
    assert lenient.drop == 0.0
    assert width > 0.01
    assert not lenient.resolved
    assert lenient.passed
    needed = math.ceil(20 * (width / 0.01) ** 2)
    assert "n=20 is too small to resolve a budget of 0.01" in lenient.resolution_note
    assert f"about {needed} items would be needed" in lenient.resolution_note
    assert lenient.resolution_note in lenient.message()
    strict = compare(*evaluated, max_drop=0.01, require_resolution=True)
    assert not strict.passed
    # A drop of exactly 0 reads 0.000 (issue 15 point 5), no longer "0".
    assert strict.message().startswith("accuracy drop 0.000 <= 0.01 but not resolved")


@pytest.mark.parametrize(
    ("max_drop", "note"),
    [
        (0.0, "a budget of 0 can only be resolved when the models agree on every item"),
        (1e-300, "no practical evaluation set would resolve a budget this small"),
    ],
)
def test_budgets_too_small_to_resolve(max_drop: float, note: str) -> None:
    base, opt, labels = rates(regressions=1, fixes=1, both_right=16, both_wrong=2)
    result = compare(*evaluations(base, opt, labels), max_drop=max_drop)
    assert not result.resolved
    assert note in result.resolution_note


def test_unresolved_strict_mode_fails_the_assertion() -> None:
    base, opt, labels = rates(regressions=1, fixes=1, both_right=16, both_wrong=2)
    data = (ids(20), labels)
    lenient = assert_accuracy_drop(model("b", base), model("o", opt), data, max_drop=0.01)
    assert not lenient.resolved
    with pytest.raises(AssertionError, match=r"not resolved.*too small"):
        assert_accuracy_drop(
            model("b", base), model("o", opt), data, max_drop=0.01, require_resolution=True
        )


# --------------------------------------------------------------------------- metrics


def test_top_k_counts_the_label_among_the_k_highest_scores() -> None:
    # The label is the second highest score of every optimized row.
    labels = np.array([0, 1, 2, 0])
    second = np.array([[0.3, 0.6, 0.1], [0.6, 0.3, 0.1], [0.1, 0.6, 0.3], [0.3, 0.1, 0.6]])
    base = TableModel("b", probabilities(labels.tolist()))
    opt = TableModel("o", second)
    data = (ids(4), labels)
    top1 = assert_accuracy_drop(base, opt, data, max_drop=1.0)
    assert (top1.baseline, top1.optimized) == (1.0, 0.0)
    for kwargs in ({"metric": "top2"}, {"top_k": 2}, {"metric": "top2", "top_k": 2}):
        top2 = assert_accuracy_drop(base, opt, data, max_drop=0.0, **kwargs)
        assert (top2.metric, top2.baseline, top2.optimized, top2.drop) == ("top2", 1, 1, 0)
    assert "top-2 accuracy drop" in top2.message()
    assert top2.agreement == 0.0


def test_top_k_breaks_ties_like_argmax() -> None:
    scores = np.array([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0]])
    result = evaluate(TableModel("m", scores), (ids(2), np.array([0, 1])))
    assert result.predictions.tolist() == [0, 0]
    assert result.correct.tolist() == [True, False]


def test_compare_recomputes_correctness_for_another_k() -> None:
    labels = np.array([0, 1])
    scores = np.array([[0.3, 0.6, 0.1], [0.1, 0.3, 0.6]])
    evaluated = evaluate(TableModel("m", scores), (ids(2), labels))
    result = compare(evaluated, evaluated, max_drop=0.0, metric="top2")
    assert result.baseline == 1.0


def test_a_user_metric_matches_top1_and_has_no_mcnemar() -> None:
    def top1(labels: Any, scores: Any) -> float:
        return float(np.mean(np.argmax(scores, axis=1) == labels))

    base, opt, labels = rates(6, 2, 80, 12)
    evaluated = evaluations(base, opt, labels)
    builtin = compare(*evaluated, max_drop=0.05)
    user = compare(*evaluated, max_drop=0.05, metric=top1)
    assert user.metric == "top1"
    assert (user.baseline, user.optimized) == (builtin.baseline, builtin.optimized)
    assert user.drop == pytest.approx(builtin.drop)
    assert user.ci_low == pytest.approx(builtin.ci_low)
    assert user.ci_high == pytest.approx(builtin.ci_high)
    assert (user.mcnemar_p, user.discordant) == (None, None)
    assert user.failure_cases == builtin.failure_cases
    assert "p = " not in failure_cases_markdown(user)


def test_a_user_metric_named_in_the_message() -> None:
    def recall_of_class_0(labels: Any, scores: Any) -> float:
        return float(np.mean(np.argmax(scores, axis=1)[labels == 0] == 0))

    base, opt, labels = rates(6, 2, 80, 12)
    result = compare(*evaluations(base, opt, labels), max_drop=0.01, metric=recall_of_class_0)
    assert result.message().startswith("recall_of_class_0 drop 0.04 > 0.01")


def test_a_user_metric_must_return_a_finite_number() -> None:
    evaluated = evaluations(BASE_PRED, OPT_PRED, LABELS)
    with pytest.raises(ValueError, match="returned nan; it must be finite"):
        compare(*evaluated, max_drop=0.1, metric=lambda labels, scores: math.nan)


# --------------------------------------------------------------------------- data forms


def _pairs(n: int) -> list[tuple[Any, int]]:
    return [(ids(n)[i], int(LABELS[i])) for i in range(n)]


def _batches(n: int, size: int) -> list[tuple[Any, Any]]:
    return [(ids(n)[i : i + size], LABELS[i : i + size]) for i in range(0, n, size)]


def _loader() -> Iterator[tuple[Any, Any]]:
    yield from _batches(10, 3)


DATA_FORMS: dict[str, Callable[[], Any]] = {
    "arrays": lambda: (ids(10), LABELS),
    "lists": lambda: (ids(10).tolist(), LABELS.tolist()),
    "pairs": lambda: _pairs(10),
    "batches": lambda: _batches(10, 3),
    "loader factory": lambda: _loader,
    "one-shot iterator": lambda: iter(_pairs(10)),
    "float labels": lambda: (ids(10), LABELS.astype(np.float64)),
}


@pytest.mark.parametrize("form", DATA_FORMS)
def test_every_data_form_gives_the_same_result(form: str) -> None:
    expected = assert_accuracy_drop(*pair(), (ids(10), LABELS), max_drop=0.25)
    result = assert_accuracy_drop(*pair(), DATA_FORMS[form](), max_drop=0.25, batch_size=4)
    assert result == expected


def test_dict_inputs_for_a_two_input_model() -> None:
    inputs = ("ids", "mask")
    base = model("b", BASE_PRED, inputs=inputs)
    opt = model("o", OPT_PRED, inputs=inputs)
    features = {"mask": np.ones((10, 2), np.float32), "ids": ids(10)}
    from_arrays = assert_accuracy_drop(base, opt, (features, LABELS), max_drop=0.25)
    pairs = [({"ids": ids(10)[i], "mask": np.ones(2)}, 0) for i in range(10)]
    from_pairs = assert_accuracy_drop(base, opt, pairs, max_drop=0.25)
    assert from_arrays == from_pairs
    assert from_arrays.drop == 0.2


def test_single_items_are_stacked_into_batches_of_batch_size() -> None:
    base, opt = pair()
    assert_accuracy_drop(base, opt, _pairs(10), max_drop=0.25, batch_size=4)
    assert base.batches == opt.batches == [4, 4, 2]


def test_given_batches_pass_through() -> None:
    base, opt = pair()
    assert_accuracy_drop(base, opt, _batches(10, 3), max_drop=0.25, batch_size=64)
    assert base.batches == [3, 3, 3, 1]


def test_the_loader_factory_is_called_once_for_both_models() -> None:
    calls = []

    def loader() -> list[tuple[Any, Any]]:
        calls.append(1)
        return _batches(10, 5)

    assert_accuracy_drop(*pair(), loader, max_drop=0.25)
    assert len(calls) == 1


def test_float_inputs_are_cast_to_the_declared_float_type() -> None:
    half = model("fp16", OPT_PRED, dtype="float16")
    evaluate(half, (ids(10), LABELS))
    assert set(half.dtypes) == {np.dtype(np.float16)}  # the probe's calls and the run's


BAD_DATA = {
    "fractional labels": ((ids(3), np.array([0.5, 1.0, 0.0])), "labels must be integer class"),
    "string labels": ((ids(2), np.array(["cat", "dog"])), "labels must be integer class"),
    "one-hot labels": ((ids(2), np.eye(3)[:2]), r"shape \(n,\).*argmax"),
    "length mismatch": ((ids(3), np.array([0, 1])), "X has 3 items but y has 2 labels"),
    "empty arrays": ((np.zeros((0, 1), np.float32), np.zeros(0, np.int64)), "data is empty"),
    "empty list": ([], "data is empty"),
    "wrong dict keys": (({"pixels": ids(2)}, np.array([0, 1])), r"X has inputs \['pixels'\]"),
    "not a pair": ([ids(1)[0]], "not an \\(input, label\\) pair"),
    "a string": ("data.npz", "data must be \\(X, y\\) arrays"),
    "a number": (3, "data must be"),
    "label out of range": ((ids(2), np.array([0, 7])), "label 7 of item 1 is not a class"),
    "negative label": ((ids(2), np.array([0, -1])), "label -1 of item 1"),
    "pair with a bad label": ([(ids(1)[0], 0.5)], "item 0: the label must be an integer"),
    "batch length mismatch": ([(ids(3), np.array([0, 1]))], "X has 3 items but y has 2"),
    "ragged items": ([(np.zeros(2), 0), (np.zeros(3), 1)], "cannot be stacked into a batch"),
    "items missing a key": ([({"x": ids(1)[0]}, 0), ({"y": ids(1)[0]}, 0)], "cannot be stacked"),
}


@pytest.mark.parametrize("case", BAD_DATA)
def test_bad_data_is_one_clear_value_error(case: str) -> None:
    data, message = BAD_DATA[case]
    with pytest.raises(ValueError, match=message) as error:
        assert_accuracy_drop(*pair(), data, max_drop=0.01)
    assert "\n" not in str(error.value)


def test_a_multi_input_model_needs_a_dict() -> None:
    two = model("two", BASE_PRED, inputs=("a", "b"))
    with pytest.raises(ValueError, match=r"takes 2 inputs \['a', 'b'\]; give X as a dict"):
        evaluate(two, (ids(10), LABELS))


def test_the_two_evaluations_must_be_on_the_same_items() -> None:
    short = evaluate(model("b", BASE_PRED), (ids(9), LABELS[:9]))
    full = evaluate(model("o", OPT_PRED), (ids(10), LABELS))
    with pytest.raises(ValueError, match="not on the same labelled items"):
        compare(short, full, max_drop=0.01)


# --------------------------------------------------------------------------- outputs


def test_output_by_name_or_index_defaults_to_the_first() -> None:
    two = TableModel("m", probabilities([0, 1]), outputs=("probabilities", "logits"))
    data = (ids(2), np.array([0, 1]))
    first = evaluate(two, data)
    assert first.confidences.tolist() == pytest.approx([0.8, 0.8])
    assert first.output == "output 'probabilities'"
    by_name = evaluate(two, data, output="logits")  # ten times the probabilities: softmax
    expected = math.exp(8) / (math.exp(8) + 2 * math.exp(1))
    assert by_name.confidences.tolist() == pytest.approx([expected, expected])
    assert evaluate(two, data, output=1).confidences.tolist() == by_name.confidences.tolist()


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("scores", r"output='scores': model 'm' has outputs \['probabilities', 'logits'\]"),
        (2, "output=2: model 'm' has outputs"),
        (-1, "output must be an output name or an index >= 0"),
    ],
)
def test_an_unknown_output_is_a_value_error(output: Any, message: str) -> None:
    two = TableModel("m", probabilities([0, 1]), outputs=("probabilities", "logits"))
    with pytest.raises(ValueError, match=message):
        evaluate(two, (ids(2), np.array([0, 1])), output=output)


def test_an_output_that_is_no_class_scores_points_at_output() -> None:
    labels_only = TableModel("clf", np.arange(3), outputs=("label",))
    # at the deployed batch, 1: the probe's first call
    with pytest.raises(ValueError, match=r"not class scores of shape \(1, classes\).*output="):
        evaluate(labels_only, (ids(3), np.array([0, 1, 2])))


def test_nan_scores_count_as_wrong() -> None:
    table = probabilities([0, 0, 0])
    table[1] = np.nan
    broken = evaluate(TableModel("nan", table), (ids(3), np.zeros(3, np.int64)))
    assert broken.predictions.tolist() == [0, -1, 0]
    assert broken.correct.tolist() == [True, False, True]
    result = compare(evaluate(model("b", [0, 0, 0]), (ids(3), np.zeros(3))), broken, max_drop=1)
    assert result.failure_cases[0].optimized_prediction == -1
    assert result.as_extra()["failure_cases"][0]["optimized_confidence"] is None
    assert "NaN output" in failure_cases_markdown(result)


# --------------------------------------------------------------------------- failure cases


def _case_set() -> AccuracyComparison:
    labels = [0] * 8
    base = [0, 0, 0, 1, 1, 2, 0, 0]
    opt = [1, 2, 0, 1, 2, 0, 0, 0]
    #      reg reg ok both disagree fixed ok ok
    confidences = [0.5, 0.9, 0.8, 0.95, 0.6, 0.99, 0.7, 0.7]
    data = (ids(8), np.array(labels))
    return compare(
        evaluate(model("b", base), data),
        evaluate(model("o", opt, top=confidences), data),
        max_drop=1.0,
    )


def test_failure_cases_regressions_first_then_most_confident() -> None:
    result = _case_set()
    kinds = [(case.index, case.kind) for case in result.failure_cases]
    assert kinds == [
        (1, "regression"),
        (0, "regression"),
        (3, "both wrong"),
        (4, "both wrong, disagree"),
        (5, "fixed"),
    ]
    assert result.failure_cases_total == 5
    assert result.failure_cases[0] == FailureCase(1, 0, 0, 0.8, 2, 0.9, "regression")


def test_failure_cases_are_capped() -> None:
    labels = [0] * 8
    data = (ids(8), np.array(labels))
    capped = compare(
        evaluate(model("b", [0, 0, 0, 1, 1, 2, 0, 0]), data),
        evaluate(model("o", [1, 2, 0, 1, 2, 0, 0, 0]), data),
        max_drop=1.0,
        max_failure_cases=2,
    )
    assert [case.index for case in capped.failure_cases] == [0, 1]
    assert capped.failure_cases_total == 5
    assert "Showing 2 of 5 cases." in failure_cases_markdown(capped)


def test_markdown_holds_the_figures_and_the_table() -> None:
    text = failure_cases_markdown(_case_set(), title="accuracy_drop_ok")
    assert text.startswith("## accuracy_drop_ok\n")
    assert "n = 8 items" in text
    assert "| index | label | b pred (conf) | o pred (conf) | kind |" in text
    assert "| 1 | 0 | 0 (0.800) | 2 (0.900) | regression |" in text
    assert "| 4 | 0 | 1 (0.800) | 2 (0.600) | both wrong, disagree |" in text
    assert "McNemar exact test: 2 regressions, 1 fixed, p = 1" in text
    assert "Showing" not in text
    assert text == failure_cases_markdown(_case_set(), title="accuracy_drop_ok")


def test_markdown_without_failure_cases() -> None:
    result = compare(*evaluations([0, 0], [0, 0], [0, 0]), max_drop=0.01)
    assert "No failure cases" in failure_cases_markdown(result)


# --------------------------------------------------------------------------- assertion


def test_assert_accuracy_drop_fails_with_the_figures_and_records_one_check() -> None:
    with recording(CheckRecorder()) as recorder, pytest.raises(AssertionError) as error:
        assert_accuracy_drop(*pair(), (ids(10), LABELS), max_drop=0.01)
    message = str(error.value)
    assert message.startswith(
        "accuracy drop 0.2 > 0.01: baseline 0.9, optimized 0.7 (n=10, agreement 0.7, 95% CI of"
        " the drop "
    )
    [check] = recorder.checks
    assert (check.name, check.metric, check.value, check.budget) == (
        "accuracy_drop_ok",
        "accuracy_drop",
        0.2,
        0.01,
    )
    assert check.passed is False
    assert check.provenance == "measured"
    assert message in check.details
    assert check.display == "0.2 (baseline 0.9 → 0.7)"
    assert check.extra["discordant"] == [2, 0]
    # The cases as plain data; the Markdown is made by the report from them.
    cases = check.extra[FAILURE_CASES_KEY]
    assert [case["kind"] for case in cases][:2] == ["regression", "regression"]
    assert all(tuple(case) == FAILURE_CASE_FIELDS for case in cases)
    assert check.extra["failure_cases_total"] == len(cases)
    section = failure_cases_section(check)
    assert section.startswith("## accuracy_drop_ok: int8 against fp32\n")
    assert "| index | label |" in section
    json.dumps(check.extra, allow_nan=False)


def test_assert_accuracy_drop_passes_and_returns_the_comparison() -> None:
    with recording(CheckRecorder()) as recorder:
        result = assert_accuracy_drop(*pair(), (ids(10), LABELS), max_drop=0.25, name="int8_ok")
    [check] = recorder.checks
    assert check.name == "int8_ok"
    assert check.passed is True
    assert result.passed
    assert result.message().startswith("baseline 0.9, optimized 0.7, accuracy drop 0.2 <= 0.25")


def test_max_drop_defaults_to_the_configured_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checks, "config_budget", lambda name: 0.25)
    assert assert_accuracy_drop(*pair(), (ids(10), LABELS)).max_drop == 0.25
    monkeypatch.setattr(checks, "config_budget", lambda name: None)
    with pytest.raises(ValueError, match=r"no max_drop given and no budgets\.accuracy_drop"):
        assert_accuracy_drop(*pair(), (ids(10), LABELS))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_drop": -0.1}, "max_drop must be a finite number >= 0"),
        ({"max_drop": math.nan}, "max_drop must be a finite number >= 0"),
        ({"max_drop": "1%"}, "max_drop must be a number >= 0"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1"),
        ({"confidence": 0.5}, r"confidence must be in \(0.5, 1\)"),
        ({"confidence": 1.0}, r"confidence must be in \(0.5, 1\)"),
        ({"top_k": 0}, "top_k must be an integer >= 1"),
        ({"top_k": 4}, "top_k=4 but model 'fp32' scores only 3 classes"),
        ({"metric": "top5", "top_k": 3}, "metric='top5' and top_k=3 disagree"),
        ({"metric": "f1"}, r"metric must be 'top1', 'top<k>'"),
        ({"metric": "top0"}, r"metric must be 'top1', 'top<k>'"),
        ({"metric": len, "top_k": 2}, "top_k applies to the top-k metrics"),
        ({"max_failure_cases": -1}, "max_failure_cases must be an integer >= 0"),
    ],
)
def test_bad_arguments_are_one_line_value_errors(kwargs: dict[str, Any], message: str) -> None:
    kwargs = {"max_drop": 0.01, **kwargs}
    with pytest.raises(ValueError, match=message):
        assert_accuracy_drop(*pair(), (ids(10), LABELS), **kwargs)


def test_a_deploy_model_end_to_end() -> None:
    from pytest_deploycheck.measure.runtime import SessionSettings, load_model

    models = EXAMPLE / "models"
    baseline = load_model("fp32", models / "classifier_fp32.onnx", SessionSettings())
    optimized = load_model("int8", models / "classifier_int8.onnx", SessionSettings())
    with np.load(EXAMPLE / "data" / "digits_test.npz") as archive:
        data = (archive["images"], archive["labels"])
    result = assert_accuracy_drop(baseline, optimized, data, max_drop=0.05)
    assert result.n == len(data[1])
    assert 0.5 < result.baseline <= 1.0
    assert result.ci_low <= result.ci_high


# --------------------------------------------------------------------------- properties


@st.composite
def paired_correctness(draw: st.DrawFn) -> tuple[list[bool], list[bool]]:
    n = draw(st.integers(1, 40))
    base = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    opt = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    return base, opt


def model_2(name: str, predictions: Sequence[int]) -> TableModel:
    return TableModel(name, probabilities(predictions, classes=2))


@settings(max_examples=60, deadline=None)
@given(paired_correctness(), st.floats(0.0, 0.5), st.integers(0, 2**32 - 1))
def test_paired_statistics_properties(
    correctness: tuple[list[bool], list[bool]], max_drop: float, seed: int
) -> None:
    base_ok, opt_ok = correctness
    n = len(base_ok)
    data = (ids(n), np.zeros(n, np.int64))
    baseline = evaluate(model_2("b", [0 if ok else 1 for ok in base_ok]), data)
    optimized = evaluate(model_2("o", [0 if ok else 1 for ok in opt_ok]), data)
    result = compare(baseline, optimized, max_drop=max_drop, resamples=200, seed=seed)
    assert 0.0 <= result.agreement <= 1.0  # type: ignore[operator]
    assert result.drop == pytest.approx(result.baseline - result.optimized, abs=1e-12)
    assert -1.0 <= result.ci_low <= result.ci_high <= 1.0
    assert 0.0 < result.mcnemar_p <= 1.0  # type: ignore[operator]
    # Unresolved only when the interval straddles the budget (issue 15 point 3).
    assert result.resolved == (not result.ci_low <= max_drop < result.ci_high)
    assert result.passed == (result.drop <= max_drop)
    both_right = sum(b and o for b, o in zip(base_ok, opt_ok, strict=True))
    assert result.failure_cases_total == n - both_right
    if base_ok == opt_ok:
        assert (result.ci_low, result.ci_high) == (0.0, 0.0)
    swapped = compare(optimized, baseline, max_drop=max_drop, resamples=200, seed=seed)
    assert swapped.drop == pytest.approx(-result.drop, abs=1e-12)
    assert swapped.ci_low == pytest.approx(-result.ci_high, abs=1e-12)
    assert swapped.mcnemar_p == result.mcnemar_p


def test_hostile_model_and_check_names_are_literal_in_failure_cases() -> None:
    # Model names are the user's (config keys, or a wrapper's name): never live Markdown.
    labels = [0] * 4
    data = (ids(4), np.array(labels))
    comparison = compare(
        evaluate(model("![x](http://evil/x.png)", [0, 0, 1, 0]), data),
        evaluate(model("a`|[x](javascript:alert(1))\nb", [1, 0, 1, 0]), data),
        max_drop=1.0,
    )

    text = failure_cases_markdown(comparison, title="<script>ok\nrelease_candidate: True")

    assert text.startswith("## &lt;script&gt;ok release_candidate: True\n")
    assert "- Models: baseline `![x](http://evil/x.png)`, optimized" in text
    assert " ``a`|[x](javascript:alert(1))\\nb``; n = 4 items" in text
    header = next(line for line in text.splitlines() if line.startswith("| index"))
    assert header == (
        "| index | label | \\!\\[x\\](http://evil/x.png) pred (conf)"
        " | a\\`\\|\\[x\\](javascript:alert(1)) b pred (conf) | kind |"
    )


# --------------------------------------------------------------------------- batch as deployed

TEST_MODELS = Path(__file__).resolve().parent / "models"


def onnx_model(file: str, name: str, batch: int = 1) -> Any:
    from pytest_deploycheck.measure.runtime import SessionSettings, load_model

    return load_model(name, TEST_MODELS / file, SessionSettings(intra_op_threads=1), batch=batch)


def linear_data(n: int = 100) -> tuple[Any, Any]:
    x = np.random.default_rng(0).standard_normal((n, 4)).astype(np.float32)
    return x, (x.sum(axis=1) > 0).astype(np.int64)


def test_a_batch_independent_model_is_batched_for_speed_after_the_probe() -> None:
    base, opt = onnx_model("tiny_linear.onnx", "fp32"), onnx_model("tiny_linear.onnx", "int8")
    with recording(CheckRecorder()) as recorder:
        result = assert_accuracy_drop(base, opt, linear_data(), max_drop=0.0)
    assert result.batch == 1
    assert [(b.batch, b.run_batch, b.batched_for_speed) for b in result.batching] == [
        (1, 64, True),
        (1, 64, True),
    ]
    assert "run at batch 64 for speed: on 32 items its outputs at batch 32 equal" in (
        result.batching[1].reason
    )
    [check] = recorder.checks
    assert check.extra["batch"] == 1
    assert check.extra["batching"][1]["batched_for_speed"] is True
    assert ", at batch 1)" in check.details


def test_a_batch_dependent_model_is_evaluated_at_its_deployed_batch_and_says_why() -> None:
    # batch_mean subtracts the batch mean: at batch 1 every score is 0, so class 0 wins.
    base, opt = onnx_model("tiny_linear.onnx", "fp32"), onnx_model("batch_mean.onnx", "int8")
    x, y = linear_data()
    result = evaluate(opt, (x, y))
    assert result.batching is not None
    assert (result.batching.batch, result.batching.run_batch) == (1, 1)
    assert result.batching.batched_for_speed is False
    assert "its outputs depend on the batch (on 32 items, batch 32 differs from batch 1" in (
        result.batching.reason
    )
    assert result.accuracy == float(np.mean(y == 0))  # the figure of batch 1, item by item
    comparison = assert_accuracy_drop(base, opt, (x, y), max_drop=1.0)
    assert "int8 at batch 1 (run at that batch: its outputs depend on the batch" in (
        comparison.batch_note()
    )
    section = failure_cases_markdown(comparison)
    assert "- Batch size: fp32 at batch 1 (run at batch 64 for speed" in section


def test_the_deployed_batch_is_the_models_and_batch_size_overrides_it() -> None:
    x, y = linear_data(10)
    at_four = evaluate(onnx_model("batch_mean.onnx", "int8", batch=4), (x, y))
    assert at_four.batching is not None
    assert (at_four.batching.batch, at_four.batching.run_batch) == (4, 4)
    chunks = [onnx_model("batch_mean.onnx", "m").run({"x": x[i : i + 4]})[0] for i in (0, 4, 8)]
    assert np.array_equal(at_four.predictions, np.concatenate(chunks).argmax(axis=1))
    given = evaluate(onnx_model("batch_mean.onnx", "int8", batch=4), (x, y), batch_size=5)
    assert given.batching is not None
    assert (given.batching.batch, given.batching.run_batch) == (5, 5)
    assert given.batching.reason == "batch_size=5 given"


def test_a_model_that_cannot_batch_is_evaluated_at_its_batch() -> None:
    fixed = onnx_model("fixed_only.onnx", "fixed")  # input fixed at [1, 4]
    x, y = linear_data(8)
    result = evaluate(fixed, (x, np.zeros(8, dtype=np.int64)))
    assert result.batching is not None
    assert result.batching.run_batch == 1
    assert result.batching.reason.startswith("run at that batch: it cannot run batch 8 (model")
    assert y.shape == (8,)
