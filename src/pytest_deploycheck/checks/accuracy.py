"""The accuracy drop of an optimized model against its baseline, judged on paired data.

"Optimizing latency but hiding the accuracy drop" is the mistake this catches:
:func:`assert_accuracy_drop` runs both models on the same labelled items and fails
when the optimized one loses more than the budget.

Why paired statistics: both models see the *same* items, so most items are right
(or wrong) for both and cancel out of the difference.  The variance of the drop is
that of the discordant items only, much smaller than the sum of the variances of two
independently estimated accuracies (for two 90% models that differ on 3% of the items,
an unpaired interval is about 2.4 times as wide), so an unpaired test would call most
evaluation sets too small.  Hence the agreement rate,
McNemar's exact test on the discordant pairs and a *paired* bootstrap (each resample
draws item indices once and scores both models on them).

The verdict is judged on the point estimate of the drop, as a person reading the
figures would, and the confidence interval is reported beside it.  When the interval
is wider than the budget itself the evaluation set cannot resolve the budget; the
result says so, with roughly how many items would, and ``require_resolution=True``
(the strict mode) turns that into a failure.

Why the deployed batch: a dynamically quantized model computes its activation scales
per batch, so its outputs (and its accuracy) depend on what else is in the batch.  The
figure is for the batch size the model is deployed with (the model's ``batch``, 1 by
default); larger batches are used for speed only once a probe shows that the model's
outputs at batch 1 and batched agree within float tolerance.

numpy is imported at the top: the package exports :func:`assert_accuracy_drop`
lazily, so this module is only loaded by a test that uses it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from ..config.units import format_value
from ..measure.stats import mcnemar_exact_p, paired_bootstrap, percentile_interval
from . import record as checks
from .metrics import ACCURACY_DROP, FAILURE_CASES_KEY, accuracy_drop_label

Array = npt.NDArray[Any]
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
MetricFn = Callable[[Array, Array], float]
FailureKind = Literal["regression", "both wrong, disagree", "both wrong", "fixed"]
ScoresMode = Literal["auto", "probabilities", "logits"]
SCORES_MODES: tuple[ScoresMode, ...] = ("auto", "probabilities", "logits")
PROBABILITIES_NOTE = "model outputs read as probabilities (they sum to 1)"
LOGITS_NOTE = "softmax applied to logits"

DATA_FORMS = (
    "(X, y) arrays (X may be a dict input name -> array), an iterable of (input, label)"
    " pairs or of (X_batch, y_batch) batches, or a callable returning one of these"
)
# The most items an iterable may yield: an endless loader must end in one line, not hang.
DEFAULT_MAX_ITEMS = 1_000_000
# Rows whose scores sum to 1 within this are taken as probabilities, not logits.
_PROBABILITY_TOLERANCE = 1e-3
# An interval this many times wider than the budget would need over 1e12 times the items.
_MAX_WIDTH_RATIO = 1e6
_KINDS: tuple[FailureKind, ...] = ("regression", "both wrong, disagree", "both wrong", "fixed")
# Sort rank of each kind: regressions, then both wrong (either way), then fixed.
_KIND_RANK = np.array([0, 1, 1, 2], dtype=np.int64)
# The batch-independence probe: this many items run at the deployed batch and in one
# batch must agree within the tolerance before larger batches are used for speed.
PROBE_ITEMS = 32
PROBE_RTOL, PROBE_ATOL = 1e-5, 1e-6
# The batch size used for speed once the probe passed.
SPEED_BATCH = 64


def _hide_under_own_errors(excinfo: Any) -> bool:
    """pytest leaves this module's frames out under its one-line errors.

    A ValueError here says what to fix in the caller's assert_accuracy_drop line, an
    AssertionError that the check failed; the frames of the plugin between would only
    bury that line.  Any other exception is a bug and keeps its whole traceback.
    """
    return excinfo is not None and bool(excinfo.errisinstance((ValueError, AssertionError)))


__tracebackhide__ = _hide_under_own_errors


class Classifier(Protocol):
    """What a model needs to be evaluated: DeployModel's ``run`` and ``inputs``."""

    @property
    def inputs(self) -> Sequence[Any]: ...

    def run(self, feeds: Mapping[str, Any]) -> Sequence[Any]: ...


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class FailureCase:
    """One item the models disagree on or the optimized model gets wrong."""

    index: int
    label: int
    baseline_prediction: int
    baseline_confidence: float
    optimized_prediction: int
    optimized_confidence: float
    kind: FailureKind
    # Display text (class names from labels=, a formatter=, or decoded outputs) and, for
    # an item_metric, each model's per-item score; None where not given.
    label_text: str | None = None
    baseline_output: str | None = None
    optimized_output: str | None = None
    baseline_score: float | None = None
    optimized_score: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: a confidence that is NaN (the model output NaN) becomes None."""
        return {
            "index": self.index,
            "label": self.label,
            "baseline_prediction": self.baseline_prediction,
            "baseline_confidence": _json_float(self.baseline_confidence),
            "optimized_prediction": self.optimized_prediction,
            "optimized_confidence": _json_float(self.optimized_confidence),
            "kind": self.kind,
            "label_text": self.label_text,
            "baseline_output": self.baseline_output,
            "optimized_output": self.optimized_output,
            "baseline_score": self.baseline_score,
            "optimized_score": self.optimized_score,
        }


@dataclass(frozen=True)
class Batching:
    """The batch sizes behind one model's figures: the one the figure is for (the
    deployed batch, or ``batch_size=`` when given) and the one it was run at."""

    model_name: str
    batch: int
    run_batch: int
    batched_for_speed: bool
    reason: str

    def describe(self) -> str:
        """``int8 at batch 1 (run at batch 64 for speed: ...)``."""
        return f"{self.model_name} at batch {self.batch} ({self.reason})"

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model_name,
            "batch": self.batch,
            "run_batch": self.run_batch,
            "batched_for_speed": self.batched_for_speed,
            "reason": self.reason,
        }


@dataclass(frozen=True, eq=False)
class Evaluation:
    """One model's predictions on a labelled set, item by item in the data's order.

    ``predictions`` is the top-1 class (-1 where the scores hold a NaN: such a row
    counts as wrong), ``confidences`` the top probability, ``correct`` whether the
    label is among the ``top_k`` highest scores.
    """

    model_name: str
    output: str
    labels: IntArray
    scores: FloatArray
    predictions: IntArray
    confidences: FloatArray
    correct: BoolArray
    top_k: int = 1
    batching: Batching | None = None
    scores_note: str = ""

    @property
    def n(self) -> int:
        return int(self.labels.shape[0])

    @property
    def accuracy(self) -> float:
        """Top-``top_k`` accuracy."""
        return float(np.count_nonzero(self.correct)) / self.n


@dataclass(frozen=True)
class AccuracyComparison:
    """The judged drop, its paired statistics and the failure cases behind it."""

    baseline_name: str
    optimized_name: str
    metric: str
    baseline: float
    optimized: float
    drop: float
    relative: bool
    max_drop: float
    n: int
    agreement: float | None
    ci_low: float
    ci_high: float
    confidence: float
    mcnemar_p: float | None
    discordant: tuple[int, int] | None
    resolved: bool
    resolution_note: str
    passed: bool
    failure_cases: tuple[FailureCase, ...]
    failure_cases_total: int
    resamples: int = 0
    # What was done to the scores (probabilities as given, softmax of logits, or an
    # item_metric's per-item scores), and the paired test behind mcnemar_p.
    scores_note: str = ""
    paired_test: str = "McNemar exact test"
    agreement_basis: str = "same top-1 prediction"
    # How the figures were obtained, not what they are: two comparisons with the same
    # figures are equal whatever batches were run.
    batching: tuple[Batching, ...] = field(default=(), compare=False)

    @property
    def batch(self) -> int | None:
        """The batch size the optimized model's figure is for (None: not known)."""
        return self.batching[-1].batch if self.batching else None

    def batch_note(self) -> str:
        """One sentence per model: the batch its figure is for and the batch it was run at."""
        return "; ".join(b.describe() for b in self.batching)

    def message(self) -> str:
        """One line of figures: why it failed, or what passed, and any resolution note."""
        drop, budget = drop_text(self.drop), format_value(self.max_drop)
        figures = (
            f"baseline {format_value(self.baseline)}, optimized {format_value(self.optimized)}"
        )
        context = self._context()
        if self.drop > self.max_drop:
            text = f"{self.drop_label} {drop} > {budget}: {figures} ({context})"
        elif not self.passed:
            text = f"{self.drop_label} {drop} <= {budget} but not resolved: {figures} ({context})"
        else:
            text = f"{figures}, {self.drop_label} {drop} <= {budget} ({context})"
        text = text if self.resolved else f"{text}; {self.resolution_note}"
        return f"{text}; scores: {self.scores_note}" if self.scores_note else text

    @property
    def drop_label(self) -> str:
        """``accuracy drop``, ``relative top-5 accuracy drop``, ``f1 drop``."""
        return accuracy_drop_label(self.metric, self.relative)

    def _context(self) -> str:
        parts = [f"n={self.n}"]
        if self.agreement is not None:
            parts.append(f"agreement {format_value(self.agreement)}")
        parts.append(f"{_percent(self.confidence)} CI of the drop {self._interval()}")
        if self.batching:
            parts.append(self._batch_phrase())
        return ", ".join(parts)

    def _batch_phrase(self) -> str:
        """``at batch 1``, or each model's batch where they differ."""
        if len({b.batch for b in self.batching}) == 1:
            return f"at batch {self.batching[0].batch}"
        return ", ".join(f"{b.model_name} at batch {b.batch}" for b in self.batching)

    def _interval(self) -> str:
        return f"{format_value(self.ci_low)} to {format_value(self.ci_high)}"

    def display(self) -> str:
        """The summary's figure: ``0.004 (baseline 0.904 → 0.900)``."""
        relative = " relative" if self.relative else ""
        return (
            f"{drop_text(self.drop)}{relative} (baseline {format_value(self.baseline)}"
            f" → {format_value(self.optimized)})"
        )

    def as_extra(self) -> dict[str, Any]:
        """Everything for report.json as plain data, failure cases included.

        failure_cases.md is rendered from this (report.failure_cases), not here.
        """
        return {
            "metric": self.metric,
            "baseline_name": self.baseline_name,
            "optimized_name": self.optimized_name,
            "baseline": self.baseline,
            "optimized": self.optimized,
            "drop": self.drop,
            "relative": self.relative,
            "max_drop": self.max_drop,
            "n": self.n,
            "agreement": self.agreement,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "confidence": self.confidence,
            "resamples": self.resamples,
            "mcnemar_p": self.mcnemar_p,
            "discordant": list(self.discordant) if self.discordant is not None else None,
            "resolved": self.resolved,
            "resolution_note": self.resolution_note,
            "passed": self.passed,
            FAILURE_CASES_KEY: [case.as_dict() for case in self.failure_cases],
            "failure_cases_total": self.failure_cases_total,
            "batch": self.batch,
            "batching": [b.as_dict() for b in self.batching],
            "batch_note": self.batch_note(),
            "scores_note": self.scores_note,
            "paired_test": self.paired_test,
            "agreement_basis": self.agreement_basis,
        }


