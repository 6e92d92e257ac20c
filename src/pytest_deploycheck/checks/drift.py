"""Drift: does a production sample still look like the data the model was accepted on?

:func:`assert_no_drift` compares a *reference* sample (the evaluation or calibration
set) with a *current* one (a production sample the team exports), feature by feature,
and fails when any feature's distribution differs beyond sampling noise.  It needs no
labels, so it is the early warning that comes before an accuracy drop can be measured.

What is a feature:

* a 1-D input is one feature; each column of a 2-D input is one (``x[3]``);
* an image or other tensor (3-D or more) gives two features per channel (axis 1 by
  default), each item's mean and standard deviation over the channel's other axes
  (``image ch0 mean``, ``image ch0 std``): exposure, contrast and sensor changes show
  there, while per-pixel tests would be many weak, strongly correlated tests;
* with ``model=`` and ``on="outputs"`` (or ``"both"``), the model's output on both
  samples: the predicted class (its shares) and the top score, as the model returns
  it (never softmaxed), or with ``output_view="features"`` a named output or
  embedding treated like an input tensor.  The output distribution is the
  label-free signal: a shift in predicted-class shares is what users will notice.

Tests (all in :mod:`..measure.stats`): a continuous feature gets the two-sample
Kolmogorov-Smirnov test (exact p-value up to 10 million m * n, else the limiting
distribution), a categorical one (bool, strings, integers with at most
``max_categories`` distinct values) Pearson's chi-square on the category counts;
PSI is reported beside both and never judged.  Holm's step-down correction is
applied over all features: like Bonferroni it bounds the chance of *any* false alarm
at ``alpha`` whatever the dependence between features (the mean and std of one
channel are strongly dependent; Benjamini-Hochberg bounds only the share of false
alarms, too weak for a gate), and it rejects everything Bonferroni rejects and more.

The report says how small a shift the sample could have caught: the critical KS
distance D for the two sample sizes at ``alpha`` (and at ``alpha / k``, which the
most drifted of k features must clear under Holm), and the mean shift of a normal
feature, in standard deviations, that distance corresponds to.

numpy is imported at the top: the package exports :func:`assert_no_drift` lazily.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from ..config.units import format_value
from ..measure.stats import (
    PSI_BINS,
    chi_square_homogeneity,
    holm,
    ks_critical_d,
    ks_two_sample,
    normal_shift_for_ks,
    psi,
    psi_continuous,
)
from . import accuracy
from . import record as checks
from .metrics import DRIFT

Array = npt.NDArray[Any]
On = Literal["inputs", "outputs", "both"]
Method = Literal["auto", "ks", "chi2"]
OutputView = Literal["scores", "features"]
Kind = Literal["continuous", "categorical"]

UNLABELLED_FORMS = (
    "an array (items on the first axis), a dict input name -> array, (X, y) arrays"
    " (y is ignored), an iterable of input batches or of (input, label) pairs, or a"
    " callable returning one of these"
)
DEFAULT_MAX_CATEGORIES = 20
DEFAULT_TOP = 10
ARRAY_NAME = "x"  # a bare array's features are x, x[0], x ch0 mean
_BATCH = 256  # items read at a time from an iterable


def _hide_under_own_errors(excinfo: Any) -> bool:
    """Only a bug keeps this module's frames; a ValueError or the failure is one line."""
    return excinfo is not None and bool(excinfo.errisinstance((ValueError, AssertionError)))


