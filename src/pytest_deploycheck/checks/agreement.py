"""Label-free comparison of a baseline and an optimized model: how often they agree.

Production inputs come without labels, so an accuracy drop cannot be measured on
them; disagreement between the model that was accepted and its optimized successor is
the early warning.  :func:`assert_agreement` runs both models on the same unlabelled
inputs and records the agreement rate with its exact (Clopper-Pearson) interval.

A function of its own, not an option of ``assert_accuracy_drop``: that check judges a
*drop* on labelled items against ``max_drop`` with paired statistics, this one a
*rate* against a floor with a one-sample binomial interval; one function with both
would have arguments that mean nothing in half its calls.

The rule, on the interval at ``confidence`` (default 0.95):

* **pass** when its lower bound is at least ``min_agreement``: the sample shows the
  models agree at least that often;
* **fail** when its upper bound is below ``min_agreement``: the sample shows they
  agree less often;
* **inconclusive** otherwise (the interval straddles the floor): the sample is too
  small to tell, which, like every inconclusive gating check, keeps the run from
  being a release candidate.  A point estimate above the floor is not evidence at,
  say, 40 items, and the result says how many items would be.

The exact interval, because agreement rates sit near 1, where the normal
approximation is worst and Clopper-Pearson's coverage is guaranteed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ..config.units import format_value
from ..measure.stats import clopper_pearson, items_to_clear
from . import accuracy
from . import record as checks
from .drift import Sample, collect, run_outputs
from .metrics import AGREEMENT

Array = npt.NDArray[Any]
Same = Callable[[Any, Any], bool]
MAX_DISAGREEMENTS = 20  # item indices kept in the report


def _hide_under_own_errors(excinfo: Any) -> bool:
    return excinfo is not None and bool(excinfo.errisinstance((ValueError, AssertionError)))


__tracebackhide__ = _hide_under_own_errors


@dataclass(frozen=True)
class AgreementResult:
    """The agreement of two models on n unlabelled items, its interval and the verdict."""

    baseline_name: str
    optimized_name: str
    output: str
    n: int
    agreed: int
    ci_low: float
    ci_high: float
    confidence: float
    min_agreement: float
    comparison: str
    disagreements: tuple[int, ...]

    @property
    def rate(self) -> float:
        return self.agreed / self.n

    @property
    def passed(self) -> bool | None:
        """True: lower bound >= floor; False: upper bound < floor; None: straddles."""
        if self.ci_low >= self.min_agreement:
            return True
        if self.ci_high < self.min_agreement:
            return False
        return None

    def message(self) -> str:
        figures = (
            f"{self.baseline_name} and {self.optimized_name} agree on {self.agreed} of"
            f" {self.n} items ({format_value(self.rate)}, {format_value(self.confidence * 100)}%"
            f" CI {format_value(self.ci_low)} to {format_value(self.ci_high)}; {self.comparison})"
        )
        floor = format_value(self.min_agreement)
        if self.passed is True:
            return f"{figures}: lower bound >= min_agreement {floor}"
        if self.passed is False:
            return f"{figures}: upper bound < min_agreement {floor}"
        return (
            f"inconclusive: {figures}: the interval straddles min_agreement {floor};"
            f" {self._items_needed()}"
        )

    def _items_needed(self) -> str:
        """Items for the lower bound to clear the floor at this rate."""
        needed = items_to_clear(self.rate, self.min_agreement, self.confidence, self.n)
        if needed is None:
            return "at exactly the floor no sample size would settle it"
        side = "pass" if self.rate > self.min_agreement else "fail"
        return f"at this rate about {needed} items would make it {side}"

    def display(self) -> str:
        return f"{self.rate:.3f} ({self.agreed}/{self.n})"

    def as_extra(self) -> dict[str, Any]:
        return {
            "baseline_name": self.baseline_name,
            "optimized_name": self.optimized_name,
            "output": self.output,
            "n": self.n,
            "agreed": self.agreed,
            "rate": self.rate,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "confidence": self.confidence,
            "min_agreement": self.min_agreement,
            "comparison": self.comparison,
            "disagreements": list(self.disagreements),
            "disagreements_total": self.n - self.agreed,
        }


def agreement_items(baseline: Array, optimized: Array, same: Same | None) -> tuple[Array, str]:
    """Per item, whether the two outputs agree, and how that was decided.

    Default: the top-1 class of 2-D scores (a NaN row never agrees), or equality of
    1-D outputs (class ids, labels); any other output needs *same(b, o) -> bool*.
    """
    if baseline.shape[0] != optimized.shape[0]:
        raise ValueError("the two models returned different numbers of items")
    if same is not None:
        flags = [bool(same(b, o)) for b, o in zip(baseline, optimized, strict=True)]
        return np.asarray(flags, dtype=np.bool_), f"same={_name(same)}"
    if baseline.ndim == 2 and baseline.shape == optimized.shape and baseline.dtype.kind in "biuf":
        valid = ~(np.isnan(baseline).any(axis=1) | np.isnan(optimized).any(axis=1))
        top = np.argmax(baseline, axis=1) == np.argmax(optimized, axis=1)
        return np.asarray(top & valid, dtype=np.bool_), "top-1 class"
    if baseline.ndim == 1 and optimized.ndim == 1:
        return np.asarray(baseline == optimized, dtype=np.bool_), "equal outputs"
    raise ValueError(
        f"outputs of shape {baseline.shape[1:]} are neither class scores nor class ids;"
        " pass same=fn(baseline_item, optimized_item) -> bool"
    )


def _name(fn: Any) -> str:
    return str(getattr(fn, "__name__", None) or type(fn).__name__)


def compare_agreement(
    baseline: Any,
    optimized: Any,
    inputs: Any,
    *,
    min_agreement: float = 0.99,
    confidence: float = 0.95,
    output: str | int | None = None,
    same: Same | None = None,
    batch_size: int | None = None,
    max_items: int | None = accuracy.DEFAULT_MAX_ITEMS,
) -> AgreementResult:
    """The figures of :func:`assert_agreement`, without recording or raising."""
    _check(baseline, optimized, min_agreement, confidence)
    sample: Sample = collect(inputs, "inputs", max_items)
    base_out, label = run_outputs(baseline, sample, output, batch_size)
    opt_out, _ = run_outputs(optimized, sample, output, batch_size)
    flags, how = agreement_items(base_out, opt_out, same)
    agreed = int(np.count_nonzero(flags))
    low, high = clopper_pearson(agreed, sample.n, confidence)
    return AgreementResult(
        baseline_name=accuracy._model_name(baseline),
        optimized_name=accuracy._model_name(optimized),
        output=label,
        n=sample.n,
        agreed=agreed,
        ci_low=low,
        ci_high=high,
        confidence=float(confidence),
        min_agreement=float(min_agreement),
        comparison=how,
        disagreements=tuple(int(i) for i in np.flatnonzero(~flags)[:MAX_DISAGREEMENTS]),
    )


def assert_agreement(
    baseline: Any,
    optimized: Any,
    inputs: Any,
    *,
    min_agreement: float = 0.99,
    confidence: float = 0.95,
    output: str | int | None = None,
    same: Same | None = None,
    batch_size: int | None = None,
    max_items: int | None = accuracy.DEFAULT_MAX_ITEMS,
    name: str = "agreement_ok",
) -> AgreementResult:
    """Fail unless *baseline* and *optimized* agree on at least *min_agreement* of *inputs*.

    *inputs* are unlabelled (any form :func:`assert_no_drift` takes; labels, if any,
    are ignored).  Records the ``agreement`` check: passed when the Clopper-Pearson
    interval's lower bound is >= *min_agreement*, failed when its upper bound is
    below, inconclusive when it straddles; raises AssertionError unless passed.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string (the check's name), got {name!r}")
    result = compare_agreement(
        baseline,
        optimized,
        inputs,
        min_agreement=min_agreement,
        confidence=confidence,
        output=output,
        same=same,
        batch_size=batch_size,
        max_items=max_items,
    )
    checks.record_check(
        name,
        metric=AGREEMENT,
        value=result.rate,
        budget=result.min_agreement,
        passed=result.passed,
        details=result.message(),
        display=result.display(),
        extra=result.as_extra(),
    )
    if result.passed is not True:
        raise AssertionError(result.message())
    return result


def _check(baseline: Any, optimized: Any, min_agreement: Any, confidence: Any) -> None:
    for role, model in (("baseline", baseline), ("optimized", optimized)):
        if not callable(getattr(model, "run", None)) or not hasattr(model, "inputs"):
            raise ValueError(
                f"{role} must be a model (e.g. deploy_models[{role!r}]) with inputs and"
                f" run(feeds), got {type(model).__name__}"
            )
    if (
        isinstance(min_agreement, bool)
        or not isinstance(min_agreement, (int, float))
        or not 0 <= min_agreement <= 1
    ):
        raise ValueError(f"min_agreement must be a number in [0, 1], got {min_agreement!r}")
    if (
        isinstance(confidence, bool)
        or not isinstance(confidence, float)
        or not 0.5 <= confidence < 1
    ):
        raise ValueError(f"confidence must be in [0.5, 1), e.g. 0.95, got {confidence!r}")