# --------------------------------------------------------------------------- data


def _iter_batches(
    data: Any, batch_size: int, max_items: int | None = None
) -> Iterator[tuple[Any, IntArray]]:
    """The data as ``(X_batch, labels)``, X an array or a dict of arrays, whatever its form.

    An iterable (not arrays, whose length is known) may yield at most *max_items*.
    """
    data = _called(data)
    arrays = _as_arrays_pair(data)
    if arrays is not None:
        yield from _slices(arrays[0], _labels(arrays[1]), batch_size)
        return
    if isinstance(data, (str, bytes, Mapping)) or not isinstance(data, Iterable):
        raise ValueError(f"data must be {DATA_FORMS}; got {type(data).__name__}")
    yield from _capped(_batches_of_items(data, batch_size), max_items)


def _capped(
    batches: Iterator[tuple[Any, IntArray]], max_items: int | None
) -> Iterator[tuple[Any, IntArray]]:
    """The batches, until more than *max_items* items came: an endless loader never ends."""
    seen = 0
    for batch in batches:
        seen += len(batch[1])
        if max_items is not None and seen > max_items:
            raise ValueError(
                f"data yielded more than max_items={max_items:,} items (an endless"
                " iterator?); pass a finite data set, or a larger max_items= (None: no cap)"
            )
        yield batch


def _called(data: Any) -> Any:
    """A loader factory is called, so each evaluation gets a fresh iterator."""
    if callable(data) and not isinstance(data, (np.ndarray, Mapping, Sequence)):
        return data()
    return data


def _as_arrays_pair(data: Any) -> tuple[Any, Any] | None:
    """``(X, y)`` when *data* is a tuple of features and a 1-D label array, else None.

    A tuple of two ``(input, label)`` pairs or of two batches is not this form: its
    second element is no flat array of numbers.
    """
    if not isinstance(data, tuple) or len(data) != 2:
        return None
    features, labels = data
    if isinstance(features, Mapping) or isinstance(labels, np.ndarray):
        return features, labels
    try:
        candidate = np.asarray(labels)
    except ValueError:  # ragged: a pair or a batch
        return None
    if candidate.ndim == 1 and candidate.dtype.kind in "biuf":
        return features, labels
    return None


def _slices(features: Any, labels: IntArray, batch_size: int) -> Iterator[tuple[Any, IntArray]]:
    features = _feature_arrays(features)
    _check_lengths(features, labels)
    for start in range(0, len(labels), batch_size):
        stop = start + batch_size
        yield _take(features, slice(start, stop)), labels[start:stop]


def _batches_of_items(items: Iterable[Any], batch_size: int) -> Iterator[tuple[Any, IntArray]]:
    """Batches pass through as given; single ``(input, label)`` pairs are stacked."""
    pending: list[tuple[Any, int]] = []
    for position, item in enumerate(items):
        features, label = _pair(item, position)
        label_array = np.asarray(label)
        if label_array.ndim == 0:
            pending.append((features, _item_label(label_array, position)))
            if len(pending) == batch_size:
                yield _stacked(pending)
                pending = []
            continue
        if pending:
            yield _stacked(pending)
            pending = []
        batch, labels = _feature_arrays(features), _labels(label_array)
        _check_lengths(batch, labels)
        yield batch, labels
    if pending:
        yield _stacked(pending)


def _pair(item: Any, position: int) -> tuple[Any, Any]:
    if isinstance(item, (tuple, list)) and len(item) == 2:
        return item[0], item[1]
    raise ValueError(
        f"data item {position} is a {type(item).__name__}, not an (input, label) pair"
        f" or an (X_batch, y_batch) batch; data must be {DATA_FORMS}"
    )


def _stacked(pending: Sequence[tuple[Any, int]]) -> tuple[Any, IntArray]:
    labels = np.array([label for _, label in pending], dtype=np.int64)
    inputs = [features for features, _ in pending]
    try:
        if isinstance(inputs[0], Mapping):
            return {
                key: np.stack([np.asarray(f[key]) for f in inputs]) for key in inputs[0]
            }, labels
        return np.stack([np.asarray(f) for f in inputs]), labels
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise ValueError(
            f"data: single items cannot be stacked into a batch ({_first_line(exc)});"
            " every item's input needs the same shape (and the same keys)"
        ) from None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _feature_arrays(features: Any) -> Any:
    """An array, or a dict of arrays, each with the batch as its first dimension."""
    if isinstance(features, Mapping):
        return {str(key): _batch_array(value, str(key)) for key, value in features.items()}
    return _batch_array(features, "X")


def _batch_array(value: Any, what: str) -> Array:
    array = np.asarray(value)
    if array.ndim == 0:
        raise ValueError(f"data: {what} is a scalar; X needs the items as its first dimension")
    return array


def _take(features: Any, rows: slice) -> Any:
    if isinstance(features, dict):
        return {key: value[rows] for key, value in features.items()}
    return features[rows]


def _check_lengths(features: Any, labels: IntArray) -> None:
    arrays = features if isinstance(features, dict) else {"X": features}
    for key, array in arrays.items():
        if len(array) != len(labels):
            raise ValueError(
                f"data: {key} has {len(array)} items but y has {len(labels)} labels;"
                " X and y must hold the same items"
            )


def _labels(raw: Any) -> IntArray:
    """Integer class ids, one per item; float ids that are whole numbers are accepted."""
    labels = np.asarray(raw)
    if labels.ndim != 1:
        raise ValueError(
            f"data: labels must be integer class ids of shape (n,), got shape {labels.shape}"
            " (for one-hot labels pass y.argmax(axis=1))"
        )
    if labels.dtype.kind in "biu":
        return labels.astype(np.int64)
    if labels.dtype.kind == "f" and bool(np.all(np.isfinite(labels) & (labels % 1 == 0))):
        return labels.astype(np.int64)
    raise ValueError(f"data: labels must be integer class ids, got {_sample(labels)}")