__tracebackhide__ = _hide_under_own_errors


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's two-sample test.

    ``statistic`` is KS's D or the chi-square statistic; ``effect`` is on one scale for
    both (D, or Cramér's V), in [0, 1]; ``p_adjusted`` is Holm's over all features.
    """

    name: str
    kind: Kind
    test: Literal["ks", "chi2"]
    statistic: float
    p_value: float
    p_adjusted: float
    effect: float
    psi: float
    drifted: bool
    n_reference: int
    n_current: int
    detail: str = ""  # the KS p method or chi-square df
    reason: str = ""  # constants, dropped values, a rough approximation

    def describe(self) -> str:
        """``image ch0 mean (KS D=0.31, Holm p=1.2e-09, PSI 0.42)``."""
        test = "KS D" if self.test == "ks" else "chi2"
        text = (
            f"{self.name} ({test}={format_value(self.statistic)}, Holm p="
            f"{format_value(self.p_adjusted)}, PSI {format_value(self.psi)}"
        )
        return f"{text}; {self.reason})" if self.reason else f"{text})"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "test": self.test,
            "statistic": self.statistic,
            "p_value": self.p_value,
            "p_adjusted": self.p_adjusted,
            "effect": self.effect,
            "psi": self.psi,
            "drifted": self.drifted,
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "detail": self.detail,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class DriftResult:
    """All features' tests, most drifted first, and what the sample sizes could detect."""

    features: tuple[FeatureDrift, ...]
    n_reference: int
    n_current: int
    alpha: float
    on: On
    critical_d: float  # KS at alpha
    critical_d_first: float  # KS at alpha / k: Holm's first step
    top: int = DEFAULT_TOP
    notes: tuple[str, ...] = ()

    @property
    def drifted(self) -> tuple[FeatureDrift, ...]:
        return tuple(f for f in self.features if f.drifted)

    @property
    def passed(self) -> bool:
        return not self.drifted

    def detectable(self) -> str:
        """What the sample could have caught, in words."""
        shift = normal_shift_for_ks(self.critical_d)
        text = (
            f"detectable: a KS gap D >= {format_value(self.critical_d)} at alpha"
            f" {format_value(self.alpha)} (about a {format_value(shift)} sd mean shift of a"
            " normal feature)"
        )
        if len(self.features) > 1:
            text += f", D >= {format_value(self.critical_d_first)} for the first of"
            text += f" {len(self.features)} features under Holm"
        return text

    def message(self) -> str:
        """One line: what drifted (or that nothing did), the sizes, what was detectable."""
        sizes = f"n={self.n_reference} reference, {self.n_current} current"
        k = len(self.features)
        if self.drifted:
            shown = "; ".join(f.describe() for f in self.drifted[:3])
            more = f"; and {len(self.drifted) - 3} more" if len(self.drifted) > 3 else ""
            head = f"drift in {len(self.drifted)} of {k} features: {shown}{more}"
        else:
            largest = f"; largest {self.features[0].describe()}" if self.features else ""
            head = f"no drift in {k} features{largest}"
        return (
            f"{head} ({sizes}; Holm-corrected at alpha {format_value(self.alpha)};"
            f" {self.detectable()})"
        )

    def display(self) -> str:
        k = len(self.features)
        if self.drifted:
            return f"{len(self.drifted)} of {k} features drifted ({self.drifted[0].name})"
        return f"no drift in {k} features (n {self.n_reference} vs {self.n_current})"

    def as_extra(self) -> dict[str, Any]:
        return {
            "on": self.on,
            "alpha": self.alpha,
            "correction": "holm",
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "features_tested": len(self.features),
            "drifted": [f.name for f in self.drifted],
            "critical_d": self.critical_d,
            "critical_d_first": self.critical_d_first,
            "detectable_normal_shift_sd": _finite(normal_shift_for_ks(self.critical_d)),
            "detectable": self.detectable(),
            "top": [f.as_dict() for f in self.features[: self.top]],
        }


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Sample:
    """A sample as named arrays, items on the first axis; *bare* when given as one array."""

    arrays: dict[str, Array]
    bare: bool

    @property
    def n(self) -> int:
        return len(next(iter(self.arrays.values())))

    def features(self) -> Any:
        """What a model is fed: the bare array, or the dict of named inputs."""
        return self.arrays[ARRAY_NAME] if self.bare else self.arrays


def collect(data: Any, what: str, max_items: int | None = accuracy.DEFAULT_MAX_ITEMS) -> Sample:
    """*data* in any of :data:`UNLABELLED_FORMS`, read into memory as a :class:`Sample`."""
    data = accuracy._called(data)
    if isinstance(data, np.ndarray):
        return _sample(data, what)
    if isinstance(data, Mapping):
        return _sample(dict(data), what)
    pair = accuracy._as_arrays_pair(data)
    if pair is not None:
        return _sample(pair[0], what)
    if isinstance(data, (str, bytes)) or not isinstance(data, Iterable):
        raise ValueError(f"{what} must be {UNLABELLED_FORMS}; got {type(data).__name__}")
    return _sample(_concatenated(_input_batches(iter(data), max_items), what), what)


def _input_batches(items: Iterator[Any], max_items: int | None) -> Iterator[Any]:
    """Batches of inputs: arrays or dicts pass through, (input, label) pairs are stacked."""
    first = next(items, None)
    if first is None:
        return
    items = itertools.chain([first], items)
    if isinstance(first, (np.ndarray, Mapping)):
        seen = 0
        for batch in items:
            seen += len(batch if isinstance(batch, np.ndarray) else next(iter(batch.values())))
            _check_cap(seen, max_items)
            yield batch
        return
    for features, _labels in accuracy._iter_batches(items, _BATCH, max_items):
        yield features


def _check_cap(seen: int, max_items: int | None) -> None:
    if max_items is not None and seen > max_items:
        raise ValueError(
            f"data yielded more than max_items={max_items:,} items (an endless iterator?);"
            " pass a finite sample, or a larger max_items= (None: no cap)"
        )


def _concatenated(batches: Iterator[Any], what: str) -> Any:
    parts = list(batches)
    if not parts:
        raise ValueError(f"{what} is empty: it must hold at least one item")
    if isinstance(parts[0], Mapping):
        return {str(k): np.concatenate([np.asarray(p[k]) for p in parts]) for k in parts[0]}
    return np.concatenate([np.asarray(p) for p in parts])


def _sample(features: Any, what: str) -> Sample:
    bare = not isinstance(features, Mapping)
    raw = {ARRAY_NAME: features} if bare else dict(features)
    if not raw:
        raise ValueError(f"{what} is an empty dict; give input name -> array")
    arrays = {
        str(k): _item_array(v, f"{what}[{k!r}]" if not bare else what) for k, v in raw.items()
    }
    lengths = {len(a) for a in arrays.values()}
    if len(lengths) != 1:
        raise ValueError(f"{what}: the inputs hold different numbers of items ({sorted(lengths)})")
    if lengths == {0}:
        raise ValueError(f"{what} is empty: it must hold at least one item")
    return Sample(arrays, bare)


def _item_array(value: Any, what: str) -> Array:
    array = np.asarray(value)
    if array.ndim == 0:
        raise ValueError(f"{what} is a scalar; it needs the items on its first axis")
    return array


# --------------------------------------------------------------------------- features


@dataclass(frozen=True, eq=False)
class Feature:
    """One feature's values on both sides, 1-D."""

    name: str
    reference: Array
    current: Array


def tensor_features(
    name: str, reference: Array, current: Array, channel_axis: int = 1
) -> list[Feature]:
    """The features of one named input (or output) on both sides; see the module doc."""
    if reference.shape[1:] != current.shape[1:]:
        raise ValueError(
            f"{name}: reference items have shape {reference.shape[1:]} but current items"
            f" {current.shape[1:]}; both samples need the same item shape"
        )
    if reference.ndim == 1:
        return [Feature(name, reference, current)]
    if reference.ndim == 2:
        return [
            Feature(f"{name}[{j}]", reference[:, j], current[:, j])
            for j in range(reference.shape[1])
        ]
    return _channel_features(name, reference, current, channel_axis)


def _channel_features(name: str, reference: Array, current: Array, axis: int) -> list[Feature]:
    if reference.dtype.kind not in "biuf":
        raise ValueError(f"{name}: a tensor of {reference.dtype} has no per-channel statistics")
    if not 1 <= axis < reference.ndim:
        raise ValueError(
            f"channel_axis={axis} is not an item axis of {name} (shape {reference.shape});"
            f" give 1 to {reference.ndim - 1}"
        )
    features = []
    for channel in range(reference.shape[axis]):
        ref = np.take(reference, channel, axis=axis).reshape(len(reference), -1)
        cur = np.take(current, channel, axis=axis).reshape(len(current), -1)
        label = f"{name} ch{channel}"
        features.append(Feature(f"{label} mean", ref.mean(axis=1), cur.mean(axis=1)))
        features.append(Feature(f"{label} std", ref.std(axis=1), cur.std(axis=1)))
    return features


def input_features(reference: Sample, current: Sample, channel_axis: int) -> list[Feature]:
    if set(reference.arrays) != set(current.arrays):
        raise ValueError(
            f"reference has inputs {sorted(reference.arrays)} but current"
            f" {sorted(current.arrays)}; both samples need the same inputs"
        )
    return [
        feature
        for key in reference.arrays
        for feature in tensor_features(
            key, reference.arrays[key], current.arrays[key], channel_axis
        )
    ]


# --------------------------------------------------------------------------- model outputs


def run_outputs(
    model: Any, sample: Sample, output: str | int | None, batch_size: int | None
) -> tuple[Array, str]:
    """The model's chosen output on every item of *sample*, and the output's label.

    Run at the model's deployed batch (its config's ``batch``, 1 by default) unless
    *batch_size* is given: a dynamically quantized model's outputs depend on the batch.
    """
    io = accuracy._ModelIO.of(model, output)
    size = batch_size or accuracy._deployed_batch(model)
    features = sample.features()
    parts = []
    for start in range(0, sample.n, size):
        outputs = model.run(io.feeds(accuracy._take(features, slice(start, start + size))))
        if io.output_index >= len(outputs):
            raise ValueError(
                f"model {io.name!r} returned {len(outputs)} outputs, no {io.output_label}"
            )
        parts.append(np.asarray(outputs[io.output_index]))
    return np.concatenate(parts), io.output_label.removeprefix("output ").strip("'")


def score_features(label: str, reference: Array, current: Array) -> list[Feature]:
    """Predicted class (argmax) and top score of class scores, as the model returns them."""
    for side in (reference, current):
        if side.ndim != 2 or side.shape[1] < 2 or side.dtype.kind not in "biuf":
            raise ValueError(
                f"output {label!r} is {side.dtype} {side.shape}, not class scores (items,"
                " classes); pass output= the scores output, or output_view='features'"
            )
    return [
        Feature(f"{label} class", np.argmax(reference, axis=1), np.argmax(current, axis=1)),
        Feature(f"{label} top score", np.max(reference, axis=1), np.max(current, axis=1)),
    ]


# --------------------------------------------------------------------------- tests


@dataclass(frozen=True)
class _Settings:
    method: Method
    max_categories: int


def _kind(feature: Feature, settings: _Settings) -> Kind:
    kinds = {feature.reference.dtype.kind, feature.current.dtype.kind}
    if settings.method == "ks":
        if not kinds <= set("biuf"):
            raise ValueError(f"method='ks': feature {feature.name!r} is not numeric")
        return "continuous"
    if settings.method == "chi2" or kinds & set("bUSO"):
        return "categorical"
    if kinds <= set("iu"):
        values = np.union1d(feature.reference, feature.current)
        if values.size <= settings.max_categories:
            return "categorical"
    return "continuous"


def _test(feature: Feature, settings: _Settings) -> FeatureDrift:
    """The feature's test, before the correction (``p_adjusted`` is set afterwards)."""
    if _kind(feature, settings) == "categorical":
        return _chi_square(feature)
    return _ks(feature)


def _ks(feature: Feature) -> FeatureDrift:
    ref, cur, reason = _finite_values(feature)
    result = ks_two_sample(ref, cur)
    reason = "; ".join(r for r in (reason, _constant_reason(ref, cur)) if r)
    return FeatureDrift(
        name=feature.name,
        kind="continuous",
        test="ks",
        statistic=result.statistic,
        p_value=result.p_value,
        p_adjusted=result.p_value,
        effect=result.statistic,
        psi=psi_continuous(ref, cur, bins=PSI_BINS),
        drifted=False,
        n_reference=result.n_reference,
        n_current=result.n_current,
        detail=f"{result.method} p",
        reason=reason,
    )


def _finite_values(feature: Feature) -> tuple[Array, Array, str]:
    """The finite values of both sides, and a reason naming any that were left out."""
    ref = feature.reference.astype(np.float64)
    cur = feature.current.astype(np.float64)
    ref_ok, cur_ok = np.isfinite(ref), np.isfinite(cur)
    dropped = int(ref.size - ref_ok.sum()), int(cur.size - cur_ok.sum())
    if not ref_ok.any() or not cur_ok.any():
        raise ValueError(
            f"feature {feature.name!r} has no finite values in the"
            f" {'reference' if not ref_ok.any() else 'current'} sample; nothing to compare"
        )
    reason = ""
    if any(dropped):
        reason = f"{dropped[0]} reference and {dropped[1]} current values not finite, left out"
    return ref[ref_ok], cur[cur_ok], reason


def _constant_reason(ref: Array, cur: Array) -> str:
    ref_constant, cur_constant = bool(np.all(ref == ref[0])), bool(np.all(cur == cur[0]))
    if ref_constant and cur_constant:
        if ref[0] == cur[0]:
            return f"constant {format_value(float(ref[0]))} in both samples"
        return (
            f"constant {format_value(float(ref[0]))} in the reference but"
            f" {format_value(float(cur[0]))} in the current sample"
        )
    if ref_constant:
        return f"constant {format_value(float(ref[0]))} in the reference, varies in the current"
    if cur_constant:
        return f"varies in the reference, constant {format_value(float(cur[0]))} in the current"
    return ""


def _chi_square(feature: Feature) -> FeatureDrift:
    ref, cur = feature.reference.astype(str), feature.current.astype(str)
    categories = np.union1d(ref, cur)
    ref_counts = np.array([np.count_nonzero(ref == c) for c in categories])
    cur_counts = np.array([np.count_nonzero(cur == c) for c in categories])
    result = chi_square_homogeneity(ref_counts, cur_counts)
    return FeatureDrift(
        name=feature.name,
        kind="categorical",
        test="chi2",
        statistic=result.statistic,
        p_value=result.p_value,
        p_adjusted=result.p_value,
        effect=result.cramers_v,
        psi=psi(ref_counts / ref.size, cur_counts / cur.size),
        drifted=False,
        n_reference=result.n_reference,
        n_current=result.n_current,
        detail=f"df={result.df}",
        reason=_category_reason(categories, ref_counts, cur_counts, result.min_expected),
    )


def _category_reason(
    categories: Array, ref_counts: Array, cur_counts: Array, min_expected: float
) -> str:
    if categories.size == 1:
        return f"one category ({categories[0]}) in both samples"
    new = [str(c) for c, r in zip(categories, ref_counts, strict=True) if r == 0]
    reasons = [f"categories not in the reference: {', '.join(new[:5])}"] if new else []
    gone = [str(c) for c, k in zip(categories, cur_counts, strict=True) if k == 0]
    if gone:
        reasons.append(f"categories missing from the current sample: {', '.join(gone[:5])}")
    if min_expected < 5:
        reasons.append(f"an expected count of {format_value(min_expected)} < 5: p is rough")
    return "; ".join(reasons)


def judge(tests: Sequence[FeatureDrift], alpha: float) -> tuple[FeatureDrift, ...]:
    """Holm's adjusted p-values over *tests*, and each verdict; most drifted first.

    Ordered by adjusted p, then by effect (D or Cramér's V), so among features whose
    p-values underflow to 0 the larger shift comes first.
    """
    adjusted = holm([t.p_value for t in tests])
    judged = [
        replace(t, p_adjusted=float(p), drifted=bool(p < alpha))
        for t, p in zip(tests, adjusted, strict=True)
    ]
    return tuple(sorted(judged, key=lambda f: (f.p_adjusted, -f.effect, f.name)))


# --------------------------------------------------------------------------- entry points


def detect_drift(
    reference: Any,
    current: Any,
    *,
    on: On = "inputs",
    method: Method = "auto",
    alpha: float = 0.05,
    model: Any = None,
    output: str | int | None = None,
    output_view: OutputView = "scores",
    channel_axis: int = 1,
    max_categories: int = DEFAULT_MAX_CATEGORIES,
    batch_size: int | None = None,
    max_items: int | None = accuracy.DEFAULT_MAX_ITEMS,
    top: int = DEFAULT_TOP,
) -> DriftResult:
    """The drift tests of :func:`assert_no_drift`, without recording or raising.

    For a look at the figures, or a demonstration that must not count as a check.
    """
    _check_options(on, method, alpha, model, output_view, max_categories, top)
    ref, cur = collect(reference, "reference", max_items), collect(current, "current", max_items)
    features: list[Feature] = []
    if on in ("inputs", "both"):
        features += input_features(ref, cur, channel_axis)
    if on in ("outputs", "both"):
        features += _output_features(model, ref, cur, output, output_view, batch_size, channel_axis)
    settings = _Settings(method, max_categories)
    judged = judge([_test(f, settings) for f in features], alpha)
    return DriftResult(
        features=judged,
        n_reference=ref.n,
        n_current=cur.n,
        alpha=alpha,
        on=on,
        critical_d=ks_critical_d(ref.n, cur.n, alpha),
        critical_d_first=ks_critical_d(ref.n, cur.n, alpha / max(1, len(judged))),
        top=top,
    )


def _output_features(
    model: Any,
    ref: Sample,
    cur: Sample,
    output: str | int | None,
    view: OutputView,
    batch_size: int | None,
    channel_axis: int,
) -> list[Feature]:
    ref_out, label = run_outputs(model, ref, output, batch_size)
    cur_out, _ = run_outputs(model, cur, output, batch_size)
    if view == "scores":
        return score_features(label, ref_out, cur_out)
    return tensor_features(label, ref_out, cur_out, channel_axis)


def assert_no_drift(
    reference: Any,
    current: Any,
    *,
    on: On = "inputs",
    method: Method = "auto",
    alpha: float = 0.05,
    name: str = "no_drift",
    model: Any = None,
    output: str | int | None = None,
    output_view: OutputView = "scores",
    channel_axis: int = 1,
    max_categories: int = DEFAULT_MAX_CATEGORIES,
    batch_size: int | None = None,
    max_items: int | None = accuracy.DEFAULT_MAX_ITEMS,
    top: int = DEFAULT_TOP,
    gating: bool = True,
) -> DriftResult:
    """Fail when any feature of *current* is distributed differently from *reference*.

    *reference* and *current* take any of :data:`UNLABELLED_FORMS`.  ``on="inputs"``
    tests the inputs' features, ``"outputs"`` the output of *model* (a DeployModel) on
    both samples, ``"both"`` all of them; *method* ``"auto"`` picks KS or chi-square per
    feature (``"ks"`` or ``"chi2"`` forces one).  Holm-corrected over all features at
    *alpha*.  Records the ``drift`` check (``gating=False``: reported, never deciding
    the verdict, and not raised) and returns the result; raises AssertionError with
    the most drifted features when any drifted.
    """
    _check_name(name, gating)
    result = detect_drift(
        reference,
        current,
        on=on,
        method=method,
        alpha=alpha,
        model=model,
        output=output,
        output_view=output_view,
        channel_axis=channel_axis,
        max_categories=max_categories,
        batch_size=batch_size,
        max_items=max_items,
        top=top,
    )
    checks.record_check(
        name,
        metric=DRIFT,
        value=len(result.drifted),
        budget=f"alpha {format_value(alpha)}, Holm",
        passed=result.passed,
        details=result.message(),
        display=result.display(),
        gating=gating,
        extra=result.as_extra(),
    )
    if gating and not result.passed:
        raise AssertionError(result.message())
    return result


# --------------------------------------------------------------------------- validation


def _check_options(
    on: Any, method: Any, alpha: Any, model: Any, view: Any, max_categories: Any, top: Any
) -> None:
    if on not in ("inputs", "outputs", "both"):
        raise ValueError(f"on must be 'inputs', 'outputs' or 'both', got {on!r}")
    if method not in ("auto", "ks", "chi2"):
        raise ValueError(f"method must be 'auto', 'ks' or 'chi2', got {method!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        raise ValueError(f"alpha must be a number in (0, 1), e.g. 0.05, got {alpha!r}")
    if on != "inputs" and not callable(getattr(model, "run", None)):
        raise ValueError(
            f"on={on!r} compares a model's outputs: pass model= (e.g. deploy_models['optimized'])"
        )
    if on == "inputs" and model is not None:
        raise ValueError("model= is only used with on='outputs' or on='both'")
    if view not in ("scores", "features"):
        raise ValueError(f"output_view must be 'scores' or 'features', got {view!r}")
    for label, value in (("max_categories", max_categories), ("top", top)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{label} must be an integer >= 1, got {value!r}")


def _check_name(name: Any, gating: Any) -> None:
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string (the check's name), got {name!r}")
    if not isinstance(gating, bool):
        raise ValueError(f"gating must be True or False, got {gating!r}")
