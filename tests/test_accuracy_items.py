"""Accuracy for any task (issue 15 point 3): item_metric=, the decoding protocol, what is
done to the scores, class names and formatters in failure_cases.md, and when the
"too small to resolve" remark appears."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from pytest_deploycheck.checks.accuracy import (
    assert_accuracy_drop,
    compare,
    evaluate,
)
from pytest_deploycheck.checks.record import CheckRecorder, recording
from pytest_deploycheck.report.failure_cases import failure_cases_markdown
from test_accuracy import TableModel, ids, model, rates

WORDS = ["cat", "dog", "bird", "fish", "frog", "lion", "bear", "wolf"]


class Decoder:
    """A text recogniser wrapped for assert_accuracy_drop: decode(X_batch) -> strings.

    Item i reads ``WORDS[i % 8]``, except the items in *misread*, read as "???".
    """

    def __init__(self, name: str, misread: Sequence[int] = ()) -> None:
        self.name = name
        self.misread = set(misread)
        self.batches: list[int] = []

    def __call__(self, batch: Any) -> list[str]:
        rows = np.asarray(batch).reshape(len(batch), -1)[:, 0].astype(int)
        self.batches.append(len(rows))
        return ["???" if i in self.misread else WORDS[i % 8] for i in rows]


def exact(label: str, output: str) -> bool:
    return label == output


def ocr_data(n: int) -> tuple[Any, list[str]]:
    return ids(n), [WORDS[i % 8] for i in range(n)]


def run(*args: Any, **kwargs: Any) -> Any:
    with recording(CheckRecorder()):
        return assert_accuracy_drop(*args, **kwargs)


# --------------------------------------------------------------------------- item_metric


def test_an_ocr_model_gets_paired_statistics_and_decoded_failure_cases() -> None:
    base, opt = Decoder("fp32", misread=[5]), Decoder("int8", misread=[2, 3, 5])
    result = run(base, opt, ocr_data(40), max_drop=0.1, item_metric=exact)
    assert (result.baseline, result.optimized) == (39 / 40, 37 / 40)
    assert result.drop == pytest.approx(2 / 40)
    assert result.discordant == (2, 0)
    assert result.mcnemar_p == 0.5  # 0/1 scores: McNemar's exact test, as for top-1
    assert result.paired_test == "McNemar exact test"
    assert result.agreement == pytest.approx(38 / 40)
    assert result.metric == "exact"
    assert [(c.index, c.kind) for c in result.failure_cases] == [
        (2, "regression"),
        (3, "regression"),
        (5, "both wrong"),
    ]
    first = result.failure_cases[0]
    assert (first.label_text, first.baseline_output, first.optimized_output) == (
        "bird",
        "bird",
        "???",
    )
    assert "item_metric 'exact'" in result.scores_note
    text = failure_cases_markdown(result)
    assert "| 2 | bird | bird (1.000) | ??? (0.000) | regression |" in text
    assert "- Agreement (same per-item score): 0.95" in text


def test_a_decoding_callable_is_called_at_the_batch_size_the_last_batch_smaller() -> None:
    base, opt = Decoder("fp32"), Decoder("int8")
    run(base, opt, ocr_data(10), max_drop=0.1, item_metric=exact, batch_size=4)
    assert base.batches == opt.batches == [4, 4, 2]
    plain = Decoder("fp32")  # no batch attribute: one item at a time
    run(plain, Decoder("int8"), ocr_data(3), max_drop=0.1, item_metric=exact)
    assert plain.batches == [1, 1, 1]


def test_pairs_of_input_and_label_work_too() -> None:
    pairs = [(ids(6)[i], WORDS[i % 8]) for i in range(6)]
    result = run(Decoder("b"), Decoder("o", [1]), pairs, max_drop=0.5, item_metric=exact)
    assert result.n == 6
    assert result.optimized == pytest.approx(5 / 6)


class Regressor:
    """A regression model behind a DeployModel-like run(): one value per item."""

    def __init__(self, name: str, values: Any) -> None:
        self.name = name
        self.inputs = [type("Spec", (), {"name": "x", "dtype": None})()]
        self.outputs = [type("Spec", (), {"name": "y"})()]
        self.values = np.asarray(values, dtype=np.float64)

    def run(self, feeds: Any) -> list[Any]:
        rows = np.asarray(feeds["x"]).reshape(len(feeds["x"]), -1)[:, 0].astype(int)
        return [self.values[rows]]


def test_regression_within_tolerance_and_a_fractional_score() -> None:
    rng = np.random.default_rng(3)
    truth = rng.normal(size=60)
    base = Regressor("fp32", truth + rng.normal(scale=0.01, size=60))
    opt = Regressor("int8", truth + rng.normal(scale=0.2, size=60))
    data = (ids(60), list(truth))

    def within(label: float, output: float) -> bool:
        return abs(label - output) <= 0.1

    counted = run(base, opt, data, max_drop=1.0, item_metric=within)
    assert counted.paired_test == "McNemar exact test"

    def closeness(label: float, output: float) -> float:
        return max(0.0, 1.0 - abs(label - output))

    graded = run(base, opt, data, max_drop=1.0, item_metric=closeness)
    b = np.maximum(0, 1 - np.abs(truth - base.values))
    o = np.maximum(0, 1 - np.abs(truth - opt.values))
    assert graded.drop == pytest.approx(b.mean() - o.mean())
    assert graded.ci_low <= graded.drop <= graded.ci_high
    # Fractions: the exact sign test on the items whose scores differ replaces McNemar.
    assert graded.paired_test == "exact sign test on the items whose scores differ"
    assert graded.discordant == (int(np.sum(b > o)), int(np.sum(b < o)))
    assert "Exact sign test on the items whose scores differ:" in failure_cases_markdown(graded)


@pytest.mark.parametrize(
    ("value", "shown"), [(1.5, "1.5"), ("yes", "'yes'"), (float("nan"), "nan"), (None, "None")]
)
def test_an_item_score_outside_0_1_is_one_line_naming_the_item(value: Any, shown: str) -> None:
    def broken(label: str, output: str) -> Any:
        return value if label == "fish" else True

    with pytest.raises(ValueError) as raised:
        run(Decoder("b"), Decoder("o"), ocr_data(8), max_drop=0.1, item_metric=broken)
    message = str(raised.value)
    assert "\n" not in message
    assert f"item_metric 'broken' returned {shown} for item 3 (model 'b')" in message
    assert "it must return a bool or a number in [0, 1]" in message


@pytest.mark.parametrize("option", [{"metric": "top5"}, {"scores": "logits"}, {"labels": ["a"]}])
def test_class_score_options_are_refused_beside_an_item_metric(option: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="applies to class scores only"):
        run(Decoder("b"), Decoder("o"), ocr_data(4), max_drop=0.1, item_metric=exact, **option)


def test_a_decoder_returning_the_wrong_number_of_outputs() -> None:
    with pytest.raises(ValueError, match=r"returned 1 outputs for a batch of 2 items"):
        run(
            lambda batch: ["x"],
            Decoder("o"),
            ocr_data(4),
            max_drop=0.1,
            item_metric=exact,
            batch_size=2,
        )


# --------------------------------------------------------------------------- scores


def fp16_probabilities(n: int, classes: int = 200) -> Any:
    """Probabilities with 0.9 on class 0 whose rows sum to 1.002, as a float16 head's
    rounding gives: no longer "sum to 1" within 1e-3."""
    rows = np.full((n, classes), 0.1 / (classes - 1))
    rows[:, 0] = 0.9
    return rows * 1.002


def test_double_softmax_is_said_and_scores_probabilities_fixes_it() -> None:
    # The first-time user's case: confidences of about 0.013 in failure_cases.md.
    table = fp16_probabilities(10)
    data = (ids(10), np.ones(10, dtype=np.int64))  # every item wrong: all are cases
    auto = evaluate(TableModel("b", table), data)
    assert float(auto.confidences[0]) == pytest.approx(0.0122, abs=1e-3)
    assert auto.scores_note.startswith("softmax applied to logits, scores='auto': the scores")
    assert "pass scores='probabilities'" in auto.scores_note
    fixed = evaluate(TableModel("b", table), data, scores="probabilities")
    assert float(fixed.confidences[0]) == pytest.approx(0.9018)
    assert fixed.scores_note == "model outputs read as probabilities, scores='probabilities'"
    result = run(TableModel("b", table), TableModel("o", table), data, max_drop=0.1)
    assert "; scores: softmax applied to logits, scores='auto'" in result.message()
    assert "- Scores: softmax applied to logits" in failure_cases_markdown(result)
    assert "| 0 (0.012) |" in failure_cases_markdown(result)
    explicit = run(
        TableModel("b", table), TableModel("o", table), data, max_drop=0.1, scores="probabilities"
    )
    assert "| 0 (0.902) |" in failure_cases_markdown(explicit)
    assert explicit.as_extra()["scores_note"].startswith("model outputs read as probabilities")


def test_probabilities_that_sum_to_1_are_read_as_such_and_said() -> None:
    result = run(model("b", [0, 1]), model("o", [0, 1]), (ids(2), np.array([0, 1])), max_drop=0)
    assert (
        result.scores_note == "model outputs read as probabilities (they sum to 1), scores='auto'"
    )


def test_logits_mode_and_bad_modes() -> None:
    data = (ids(3), np.zeros(3, dtype=np.int64))
    logits = evaluate(model("b", [0, 0, 0]), data, scores="logits")
    assert logits.scores_note == "softmax applied to logits, scores='logits'"
    assert float(logits.confidences[0]) < 0.8
    raw = TableModel("b", [[3.0, -1.0], [2.0, 0.5], [0.1, 4.0]])
    with pytest.raises(ValueError, match=r"scores='probabilities' but model 'b' outputs"):
        evaluate(raw, data, scores="probabilities")
    with pytest.raises(ValueError, match=r"scores must be one of 'auto', 'probabilities'"):
        evaluate(raw, data, scores="softmax")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- names


def test_class_names_in_failure_cases_are_escaped() -> None:
    data = (ids(3), np.array([0, 0, 0]))
    names = ["cat|<b>", "dog", "bird"]
    result = run(model("b", [0, 0, 0]), model("o", [0, 1, 2]), data, max_drop=1, labels=names)
    text = failure_cases_markdown(result)
    assert "| 1 | cat\\|&lt;b&gt; | cat\\|&lt;b&gt; (0.800) | dog (0.800) | regression |" in text
    assert "<b>" not in text
    assert result.failure_cases[0].as_dict()["optimized_output"] == "dog"


def test_a_formatter_and_its_errors() -> None:
    data = (ids(2), np.array([0, 0]))
    result = run(
        model("b", [0, 0]), model("o", [0, 1]), data, max_drop=1, formatter=lambda c: f"class-{c}"
    )
    assert "| 1 | class-0 | class-0 (0.800) | class-1 (0.800) |" in failure_cases_markdown(result)

    def broken(value: Any) -> str:
        raise KeyError(value)

    with pytest.raises(ValueError, match=r"formatter 'broken' failed on 0: "):
        run(model("b", [0, 0]), model("o", [0, 1]), data, max_drop=1, formatter=broken)
    with pytest.raises(ValueError, match="not both"):
        run(model("b", [0]), model("o", [0]), data, max_drop=1, labels=["a"], formatter=str)
    with pytest.raises(ValueError, match=r"labels= has 1 class names but the model scores 3"):
        run(model("b", [0, 0]), model("o", [0, 1]), data, max_drop=1, labels=["a"])


def test_a_formatter_shows_decoded_outputs_for_an_item_metric() -> None:
    result = run(
        Decoder("b"),
        Decoder("o", [1]),
        ocr_data(3),
        max_drop=1,
        item_metric=exact,
        formatter=lambda text: f"«{text}»",
    )
    assert "| 1 | «dog» | «dog» (1.000) | «???» (0.000) | regression |" in (
        failure_cases_markdown(result)
    )


# --------------------------------------------------------------------------- resolution


def wide(regressions: int, fixes: int, max_drop: float) -> Any:
    """n=20 with a wide interval; its place against the budget decides the remark."""
    base, opt, labels = rates(regressions, fixes, 20 - regressions - fixes, 0)
    data = (ids(20), labels)
    return compare(
        evaluate(model("b", base), data), evaluate(model("o", opt), data), max_drop=max_drop
    )


def test_too_small_appears_only_when_the_interval_straddles_the_budget() -> None:
    straddling = wide(2, 1, max_drop=0.05)
    assert straddling.ci_low <= 0.05 < straddling.ci_high
    assert not straddling.resolved
    assert "too small to resolve" in straddling.message()

    under = wide(2, 1, max_drop=0.5)  # wider than... no: all of it under the budget
    assert under.ci_high <= 0.5
    assert under.resolved and "too small" not in under.message()
    assert "all of it within the budget 0.5" in under.resolution_note

    over = wide(8, 0, max_drop=0.1)  # a wide interval wholly over a small budget
    assert over.ci_high - over.ci_low > 0.1 and over.ci_low > 0.1
    assert over.resolved and not over.passed
    assert "too small" not in over.message()
    assert "all of it over the budget 0.1" in over.resolution_note


def test_a_drop_of_zero_reads_0_000() -> None:
    result = wide(0, 0, max_drop=0.01)
    assert result.display() == "0.000 (baseline 1 → 1)"
    assert re.search(r"accuracy drop 0\.000 <= 0\.01", result.message())
    assert "accuracy drop 0.000 (budget 0.01)" in failure_cases_markdown(result)


def test_the_shared_options_are_checked_beside_an_item_metric() -> None:
    with pytest.raises(ValueError, match="name must be a non-empty string"):
        run(Decoder("b"), Decoder("o"), ocr_data(4), max_drop=1, item_metric=exact, name="")
    with pytest.raises(ValueError, match="baseline must be a model"):
        run(object(), Decoder("o"), ocr_data(4), max_drop=1, item_metric=exact)
    relative = run(
        Decoder("b"), Decoder("o", [1]), ocr_data(4), max_drop=1, item_metric=exact, relative=True
    )
    assert relative.drop == pytest.approx(0.25)
    assert relative.drop_label == "relative exact drop"