def _item_label(label: Array, position: int) -> int:
    try:
        return int(_labels(label.reshape(1))[0])
    except ValueError:
        raise ValueError(
            f"data item {position}: the label must be an integer class id, got {label!r}"
        ) from None


def _sample(values: Array) -> str:
    shown = ", ".join(repr(v) for v in values[:3].tolist())
    return f"{values.dtype} [{shown}{', ...' if len(values) > 3 else ''}]"


# --------------------------------------------------------------------------- models


@dataclass(frozen=True)
class _ModelIO:
    """How one model takes a batch and which of its outputs holds the class scores."""

    model: Classifier
    name: str
    input_names: tuple[str, ...]
    input_dtypes: tuple[np.dtype[Any] | None, ...]
    output_index: int
    output_label: str

    @classmethod
    def of(cls, model: Classifier, output: str | int | None) -> _ModelIO:
        specs = list(model.inputs)
        if not specs:
            raise ValueError(f"model {_model_name(model)!r} declares no inputs")
        index, label = _output_choice(model, output)
        return cls(
            model=model,
            name=_model_name(model),
            input_names=tuple(str(spec.name) for spec in specs),
            input_dtypes=tuple(_spec_dtype(spec) for spec in specs),
            output_index=index,
            output_label=label,
        )

    def feeds(self, features: Any) -> dict[str, Array]:
        """The batch under the model's input names, floats cast to the declared type."""
        named = self._named(features)
        return {
            name: _cast(named[name], dtype)
            for name, dtype in zip(self.input_names, self.input_dtypes, strict=True)
        }

    def _named(self, features: Any) -> Mapping[str, Array]:
        if isinstance(features, dict):
            if set(features) != set(self.input_names):
                raise ValueError(
                    f"data: X has inputs {sorted(features)} but model {self.name!r} takes"
                    f" {list(self.input_names)}; give X as a dict with exactly those keys"
                )
            return features
        if len(self.input_names) != 1:
            raise ValueError(
                f"data: model {self.name!r} takes {len(self.input_names)} inputs"
                f" {list(self.input_names)}; give X as a dict of input name -> array"
            )
        return {self.input_names[0]: features}

    def scores(self, features: Any, rows: int) -> FloatArray:
        """The chosen output for one batch, checked to be class scores (batch, classes)."""
        outputs = self.model.run(self.feeds(features))
        if self.output_index >= len(outputs):
            raise ValueError(
                f"model {self.name!r} returned {len(outputs)} outputs, no {self.output_label}"
            )
        scores = np.asarray(outputs[self.output_index])
        if scores.ndim != 2 or scores.shape[0] != rows or scores.dtype.kind not in "biuf":
            raise ValueError(
                f"model {self.name!r}: {self.output_label} is {scores.dtype} {scores.shape},"
                f" not class scores of shape ({rows}, classes); pass output= the scores output"
            )
        return scores.astype(np.float64)


def _model_name(model: Any) -> str:
    return str(getattr(model, "name", None) or type(model).__name__)


def _output_choice(model: Any, output: str | int | None) -> tuple[int, str]:
    """(index, label) of the scores output: None is the first, else a name or an index."""
    names = [str(spec.name) for spec in getattr(model, "outputs", ())]
    if output is None:
        output = 0
    if isinstance(output, str):
        if output not in names:
            raise ValueError(
                f"output={output!r}: model {_model_name(model)!r} has outputs {names or 'unknown'}"
            )
        return names.index(output), f"output {output!r}"
    if isinstance(output, bool) or not isinstance(output, int) or output < 0:
        raise ValueError(f"output must be an output name or an index >= 0, got {output!r}")
    if names and output >= len(names):
        raise ValueError(f"output={output}: model {_model_name(model)!r} has outputs {names}")
    label = f"output {names[output]!r}" if names else f"output {output}"
    return output, label


def _spec_dtype(spec: Any) -> np.dtype[Any] | None:
    declared = getattr(spec, "dtype", None)
    if declared is None:
        return None
    try:
        dtype: np.dtype[Any] = np.dtype(declared)
        return dtype
    except TypeError:
        return None


def _cast(array: Array, dtype: np.dtype[Any] | None) -> Array:
    # Only float to float: an fp16 model fed the fp32 evaluation set is the common case;
    # anything else is left for the runtime to reject with its own clear message.
    if dtype is None or array.dtype == dtype or array.dtype.kind != "f" or dtype.kind != "f":
        return array
    return array.astype(dtype)


# --------------------------------------------------------------------------- evaluate


def evaluate(
    model: Classifier,
    data: Any,
    *,
    output: str | int | None = None,
    batch_size: int | None = None,
    top_k: int = 1,
    max_items: int | None = DEFAULT_MAX_ITEMS,
    scores: ScoresMode = "auto",
) -> Evaluation:
    """Run *model* over the labelled *data* and return its per-item predictions.

    *data* may be any of the forms :func:`assert_accuracy_drop` takes; batching is done
    here, at the model's deployed batch unless *batch_size* is given (see
    :class:`Batching`).  Raises ValueError with one line saying what is valid for bad data.
    """
    return _evaluate_all(
        [model],
        data,
        output=output,
        batch_size=batch_size,
        top_k=top_k,
        max_items=max_items,
        scores=scores,
    )[0]


def _evaluate_all(
    models: Sequence[Classifier],
    data: Any,
    *,
    output: str | int | None,
    batch_size: int | None,
    top_k: int,
    max_items: int | None = DEFAULT_MAX_ITEMS,
    scores: ScoresMode = "auto",
) -> list[Evaluation]:
    """Evaluate every model in one pass over the data.

    One pass makes the pairing hold by construction: a shuffling loader or a one-shot
    iterator still gives every model the same items in the same order.  The data is
    read in chunks that every model's run batch divides; each model runs its chunks in
    pieces of its own run batch.
    """
    if batch_size is not None:
        _check_positive_int("batch_size", batch_size)
    _check_positive_int("top_k", top_k)
    check_scores_mode(scores)
    runners = [_Runner.of(_ModelIO.of(model, output), batch_size) for model in models]
    labels: list[IntArray] = []
    collected_scores: list[list[FloatArray]] = [[] for _ in runners]
    if max_items is not None:
        _check_positive_int("max_items", max_items)
    chunk = batch_size or math.lcm(SPEED_BATCH, *(r.batch for r in runners))
    for features, batch_labels in _iter_batches(data, chunk, max_items):
        labels.append(batch_labels)
        for runner, collected in zip(runners, collected_scores, strict=True):
            collected.append(runner.scores(features, len(batch_labels)))
    if not labels or sum(len(batch) for batch in labels) == 0:
        raise ValueError(f"data is empty: it must hold at least one labelled item ({DATA_FORMS})")
    all_labels = np.concatenate(labels)
    return [
        _evaluation(r.io, all_labels, _concatenated(r.io, collected), top_k, r.batching(), scores)
        for r, collected in zip(runners, collected_scores, strict=True)
    ]


@dataclass(eq=False)
class _Runner:
    """One model's batching: at its deployed batch, or batched for speed once probed.

    The probe runs on the first chunk: its first items at the deployed batch against
    the same items in one batch.  Only if they agree within float tolerance does the
    model run at :data:`SPEED_BATCH`; otherwise at its deployed batch, and the reason
    is kept for the report.
    """

    io: _ModelIO
    batch: int
    given: bool
    run_batch: int | None = None
    reason: str = ""

    @classmethod
    def of(cls, io: _ModelIO, batch_size: int | None) -> _Runner:
        if batch_size is not None:
            return cls(io, batch_size, True, batch_size, f"batch_size={batch_size} given")
        return cls(io, _deployed_batch(io.model), False)

    def scores(self, features: Any, rows: int) -> FloatArray:
        if self.run_batch is None:
            self._probe(features, rows)
        return self._run(features, rows, self.run_batch or self.batch)

    def batching(self) -> Batching:
        run_batch = self.run_batch or self.batch
        speed = run_batch != self.batch and not self.given
        return Batching(self.io.name, self.batch, run_batch, speed, self.reason)

    def _run(self, features: Any, rows: int, size: int) -> FloatArray:
        if rows <= size:
            return self.io.scores(features, rows)
        arrays = _feature_arrays(features)
        parts = [
            self.io.scores(_take(arrays, slice(start, start + size)), min(size, rows - start))
            for start in range(0, rows, size)
        ]
        return np.concatenate(parts)

    def _probe(self, features: Any, rows: int) -> None:
        items = min(PROBE_ITEMS, rows)
        self.run_batch = self.batch
        if self.batch >= SPEED_BATCH or items <= self.batch:
            self.reason = "run at that batch"
            return
        probe = _take(_feature_arrays(features), slice(0, items))
        deployed = self._run(probe, items, self.batch)
        try:
            batched = self.io.scores(probe, items)
        except (ValueError, RuntimeError) as exc:
            self.reason = f"run at that batch: it cannot run batch {items} ({_first_line(exc)})"
            return
        self.reason = self._verdict(deployed, batched, items)
        if not self.reason.startswith("run at that batch"):
            self.run_batch = SPEED_BATCH

    def _verdict(self, deployed: FloatArray, batched: FloatArray, items: int) -> str:
        if np.allclose(batched, deployed, rtol=PROBE_RTOL, atol=PROBE_ATOL, equal_nan=True):
            return (
                f"run at batch {SPEED_BATCH} for speed: on {items} items its outputs at batch"
                f" {items} equal those at batch {self.batch} within rtol {PROBE_RTOL:g},"
                f" atol {PROBE_ATOL:g}"
            )
        with np.errstate(invalid="ignore"):
            worst = float(np.nanmax(np.abs(batched - deployed)))
        return (
            f"run at that batch: its outputs depend on the batch (on {items} items, batch"
            f" {items} differs from batch {self.batch} by up to {format_value(worst)}), as a"
            " dynamically quantized model's do, so batching would change the figure"
        )


def _deployed_batch(model: Any) -> int:
    """The model's deployed batch (DeployModel.batch, from the config), else 1."""
    batch = getattr(model, "batch", 1)
    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
        return 1
    return int(batch)


def _concatenated(io: _ModelIO, batches: Sequence[FloatArray]) -> FloatArray:
    classes = {batch.shape[1] for batch in batches}
    if len(classes) != 1:
        raise ValueError(f"model {io.name!r}: the number of classes changes between batches")
    return np.concatenate(batches)


def _evaluation(
    io: _ModelIO,
    labels: IntArray,
    scores: FloatArray,
    top_k: int,
    batching: Batching | None = None,
    mode: ScoresMode = "auto",
) -> Evaluation:
    classes = scores.shape[1]
    _check_label_range(labels, classes, io.name)
    if top_k > classes:
        raise ValueError(f"top_k={top_k} but model {io.name!r} scores only {classes} classes")
    valid = ~np.isnan(scores).any(axis=1)
    predictions = np.where(valid, np.argmax(scores, axis=1), -1).astype(np.int64)
    confidences, note = read_scores(scores, mode, io.name)
    return Evaluation(
        model_name=io.name,
        output=io.output_label,
        labels=labels,
        scores=scores,
        predictions=predictions,
        confidences=confidences,
        correct=topk_correct(scores, labels, top_k) & valid,
        top_k=top_k,
        batching=batching,
        scores_note=note,
    )


def _check_label_range(labels: IntArray, classes: int, model_name: str) -> None:
    outside = np.flatnonzero((labels < 0) | (labels >= classes))
    if outside.size:
        index = int(outside[0])
        raise ValueError(
            f"data: label {int(labels[index])} of item {index} is not a class of model"
            f" {model_name!r}, which scores classes 0 to {classes - 1}"
        )


def top_confidence(scores: FloatArray, mode: ScoresMode = "auto") -> FloatArray:
    """The top probability per row (see :func:`read_scores`)."""
    return read_scores(scores, mode)[0]


def read_scores(
    scores: FloatArray, mode: ScoresMode = "auto", model_name: str = "model"
) -> tuple[FloatArray, str]:
    """(the top probability per row, a sentence saying what was done to the scores).

    Never silent: a softmax applied to scores that already were probabilities squashes
    a 0.9 over 200 classes to about 0.013, so the report always says which reading was
    used.  ``probabilities`` takes the scores as they are, ``logits`` applies a
    softmax, ``auto`` decides on the whole set (one model's figures never mix the two
    readings) and says why.
    """
    check_scores_mode(mode)
    finite = scores[~np.isnan(scores).any(axis=1)]
    if mode == "logits":
        return _softmax_top(scores), f"{LOGITS_NOTE}, scores='logits'"
    if mode == "probabilities":
        _check_probabilities(finite, model_name)
        return _max_top(scores), "model outputs read as probabilities, scores='probabilities'"
    if _are_probabilities(finite):
        return _max_top(scores), f"{PROBABILITIES_NOTE}, scores='auto'"
    return _softmax_top(scores), f"{LOGITS_NOTE}, scores='auto': {_why_logits(finite)}"


def check_scores_mode(mode: Any) -> None:
    if mode not in SCORES_MODES:
        raise ValueError(
            f"scores must be one of {', '.join(map(repr, SCORES_MODES))}, got {mode!r}"
        )


def _max_top(scores: FloatArray) -> FloatArray:
    return np.asarray(np.max(scores, axis=1), dtype=np.float64)


def _softmax_top(scores: FloatArray) -> FloatArray:
    # Stable softmax: after subtracting the row maximum the top term is exp(0) = 1.
    shifted = scores - np.max(scores, axis=1, keepdims=True)
    with np.errstate(invalid="ignore"):
        return np.asarray(1.0 / np.sum(np.exp(shifted), axis=1), dtype=np.float64)


def _why_logits(finite: FloatArray) -> str:
    """Why auto read the scores as logits; the near-miss that hides probabilities too."""
    if finite.size == 0:
        return "no finite rows"
    if not bool(np.all((finite >= 0.0) & (finite <= 1.0))):
        return "some scores lie outside 0..1"
    sums = finite.sum(axis=1)
    return (
        f"the scores lie in 0..1 but rows sum to {format_value(float(sums.min()))}"
        f"..{format_value(float(sums.max()))}, not 1; if they are probabilities,"
        " pass scores='probabilities'"
    )


def _check_probabilities(finite: FloatArray, model_name: str) -> None:
    outside = np.flatnonzero(~np.all((finite >= 0.0) & (finite <= 1.0), axis=1))
    if outside.size:
        row = finite[int(outside[0])]
        raise ValueError(
            f"scores='probabilities' but model {model_name!r} outputs scores outside 0..1"
            f" (min {format_value(float(row.min()))}, max {format_value(float(row.max()))});"
            " pass scores='logits' or 'auto'"
        )


def _are_probabilities(scores: FloatArray) -> bool:
    if scores.size == 0:
        return False
    in_range = bool(np.all((scores >= 0.0) & (scores <= 1.0)))
    return in_range and bool(np.all(np.abs(scores.sum(axis=1) - 1.0) <= _PROBABILITY_TOLERANCE))


def topk_correct(scores: FloatArray, labels: IntArray, k: int) -> BoolArray:
    """Whether each label is among the k highest scores.

    Ties are broken as ``argmax`` breaks them (the lower class index ranks higher), so
    top-1 correctness is exactly ``argmax == label``.  NaN never ranks above a label.
    """
    if k == 1:
        return np.asarray(np.argmax(scores, axis=1) == labels, dtype=np.bool_)
    label_scores = scores[np.arange(len(labels)), labels][:, None]
    classes = np.arange(scores.shape[1])[None, :]
    above = (scores > label_scores) | ((scores == label_scores) & (classes < labels[:, None]))
    return np.asarray(np.count_nonzero(above, axis=1) < k, dtype=np.bool_)


# --------------------------------------------------------------------------- statistics


def _count_drops(
    baseline_correct: BoolArray, optimized_correct: BoolArray, relative: bool
) -> Callable[[IntArray], FloatArray]:
    """The drop on each resample, from counts of correct items (no Python loop)."""
    base = baseline_correct.astype(np.int64)
    optimized = optimized_correct.astype(np.int64)

    def drops(indices: IntArray) -> FloatArray:
        base_counts = base[indices].sum(axis=1)
        difference = base_counts - optimized[indices].sum(axis=1)
        if not relative:
            return np.asarray(difference / indices.shape[1], dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(base_counts > 0, difference / base_counts, np.nan)

    return drops


def _metric_drops(
    metric: MetricFn, baseline: Evaluation, optimized: Evaluation, relative: bool
) -> Callable[[IntArray], FloatArray]:
    """The drop on each resample for a user metric: called on each resampled set."""

    def drops(indices: IntArray) -> FloatArray:
        values = [
            _drop(
                _metric_value(metric, baseline.labels[rows], baseline.scores[rows]),
                _metric_value(metric, optimized.labels[rows], optimized.scores[rows]),
                relative=relative,
                strict=False,
            )
            for rows in indices
        ]
        return np.asarray(values, dtype=np.float64)

    return drops


def _metric_value(metric: MetricFn, labels: IntArray, scores: FloatArray) -> float:
    value = float(metric(labels, scores))
    if not math.isfinite(value):
        raise ValueError(f"metric {_metric_name(metric)!r} returned {value}; it must be finite")
    return value


def _drop(baseline: float, optimized: float, *, relative: bool, strict: bool = True) -> float:
    if not relative:
        return baseline - optimized
    if baseline > 0:
        return (baseline - optimized) / baseline
    if strict:
        raise ValueError(f"relative=True needs a baseline metric > 0, got {baseline}")
    return math.nan


def _resolution(
    bounds: tuple[float, float], max_drop: float, n: int, confidence: float, relative: bool
) -> tuple[bool, str]:
    """Whether the interval lies on one side of the budget, and a sentence why.

    Only an interval that straddles the budget leaves the verdict open: one wholly
    under it (or wholly over it) resolves the budget however wide it is.
    """
    low, high = bounds
    width = high - low
    interval = f"the {_percent(confidence)} CI of the drop is {format_value(width)} wide"
    if high <= max_drop:
        return True, f"{interval}, all of it within the budget {format_value(max_drop)}"
    if low > max_drop:
        return True, f"{interval}, all of it over the budget {format_value(max_drop)}"
    if max_drop == 0:
        return False, (
            f"a budget of 0 can only be resolved when the models agree on every item; {interval}"
        )
    kind = "relative " if relative else ""
    return False, (
        f"n={n} is too small to resolve a {kind}budget of {format_value(max_drop)}: {interval};"
        f" {_items_needed(n, width / max_drop)}"
    )


def _items_needed(n: int, ratio: float) -> str:
    """The width of the interval shrinks with sqrt(n): n * ratio**2 items would match it."""
    if ratio > _MAX_WIDTH_RATIO:
        return "no practical evaluation set would resolve a budget this small"
    return f"about {math.ceil(n * ratio * ratio)} items would be needed"


# --------------------------------------------------------------------------- compare


@dataclass(frozen=True)
class _Metric:
    name: str
    k: int | None
    function: MetricFn | None


def _parse_metric(metric: str | MetricFn, top_k: int | None) -> _Metric:
    """``top1`` (or ``accuracy``), ``top<k>``, or a callable; *top_k* sets k for top-k."""
    if callable(metric):
        if top_k is not None:
            raise ValueError("top_k applies to the top-k metrics, not to a metric callable")
        return _Metric(_metric_name(metric), None, metric)
    match = re.fullmatch(r"top(\d+)", metric) if isinstance(metric, str) else None
    k = 1 if metric == "accuracy" else int(match.group(1)) if match else None
    if k is None or k < 1:
        raise ValueError(
            f"metric must be 'top1', 'top<k>' (e.g. 'top5') or a callable"
            f" metric(labels, scores) -> float, got {metric!r}"
        )
    if top_k is not None:
        _check_positive_int("top_k", top_k)
        if k not in (1, top_k):
            raise ValueError(f"metric={metric!r} and top_k={top_k} disagree; give one of them")
        k = top_k
    return _Metric(f"top{k}", k, None)


def _metric_name(metric: Any) -> str:
    return str(getattr(metric, "__name__", None) or type(metric).__name__)


@dataclass(frozen=True)
class _Settings:
    """How a comparison is judged and summarised (validated once, in :func:`compare`)."""

    max_drop: float
    relative: bool
    confidence: float
    resamples: int
    seed: int | None
    require_resolution: bool
    max_failure_cases: int


@dataclass(frozen=True, eq=False)
class _Figures:
    """The point estimates, the bootstrap drops and the per-item correctness used."""

    baseline: float
    optimized: float
    drop: float
    resampled_drops: FloatArray
    baseline_correct: BoolArray
    optimized_correct: BoolArray
    discordant: tuple[int, int] | None


def compare(
    baseline: Evaluation,
    optimized: Evaluation,
    *,
    max_drop: float,
    metric: str | MetricFn = "top1",
    relative: bool = False,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int | None = 0,
    require_resolution: bool = False,
    max_failure_cases: int = 50,
) -> AccuracyComparison:
    """Judge the drop from *baseline* to *optimized*, evaluated on the same items.

    Passed when the point estimate of the drop is at most *max_drop* (and, with
    *require_resolution*, when the interval is no wider than *max_drop*).  The
    interval is a seeded paired bootstrap, so the same inputs give the same figures.
    """
    _check_statistics(confidence, resamples, max_failure_cases)
    _check_same_items(baseline, optimized)
    settings = _Settings(
        max_drop=_checked_budget(max_drop),
        relative=bool(relative),
        confidence=confidence,
        resamples=resamples,
        seed=seed,
        require_resolution=bool(require_resolution),
        max_failure_cases=max_failure_cases,
    )
    chosen = _parse_metric(metric, None)
    if chosen.function is not None:
        figures = _metric_figures(baseline, optimized, chosen.function, settings)
    else:
        figures = _count_figures(baseline, optimized, chosen.k or 1, settings)
    return _assemble(baseline, optimized, chosen.name, figures, settings)


def _count_figures(
    baseline: Evaluation, optimized: Evaluation, k: int, settings: _Settings
) -> _Figures:
    """Top-k metrics: per-item correctness gives McNemar and a drop exact from counts."""
    base_ok, opt_ok = _correct_at(baseline, k), _correct_at(optimized, k)
    n = baseline.n
    base_count, opt_count = int(np.count_nonzero(base_ok)), int(np.count_nonzero(opt_ok))
    # From the counts, so that 452/500 against 447/500 is a drop of exactly 5/500 = 0.01
    # and meets a budget of 0.01 (0.904 - 0.894 in floating point is above it).
    if settings.relative:
        drop = _drop(float(base_count), float(opt_count), relative=True)
    else:
        drop = (base_count - opt_count) / n
    drops = paired_bootstrap(
        _count_drops(base_ok, opt_ok, settings.relative),
        n,
        resamples=settings.resamples,
        seed=settings.seed,
    )
    discordant = int(np.count_nonzero(base_ok & ~opt_ok)), int(np.count_nonzero(~base_ok & opt_ok))
    return _Figures(base_count / n, opt_count / n, drop, drops, base_ok, opt_ok, discordant)


def _metric_figures(
    baseline: Evaluation, optimized: Evaluation, metric: MetricFn, settings: _Settings
) -> _Figures:
    """A user metric: no per-item correctness, so no McNemar; failure cases by top-1."""
    base_value = _metric_value(metric, baseline.labels, baseline.scores)
    opt_value = _metric_value(metric, optimized.labels, optimized.scores)
    drops = paired_bootstrap(
        _metric_drops(metric, baseline, optimized, settings.relative),
        baseline.n,
        resamples=settings.resamples,
        seed=settings.seed,
    )
    return _Figures(
        baseline=base_value,
        optimized=opt_value,
        drop=_drop(base_value, opt_value, relative=settings.relative),
        resampled_drops=drops,
        baseline_correct=_correct_at(baseline, 1),
        optimized_correct=_correct_at(optimized, 1),
        discordant=None,
    )


def _correct_at(evaluation: Evaluation, k: int) -> BoolArray:
    if evaluation.top_k == k:
        return evaluation.correct
    valid = evaluation.predictions >= 0
    return topk_correct(evaluation.scores, evaluation.labels, k) & valid


def _assemble(
    baseline: Evaluation,
    optimized: Evaluation,
    metric: str,
    figures: _Figures,
    settings: _Settings,
) -> AccuracyComparison:
    ci_low, ci_high = percentile_interval(figures.resampled_drops, settings.confidence)
    resolved, note = _resolution(
        (ci_low, ci_high), settings.max_drop, baseline.n, settings.confidence, settings.relative
    )
    cases, total = failure_cases(
        baseline,
        optimized,
        figures.baseline_correct,
        figures.optimized_correct,
        limit=settings.max_failure_cases,
    )
    return AccuracyComparison(
        baseline_name=baseline.model_name,
        optimized_name=optimized.model_name,
        metric=metric,
        baseline=float(figures.baseline),
        optimized=float(figures.optimized),
        drop=float(figures.drop),
        relative=settings.relative,
        max_drop=settings.max_drop,
        n=baseline.n,
        agreement=float(np.mean(baseline.predictions == optimized.predictions)),
        ci_low=ci_low,
        ci_high=ci_high,
        confidence=settings.confidence,
        mcnemar_p=None if figures.discordant is None else mcnemar_exact_p(*figures.discordant),
        discordant=figures.discordant,
        resolved=resolved,
        resolution_note=note,
        passed=figures.drop <= settings.max_drop and (resolved or not settings.require_resolution),
        failure_cases=cases,
        failure_cases_total=total,
        resamples=settings.resamples,
        batching=tuple(e.batching for e in (baseline, optimized) if e.batching is not None),
        scores_note=combined_note(
            (baseline.model_name, baseline.scores_note),
            (optimized.model_name, optimized.scores_note),
        ),
    )


def combined_note(*notes: tuple[str, str]) -> str:
    """One note when every model's scores were read alike, else one per model."""
    texts = {note for _, note in notes if note}
    if len(texts) <= 1:
        return next(iter(texts), "")
    return "; ".join(f"{name}: {note}" for name, note in notes if note)


def _check_same_items(baseline: Evaluation, optimized: Evaluation) -> None:
    if baseline.n != optimized.n or not np.array_equal(baseline.labels, optimized.labels):
        raise ValueError(
            f"the evaluations of {baseline.model_name!r} ({baseline.n} items) and"
            f" {optimized.model_name!r} ({optimized.n} items) are not on the same labelled"
            " items in the same order; evaluate both on the same data"
        )


# --------------------------------------------------------------------------- failure cases


def failure_cases(
    baseline: Evaluation,
    optimized: Evaluation,
    baseline_correct: BoolArray,
    optimized_correct: BoolArray,
    *,
    limit: int = 50,
) -> tuple[tuple[FailureCase, ...], int]:
    """(the first *limit* cases, how many there are in all).

    Order: regressions first, then the items both models get wrong, then the items the
    optimized model fixed; within each, the most confident optimized prediction first
    (a confident mistake is the one that hurts), then by index.
    """
    codes = _kind_codes(baseline, optimized, baseline_correct, optimized_correct)
    indices = np.flatnonzero(codes >= 0)
    confidence = np.nan_to_num(optimized.confidences[indices], nan=-1.0)
    rank = _KIND_RANK[codes[indices]]
    ordered = indices[np.lexsort((indices, -confidence, rank))][: max(0, limit)]
    cases = tuple(_case(int(i), _KINDS[codes[i]], baseline, optimized) for i in ordered)
    return cases, int(indices.size)


def _kind_codes(
    baseline: Evaluation,
    optimized: Evaluation,
    baseline_correct: BoolArray,
    optimized_correct: BoolArray,
) -> npt.NDArray[np.int8]:
    """Each item's index into ``_KINDS``, or -1 when both models are right."""
    both_wrong = ~baseline_correct & ~optimized_correct
    disagree = baseline.predictions != optimized.predictions
    codes = np.full(baseline.n, -1, dtype=np.int8)
    codes[baseline_correct & ~optimized_correct] = 0
    codes[both_wrong & disagree] = 1
    codes[both_wrong & ~disagree] = 2
    codes[~baseline_correct & optimized_correct] = 3
    return codes


def _case(
    index: int, kind: FailureKind, baseline: Evaluation, optimized: Evaluation
) -> FailureCase:
    return FailureCase(
        index=index,
        label=int(baseline.labels[index]),
        baseline_prediction=int(baseline.predictions[index]),
        baseline_confidence=float(baseline.confidences[index]),
        optimized_prediction=int(optimized.predictions[index]),
        optimized_confidence=float(optimized.confidences[index]),
        kind=kind,
    )


# --------------------------------------------------------------------------- assertion


def assert_accuracy_drop(
    baseline: Classifier,
    optimized: Classifier,
    data: Any,
    max_drop: float | None = None,
    *,
    metric: str | MetricFn = "top1",
    top_k: int | None = None,
    relative: bool = False,
    output: str | int | None = None,
    batch_size: int | None = None,
    max_items: int | None = DEFAULT_MAX_ITEMS,
    confidence: float = 0.95,
    require_resolution: bool | None = None,
    max_failure_cases: int = 50,
    name: str = "accuracy_drop_ok",
    seed: int | None = 0,
    item_metric: Callable[[Any, Any], Any] | None = None,
    scores: ScoresMode = "auto",
    labels: Sequence[str] | None = None,
    formatter: Callable[[Any], Any] | None = None,
) -> AccuracyComparison:
    """Fail unless *optimized* loses at most *max_drop* of *baseline*'s accuracy on *data*.

    Both models see the same labelled items (one pass over *data*, in any form of
    :data:`DATA_FORMS`); the drop, its paired confidence interval, the agreement, McNemar's
    test and the failure cases are recorded as the ``accuracy_drop_ok`` check and
    returned.  *max_drop* defaults to ``budgets.accuracy_drop`` of the configuration.
    *require_resolution* (default False) also fails when the set is too small to
    resolve the budget.  Each model is evaluated at the batch size it is deployed with
    (its config's ``batch``, default 1; batched for speed only where a probe shows its
    outputs do not depend on the batch); *batch_size* overrides that for both.  An
    iterable *data* may yield at most *max_items* items (None: no cap).  Raises
    AssertionError with the figures when not passed.

    *item_metric* ``fn(label, output) -> bool | float in [0, 1]`` scores each item for
    any task (see the item_metric section below); *scores* says how class scores are read
    (``auto``, ``probabilities``, ``logits``); *labels* (class names) or *formatter*
    (``fn(value) -> str``) set how labels and predictions read in failure_cases.md.
    """
    budget = _checked_budget(_default_max_drop() if max_drop is None else max_drop)
    _check_statistics(confidence, 1, max_failure_cases)
    namer = _namer(labels, formatter)
    decoders = item_metric is not None
    _check_arguments(baseline, optimized, relative, require_resolution, name, seed, decoders)
    if item_metric is not None:
        _check_item_arguments(metric, top_k, scores, labels)
        settings = _Settings(
            budget, relative, confidence, 2000, seed, bool(require_resolution), max_failure_cases
        )
        comparison = assert_item_metric_drop(
            (baseline, optimized),
            data,
            item_metric,
            settings,
            output=output,
            batch_size=batch_size,
            max_items=max_items,
            formatter=formatter,
        )
        return _finish(comparison, name)
    chosen = _parse_metric(metric, top_k)
    check_scores_mode(scores)
    base_eval, opt_eval = _evaluate_all(
        [baseline, optimized],
        data,
        output=output,
        batch_size=batch_size,
        top_k=chosen.k or 1,
        max_items=max_items,
        scores=scores,
    )
    if labels is not None:
        _check_label_names(labels, base_eval.scores.shape[1])
    comparison = compare(
        base_eval,
        opt_eval,
        max_drop=budget,
        metric=chosen.function or chosen.name,
        relative=relative,
        confidence=confidence,
        seed=seed,
        require_resolution=bool(require_resolution),
        max_failure_cases=max_failure_cases,
    )
    if namer is not None:
        comparison = with_names(comparison, namer)
    return _finish(comparison, name)


def _finish(comparison: AccuracyComparison, name: str) -> AccuracyComparison:
    _record(comparison, name)
    if not comparison.passed:
        raise AssertionError(comparison.message())
    return comparison


def _namer(
    labels: Sequence[str] | None, formatter: Callable[[Any], Any] | None
) -> Callable[[Any], str] | None:
    """How a class id (or a label, or an output) reads in failure_cases.md."""
    if labels is not None and formatter is not None:
        raise ValueError("give labels= (class names) or formatter= (a function), not both")
    if formatter is not None:
        if not callable(formatter):
            raise ValueError(f"formatter must be a function value -> str, got {formatter!r:.40}")
        return lambda value: format_with(formatter, value)
    if labels is None:
        return None
    if isinstance(labels, (str, bytes)) or not isinstance(labels, Sequence):
        raise ValueError(f"labels must be a list of class names, got {type(labels).__name__}")
    names = [str(name) for name in labels]
    return lambda value: names[int(value)]


def format_with(formatter: Callable[[Any], Any], value: Any) -> str:
    """The formatter's text for *value*; its failure is one line naming the value."""
    try:
        return str(formatter(value))
    except Exception as exc:  # the user's code: any failure is reported, not a crash
        raise ValueError(
            f"formatter {_metric_name(formatter)!r} failed on {value!r:.60}: {_first_line(exc)}"
        ) from None


def _check_label_names(labels: Sequence[str], classes: int) -> None:
    if len(labels) < classes:
        raise ValueError(
            f"labels= has {len(labels)} class names but the model scores {classes} classes;"
            " give one name per class, in class-id order"
        )


def _check_item_arguments(metric: Any, top_k: Any, scores: Any, labels: Any) -> None:
    """The options that only apply to class scores, refused beside an item_metric."""
    for given, option in (
        (metric != "top1", "metric="),
        (top_k is not None, "top_k="),
        (scores != "auto", "scores="),
        (labels is not None, "labels="),
    ):
        if given:
            raise ValueError(
                f"item_metric= scores each item itself; {option} applies to class scores only"
                " (use formatter= to show outputs in failure_cases.md)"
            )


def with_names(comparison: AccuracyComparison, namer: Callable[[Any], str]) -> AccuracyComparison:
    """The comparison with its failure cases' labels and predictions as display text."""
    cases = tuple(
        replace(
            case,
            label_text=namer(case.label),
            baseline_output=_named(namer, case.baseline_prediction),
            optimized_output=_named(namer, case.optimized_prediction),
        )
        for case in comparison.failure_cases
    )
    return replace(comparison, failure_cases=cases)


def _named(namer: Callable[[Any], str], prediction: int | None) -> str:
    return "NaN output" if prediction is None or prediction < 0 else namer(prediction)


def _record(comparison: AccuracyComparison, name: str) -> None:
    checks.record_check(
        name,
        metric=ACCURACY_DROP,
        value=comparison.drop,
        unit="",
        budget=comparison.max_drop,
        passed=comparison.passed,
        provenance="measured",
        details=comparison.message(),
        display=comparison.display(),
        extra=comparison.as_extra(),
    )


def _default_max_drop() -> float:
    """``budgets.accuracy_drop`` of the running test's configuration."""
    budget = checks.config_budget("accuracy_drop")
    if budget is None:
        raise ValueError(
            "assert_accuracy_drop: no max_drop given and no budgets.accuracy_drop in the"
            " deploycheck configuration"
        )
    return budget


# --------------------------------------------------------------------------- validation


def _check_arguments(
    baseline: Any,
    optimized: Any,
    relative: Any,
    require_resolution: Any,
    name: Any,
    seed: Any,
    decoders: bool = False,
) -> None:
    """The arguments that would otherwise fail far inside, or be silently taken as true.

    With *decoders* (an item_metric) a model may also be a decoding callable.
    """
    for role, model in (("baseline", baseline), ("optimized", optimized)):
        if decoders and callable(model):
            continue
        if not callable(getattr(model, "run", None)) or not hasattr(model, "inputs"):
            raise ValueError(
                f"{role} must be a model (e.g. deploy_models[{role!r}]) with inputs and"
                f" run(feeds), got {type(model).__name__} {model!r:.40}"
            )
    if not isinstance(relative, bool):
        raise ValueError(f"relative must be True or False, got {relative!r}")
    if require_resolution is not None and not isinstance(require_resolution, bool):
        raise ValueError(
            f"require_resolution must be True, False or None, got {require_resolution!r}"
        )
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string (the check's name), got {name!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise ValueError(f"seed must be a whole number or None, got {seed!r}")


def _checked_budget(max_drop: Any) -> float:
    if isinstance(max_drop, bool) or not isinstance(max_drop, (int, float, np.number)):
        raise ValueError(f"max_drop must be a number >= 0, got {max_drop!r}")
    value = float(max_drop)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"max_drop must be a finite number >= 0, got {max_drop!r}")
    return value


def _check_statistics(confidence: float, resamples: int, max_failure_cases: int) -> None:
    if not isinstance(confidence, (int, float, np.floating)) or not 0.5 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0.5, 1), got {confidence!r}")
    _check_positive_int("resamples", resamples)
    if isinstance(max_failure_cases, bool) or not isinstance(max_failure_cases, int):
        raise ValueError(f"max_failure_cases must be an integer >= 0, got {max_failure_cases!r}")
    if max_failure_cases < 0:
        raise ValueError(f"max_failure_cases must be an integer >= 0, got {max_failure_cases!r}")


def _check_positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


def _percent(confidence: float) -> str:
    return f"{format_value(confidence * 100)}%"


def drop_text(value: float) -> str:
    """A drop as the summary shows it: a drop of exactly 0 reads ``0.000``, not ``0``."""
    return "0.000" if value == 0 else format_value(value)


def _json_float(value: float) -> float | None:
    return value if math.isfinite(value) else None


# --------------------------------------------------------------------------- item_metric

# Accuracy for any task: a per-item score ``fn(label, output)`` instead of top-1.
#
# Why per item: the paired statistics of :mod:`.accuracy` only need each model's score
# on each item.  A text recogniser (exact string match), a detector (IoU-matched boxes)
# or a regressor (within tolerance) gives a bool or a fraction per item, and the drop,
# its paired bootstrap interval, the agreement and the failure cases follow as for
# top-1.  With bools, McNemar's exact test judges the discordant items; with fractions
# the exact sign test on the items whose scores differ replaces it (McNemar's test *is*
# the sign test on the discordant pairs of a 0/1 score).
#
# The decoding protocol: a model is a DeployModel (its ``output`` rows are the per-item
# outputs) or any callable ``decode(X_batch) -> sequence`` with one decoded output per
# item.  It is called with batches stacked from the data, at ``batch_size`` if given,
# else the model's ``batch`` (1 for a plain callable); the last batch may be smaller.
# No speed probe: decoded outputs cannot be compared within float tolerance.

ItemMetric = Callable[[Any, Any], Any]
# Failure-case sort rank: regressions, both wrong (either way), fixed.
_ITEM_RANK = {"regression": 0, "both wrong, disagree": 1, "both wrong": 1, "fixed": 2}
_SHOWN_CHARS = 60


@dataclass(frozen=True, eq=False)
class ItemEvaluation:
    """One model's decoded outputs and per-item scores, in the data's order."""

    model_name: str
    outputs: list[Any]
    scores: FloatArray
    batching: Batching


def assert_item_metric_drop(
    models: tuple[Any, Any],
    data: Any,
    item_metric: ItemMetric,
    settings: _Settings,
    *,
    output: str | int | None,
    batch_size: int | None,
    max_items: int | None,
    formatter: Callable[[Any], Any] | None,
) -> AccuracyComparison:
    """The comparison of :func:`.accuracy.assert_accuracy_drop` with ``item_metric=``."""
    if not callable(item_metric):
        raise ValueError(
            f"item_metric must be a function (label, output) -> float, got {item_metric!r:.40}"
        )
    if batch_size is not None:
        _check_positive_int("batch_size", batch_size)
    labels, per_model = _evaluate_items(models, data, output, batch_size, max_items)
    evaluations = [_scored(item_metric, labels, name_outputs) for name_outputs in per_model]
    return compare_items(
        evaluations[0],
        evaluations[1],
        labels,
        metric=_metric_name(item_metric),
        settings=settings,
        shown=(lambda value: format_with(formatter, value)) if formatter else shown_text,
    )


# --------------------------------------------------------------------------- item_metric: running


@dataclass(frozen=True)
class _Caller:
    """How one model is called on a batch: DeployModel.run or a decoding callable."""

    name: str
    batch: int
    reason: str
    io: _ModelIO | None
    function: Callable[[Any], Any] | None

    @classmethod
    def of(cls, model: Any, output: str | int | None, batch_size: int | None) -> _Caller:
        batch = batch_size or _deployed_batch(model)
        reason = f"batch_size={batch_size} given" if batch_size else "run at that batch"
        if callable(getattr(model, "run", None)) and hasattr(model, "inputs"):
            io = _ModelIO.of(model, output)
            return cls(io.name, batch, reason, io, None)
        if callable(model):
            name = str(getattr(model, "name", None) or _metric_name(model))
            return cls(name, batch, reason, None, model)
        raise ValueError(
            f"with item_metric= a model is a DeployModel or a callable decode(X_batch) ->"
            f" one output per item, got {type(model).__name__} {model!r:.40}"
        )

    def outputs(self, features: Any, rows: int) -> list[Any]:
        if self.io is not None:
            raw = self.io.model.run(self.io.feeds(features))[self.io.output_index]
        else:
            assert self.function is not None
            raw = self.function(features)
        items = list(raw)
        if len(items) != rows:
            raise ValueError(
                f"model {self.name!r} returned {len(items)} outputs for a batch of {rows}"
                " items; a decoding callable returns one output per item of X_batch"
            )
        return items


def _evaluate_items(
    models: tuple[Any, Any],
    data: Any,
    output: str | int | None,
    batch_size: int | None,
    max_items: int | None,
) -> tuple[list[Any], list[tuple[_Caller, list[Any]]]]:
    """One pass over the data: the labels, and each model's outputs item by item."""
    callers = [_Caller.of(model, output, batch_size) for model in models]
    labels: list[Any] = []
    outputs: list[list[Any]] = [[] for _ in callers]
    for features, batch_labels in _item_batches(
        data, math.lcm(*(c.batch for c in callers)), max_items
    ):
        labels.extend(batch_labels)
        for caller, collected in zip(callers, outputs, strict=True):
            collected.extend(_run_items(caller, features, len(batch_labels)))
    if not labels:
        raise ValueError(f"data is empty: it must hold at least one labelled item ({DATA_FORMS})")
    return labels, list(zip(callers, outputs, strict=True))


def _run_items(caller: _Caller, features: Any, rows: int) -> list[Any]:
    arrays = _feature_arrays(features)
    items: list[Any] = []
    for start in range(0, rows, caller.batch):
        size = min(caller.batch, rows - start)
        items.extend(caller.outputs(_take(arrays, slice(start, start + size)), size))
    return items


def _item_batches(data: Any, chunk: int, max_items: int | None) -> Iterator[tuple[Any, list[Any]]]:
    """``(X_batch, labels)`` from ``(X, labels)`` or an iterable of ``(input, label)``."""
    if callable(data) and not isinstance(data, (np.ndarray, Mapping, Sequence)):
        data = data()
    if isinstance(data, tuple) and len(data) == 2 and isinstance(data[0], (np.ndarray, Mapping)):
        features, labels = _feature_arrays(data[0]), list(data[1])
        first = next(iter(features.values())) if isinstance(features, dict) else features
        if len(first) != len(labels):
            raise ValueError(f"data: X has {len(first)} items but there are {len(labels)} labels")
        for start in range(0, len(labels), chunk):
            yield _take(features, slice(start, start + chunk)), labels[start : start + chunk]
        return
    yield from _stacked_pairs(data, chunk, max_items)


def _stacked_pairs(data: Any, chunk: int, max_items: int | None) -> Iterator[tuple[Any, list[Any]]]:
    if isinstance(data, (str, bytes, Mapping)) or not hasattr(data, "__iter__"):
        raise ValueError(
            "with item_metric= data must be (X, labels) (X an array or a dict of arrays,"
            " labels any per-item values) or an iterable of (input, label) pairs;"
            f" got {type(data).__name__}"
        )
    pending: list[tuple[Any, Any]] = []
    for position, item in enumerate(data):
        if max_items is not None and position >= max_items:
            raise ValueError(
                f"data yielded more than max_items={max_items:,} items (an endless"
                " iterator?); pass a finite data set, or a larger max_items= (None: no cap)"
            )
        pending.append(_pair(item, position))
        if len(pending) == chunk:
            yield _stack(pending)
            pending = []
    if pending:
        yield _stack(pending)


def _stack(pending: list[tuple[Any, Any]]) -> tuple[Any, list[Any]]:
    inputs = [features for features, _ in pending]
    if isinstance(inputs[0], Mapping):
        return {k: np.stack([np.asarray(f[k]) for f in inputs]) for k in inputs[0]}, [
            label for _, label in pending
        ]
    return np.stack([np.asarray(f) for f in inputs]), [label for _, label in pending]


# --------------------------------------------------------------------------- item_metric: scoring


def _scored(
    item_metric: ItemMetric, labels: list[Any], caller_outputs: tuple[_Caller, list[Any]]
) -> ItemEvaluation:
    caller, outputs = caller_outputs
    scores = np.array(
        [
            item_score(item_metric, label, out, i, caller.name)
            for i, (label, out) in enumerate(zip(labels, outputs, strict=True))
        ],
        dtype=np.float64,
    )
    batching = Batching(caller.name, caller.batch, caller.batch, False, caller.reason)
    return ItemEvaluation(caller.name, outputs, scores, batching)


def item_score(item_metric: ItemMetric, label: Any, output: Any, index: int, model: str) -> float:
    """The metric's score of one item: a bool, or a finite number in [0, 1]."""
    value = item_metric(label, output)
    if isinstance(value, (bool, np.bool_)):
        return float(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        number = float(value)
        if math.isfinite(number) and 0.0 <= number <= 1.0:
            return number
    raise ValueError(
        f"item_metric {_metric_name(item_metric)!r} returned {value!r:.60} for item {index}"
        f" (model {model!r}); it must return a bool or a number in [0, 1]"
    )


def shown_text(value: Any) -> str:
    """An output or label as a short line: strings as they are, arrays compactly."""
    if isinstance(value, np.ndarray):
        text = np.array2string(value, precision=4, threshold=8, separator=", ")
    elif isinstance(value, (float, np.floating)):
        text = f"{float(value):.4g}"
    else:
        text = str(value)
    text = " ".join(text.split())
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"


# --------------------------------------------------------------------------- item_metric: compare


def compare_items(
    baseline: ItemEvaluation,
    optimized: ItemEvaluation,
    labels: list[Any],
    *,
    metric: str,
    settings: _Settings,
    shown: Callable[[Any], str] = shown_text,
) -> AccuracyComparison:
    """The paired comparison of two models' per-item scores on the same items."""
    confidence, relative, max_drop = settings.confidence, settings.relative, settings.max_drop
    base, opt = baseline.scores, optimized.scores
    n = len(labels)
    base_mean, opt_mean = float(base.mean()), float(opt.mean())
    drop = _drop(base_mean, opt_mean, relative=relative)
    resampled = paired_bootstrap(
        _item_drops(base, opt, relative), n, resamples=settings.resamples, seed=settings.seed
    )
    ci_low, ci_high = percentile_interval(resampled, confidence)
    resolved, note = _resolution((ci_low, ci_high), max_drop, n, confidence, relative)
    binary = bool(np.all((base == 0) | (base == 1)) and np.all((opt == 0) | (opt == 1)))
    worse, better = int(np.count_nonzero(base > opt)), int(np.count_nonzero(base < opt))
    cases, total = _item_failure_cases(
        baseline, optimized, labels, settings.max_failure_cases, shown
    )
    return AccuracyComparison(
        baseline_name=baseline.model_name,
        optimized_name=optimized.model_name,
        metric=metric,
        baseline=base_mean,
        optimized=opt_mean,
        drop=float(drop),
        relative=relative,
        max_drop=max_drop,
        n=n,
        agreement=float(np.mean(base == opt)),
        ci_low=ci_low,
        ci_high=ci_high,
        confidence=confidence,
        mcnemar_p=mcnemar_exact_p(worse, better),
        discordant=(worse, better),
        resolved=resolved,
        resolution_note=note,
        passed=drop <= max_drop and (resolved or not settings.require_resolution),
        failure_cases=cases,
        failure_cases_total=total,
        resamples=settings.resamples,
        scores_note=f"each item scored by item_metric {metric!r} (no softmax, no argmax)",
        paired_test="McNemar exact test"
        if binary
        else "exact sign test on the items whose scores differ",
        agreement_basis="same per-item score",
        batching=(baseline.batching, optimized.batching),
    )


def _item_drops(
    base: FloatArray, opt: FloatArray, relative: bool
) -> Callable[[IntArray], FloatArray]:
    """The drop on each resample from the per-item scores (paired: the same indices)."""

    def drops(indices: IntArray) -> FloatArray:
        base_sums = base[indices].sum(axis=1)
        difference = base_sums - opt[indices].sum(axis=1)
        if not relative:
            return np.asarray(difference / indices.shape[1], dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(base_sums > 0, difference / base_sums, np.nan)

    return drops


def _item_failure_cases(
    baseline: ItemEvaluation,
    optimized: ItemEvaluation,
    labels: list[Any],
    limit: int,
    shown: Callable[[Any], str],
) -> tuple[tuple[FailureCase, ...], int]:
    """Items not fully right for both: regressions first, lowest optimized score first."""
    base, opt = baseline.scores, optimized.scores
    indices = [i for i in range(len(labels)) if base[i] < 1 or opt[i] < 1]
    kinds = {
        i: _item_kind(base[i], opt[i], baseline.outputs[i], optimized.outputs[i]) for i in indices
    }
    ordered = sorted(indices, key=lambda i: (_ITEM_RANK[kinds[i]], opt[i] - base[i], opt[i], i))
    cases = tuple(
        FailureCase(
            index=i,
            label=-1,
            baseline_prediction=-1,
            baseline_confidence=math.nan,
            optimized_prediction=-1,
            optimized_confidence=math.nan,
            kind=kinds[i],
            label_text=shown(labels[i]),
            baseline_output=shown(baseline.outputs[i]),
            optimized_output=shown(optimized.outputs[i]),
            baseline_score=float(base[i]),
            optimized_score=float(opt[i]),
        )
        for i in ordered[: max(0, limit)]
    )
    return cases, len(indices)


def _item_kind(base: float, opt: float, base_out: Any, opt_out: Any) -> FailureKind:
    if opt < base:
        return "regression"
    if opt > base:
        return "fixed"
    return "both wrong" if _same_output(base_out, opt_out) else "both wrong, disagree"


def _same_output(a: Any, b: Any) -> bool:
    try:
        return bool(np.array_equal(np.asarray(a, dtype=object), np.asarray(b, dtype=object)))
    except (TypeError, ValueError):
        return a is b
