"""Hypothesis strategies of feeds that match a model's signature, for property tests.

A deployment test with fixed example inputs checks the inputs someone thought of; a
property test ("the outputs are finite for any valid input", "the optimized model
agrees with the baseline under small perturbations") checks the ones nobody did.
:func:`feeds` reads the model's ONNX signature and draws dicts of input name -> array
with the right dtype and shape, so such a test needs no hand-written input code, and
:func:`perturbed` pairs each drawn feeds with a slightly perturbed copy.

Import this module explicitly: it imports hypothesis and numpy at the top, and the
plugin never imports it, so suites that do not use it pay nothing at start-up.

Example -- a property test in the user's ``tests/`` folder::

    from pathlib import Path

    import numpy as np
    from hypothesis import given, settings

    from pytest_deploycheck.measure.runtime import SessionSettings, load_model
    from pytest_deploycheck.strategies import feeds, perturbed

    MODELS = Path(__file__).resolve().parent.parent / "models"
    BASELINE = load_model("baseline", MODELS / "classifier_fp32.onnx", SessionSettings())
    OPTIMIZED = load_model("optimized", MODELS / "classifier_int8.onnx", SessionSettings())
    IMAGES = feeds(BASELINE, values={"image": (0.0, 1.0)})
    CONFIDENT = 0.5  # the baseline's top-1 probability leads the runner-up by this much


    @settings(max_examples=25, deadline=None)
    @given(feeds_pair=perturbed(IMAGES, scale=0.01))
    def test_optimized_agrees_with_baseline_on_top1(feeds_pair):
        clean, noisy = feeds_pair
        expected = BASELINE.run(clean, ["probabilities"])[0]
        actual = OPTIMIZED.run(noisy, ["probabilities"])[0]
        ranked = np.sort(expected, axis=1)
        confident = ranked[:, -1] - ranked[:, -2] >= CONFIDENT
        agree = expected.argmax(axis=1) == actual.argmax(axis=1)
        assert agree[confident].all()

Why "where the baseline is confident" rather than "always": a quantized model may flip
the top-1 class where the baseline itself is nearly tied between two classes, and a
perturbation of 1% of the range can flip a near-tie in the baseline too.  Random
images are far from the digits these models were trained on, so near-ties are common:
on 100,000 random images (constant, sparse and noisy ones, each perturbed by up to 1%)
the int8 and fp32 example models disagreed on about 3%, always with the baseline's
lead under 0.35, while a lead of 0.5 or more kept about 58% of the images under test.
Choose the margin (or an agreement rate over a large batch) from such a measurement
of your own models.

The strategies are built when ``@given`` decorates the test, before any fixture
exists, which is why the example loads the models at import time: a strategy only
needs the model's signature.  To draw from a fixture's model instead, use
``@given(data=st.data())`` and ``data.draw(feeds(deploy_model))``.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

if TYPE_CHECKING:
    from .measure.runtime import DeployModel, TensorSpec

Array = npt.NDArray[Any]
Feeds = dict[str, Array]
ValueRange = tuple[float, float]
# A drawn dimension size is shared by every dimension with the same key: a symbol's
# name, or (input name, axis) for an unnamed dimension, which shares with nothing.
SizeKey = str | tuple[str, int]
# Every variable first dimension is the batch.  Axis 0 never needs an anonymous key
# (it is always the batch), so this key cannot clash with one.
BATCH: SizeKey = ("", 0)

# Unbounded floats would mostly test overflow to inf: a model fed 1e38 fails for
# reasons no deployment meets.  [-10, 10] covers normalised inputs and then some.
DEFAULT_FLOAT_RANGE: ValueRange = (-10.0, 10.0)
# Integer inputs are mostly indices (token ids, class ids, positions): small
# non-negative values are valid for nearly every model, larger ones only test bounds.
DEFAULT_INT_RANGE: ValueRange = (0, 10)
MAX_STRING_LENGTH = 8
# hypothesis draws floats of these widths exactly, by the itemsize of the numpy type
_FLOAT_WIDTHS: Mapping[int, Literal[16, 32, 64]] = {2: 16, 4: 32, 8: 64}
_SEED_LIMIT = 2**32 - 1


def _hide_under_own_errors(excinfo: Any) -> bool:
    """pytest leaves this module's frames out under its one-line ValueErrors.

    They say what to fix in the caller's ``feeds(...)`` or ``perturbed(...)`` line;
    any other exception is a bug in the plugin and keeps its whole traceback.
    """
    return excinfo is not None and bool(excinfo.errisinstance(ValueError))


__tracebackhide__ = _hide_under_own_errors

# The value range each feeds() strategy drew its float inputs from, so that perturbed()
# scales its noise to the declared range.  Weak keys: the entry goes with the strategy.
_FLOAT_RANGES: weakref.WeakKeyDictionary[st.SearchStrategy[Feeds], dict[str, ValueRange]] = (
    weakref.WeakKeyDictionary()
)


@dataclass(frozen=True)
class _InputPlan:
    """How one input is drawn: its dtype, where each dimension's size comes from, values."""

    name: str
    dtype: np.dtype[Any]
    dims: tuple[int | SizeKey, ...]  # a fixed size, or the key of a drawn size
    elements: st.SearchStrategy[Any]
    value_range: ValueRange | None  # floats only: what perturbed() scales noise to


@dataclass(frozen=True)
class _ValueOptions:
    """feeds()' value options that apply to every input."""

    min_value: float | None
    max_value: float | None
    allow_nan: bool
    allow_infinity: bool


# --------------------------------------------------------------------------- feeds


def feeds(
    model: DeployModel,
    *,
    batch: int | st.SearchStrategy[int] | None = None,
    max_dim: int = 8,
    min_value: float | None = None,
    max_value: float | None = None,
    values: Mapping[str, tuple[float, float]] | None = None,
    allow_nan: bool = False,
    allow_infinity: bool = False,
) -> st.SearchStrategy[dict[str, npt.NDArray[Any]]]:
    """A strategy of feeds for *model*: one array per input, of its dtype and shape.

    Shapes: fixed dimensions as declared; an input's configured ``input_shapes`` entry
    as configured; every other dimension is drawn in [1, *max_dim*], with one size per
    symbolic name across all inputs of a draw (``batch`` in two inputs agrees).  A
    variable first dimension is the batch, shared by all inputs; *batch* (a whole
    number or a strategy of them) pins it, even over a configured shape.

    Values: floats in [-10, 10] and integers in [0, 10] (clipped to the dtype) unless
    *min_value* / *max_value* say otherwise; *values* sets an input's own range, e.g.
    ``{"image": (0.0, 1.0)}``.  Float bounds are rounded inwards to the nearest value
    the dtype holds (float16 included).  Floats are finite unless *allow_nan* or
    *allow_infinity* add NaN or +-inf.  Booleans are any; strings are short text.
    As everywhere in hypothesis, most elements of a large array share one drawn fill
    value and the rest are drawn apart: large inputs stay cheap to draw and shrink.

    Raises ValueError, naming the model and input, for an input that is not a tensor
    numpy can hold, an unknown name in *values*, or an empty range.
    """
    _check_model(model)
    _check_options(model, batch, max_dim, min_value, max_value)
    _check_flags(model, allow_nan=allow_nan, allow_infinity=allow_infinity)
    if values is not None and not isinstance(values, Mapping):
        raise ValueError(
            f"{_where(model)}: values must be a dict of input name -> (low, high),"
            f" got {type(values).__name__}"
        )
    ranges = dict(values or {})
    _check_value_names(model, ranges)
    options = _ValueOptions(min_value, max_value, allow_nan, allow_infinity)
    plans = tuple(
        _input_plan(model, spec, ranges.get(spec.name), options, batch_pinned=batch is not None)
        for spec in model.inputs
    )
    sizes = _size_strategies(model, plans, batch, max_dim)
    strategy = _draw_feeds(plans, sizes)
    _FLOAT_RANGES[strategy] = {p.name: p.value_range for p in plans if p.value_range}
    return strategy


@st.composite
def _draw_feeds(
    draw: st.DrawFn, plans: Sequence[_InputPlan], sizes: Mapping[SizeKey, st.SearchStrategy[int]]
) -> Feeds:
    """Sizes first, so that one symbol has one size, then each input's array."""
    drawn = {key: draw(strategy) for key, strategy in sizes.items()}
    return {plan.name: draw(_array(plan, drawn)) for plan in plans}


def _array(plan: _InputPlan, sizes: Mapping[SizeKey, int]) -> st.SearchStrategy[Array]:
    shape = tuple(dim if isinstance(dim, int) else sizes[dim] for dim in plan.dims)
    return hnp.arrays(plan.dtype, shape, elements=plan.elements)


# --------------------------------------------------------------------------- checks


def _where(model: DeployModel, name: str | None = None) -> str:
    return f"model {model.name!r}" + (f", input {name!r}" if name is not None else "")


def _inputs_listing(model: DeployModel) -> str:
    return ", ".join(f"{spec.name} {spec.describe()}" for spec in model.inputs) or "none"


def _check_model(model: object) -> None:
    if not isinstance(getattr(model, "name", None), str) or not hasattr(model, "inputs"):
        raise ValueError(
            "feeds: expected a loaded model (deploy_model, deploy_models[NAME] or"
            f" load_model(...)), got {type(model).__name__} {model!r:.40}"
        )


def _check_flags(model: DeployModel, **flags: object) -> None:
    for label, flag in flags.items():
        if not isinstance(flag, bool):
            raise ValueError(f"{_where(model)}: {label} must be True or False, got {flag!r}")


def _check_options(
    model: DeployModel,
    batch: int | st.SearchStrategy[int] | None,
    max_dim: int,
    min_value: float | None,
    max_value: float | None,
) -> None:
    if isinstance(max_dim, bool) or not isinstance(max_dim, int) or max_dim < 1:
        raise ValueError(f"{_where(model)}: max_dim must be a whole number >= 1, got {max_dim!r}")
    if batch is not None:
        _check_batchable(model)
    if batch is not None and not isinstance(batch, st.SearchStrategy):
        _check_batch(model, batch)
    for label, bound in (("min_value", min_value), ("max_value", max_value)):
        if bound is not None:
            _check_bound(model, None, label, bound)
    if min_value is not None and max_value is not None and min_value > max_value:
        raise ValueError(f"{_where(model)}: min_value {min_value} > max_value {max_value}")


def _check_batch(model: DeployModel, batch: object) -> int:
    """*batch* as a size; ValueError unless it is a whole number >= 1."""
    if isinstance(batch, bool) or not isinstance(batch, int | np.integer) or batch < 1:
        raise ValueError(
            f"{_where(model)}: batch must be a whole number >= 1"
            f" (or a strategy of them), got {batch!r}"
        )
    return int(batch)


def _check_bound(model: DeployModel, name: str | None, label: str, bound: object) -> None:
    if isinstance(bound, bool) or not isinstance(bound, int | float | np.number):
        raise ValueError(f"{_where(model, name)}: {label} must be a number, got {bound!r}")
    if not math.isfinite(float(bound)):
        raise ValueError(
            f"{_where(model, name)}: {label} must be finite, got {bound!r}"
            " (allow_nan / allow_infinity add NaN and infinities)"
        )


def _check_value_names(model: DeployModel, ranges: Mapping[str, Any]) -> None:
    known = {spec.name for spec in model.inputs}
    for name in ranges:
        if name not in known:
            raise ValueError(
                f"{_where(model)}: values names unknown input {name!r};"
                f" inputs: {_inputs_listing(model)}"
            )


def _checked_pair(model: DeployModel, name: str, pair: object) -> ValueRange:
    """An entry of ``values``: a (low, high) pair of finite numbers, low <= high."""
    if not isinstance(pair, tuple | list) or len(pair) != 2:
        raise ValueError(f"{_where(model, name)}: values entry must be (low, high), got {pair!r}")
    low, high = pair
    _check_bound(model, name, "low", low)
    _check_bound(model, name, "high", high)
    if low > high:
        raise ValueError(f"{_where(model, name)}: values range ({low}, {high}) has low > high")
    return float(low), float(high)


# --------------------------------------------------------------------------- values


def _input_plan(
    model: DeployModel,
    spec: TensorSpec,
    own_range: object,
    options: _ValueOptions,
    *,
    batch_pinned: bool,
) -> _InputPlan:
    dtype = _checked_dtype(model, spec)
    requested = None if own_range is None else _checked_pair(model, spec.name, own_range)
    elements, value_range = _elements(model, spec, dtype, requested, options)
    dims = _dims(model, spec, batch_pinned)
    return _InputPlan(spec.name, dtype, dims, elements, value_range)


def _checked_dtype(model: DeployModel, spec: TensorSpec) -> np.dtype[Any]:
    if not spec.is_tensor:
        raise ValueError(
            f"{_where(model, spec.name)}: is {spec.onnx_type}, not a tensor;"
            " feeds() draws tensors only, so build this model's feeds yourself"
        )
    if not spec.numpy_supported:
        raise ValueError(
            f"{_where(model, spec.name)}: numpy has no type for {spec.onnx_type},"
            " so feeds() cannot draw it; build this model's feeds yourself"
        )
    return np.dtype(spec.dtype)


def _elements(
    model: DeployModel,
    spec: TensorSpec,
    dtype: np.dtype[Any],
    requested: ValueRange | None,
    options: _ValueOptions,
) -> tuple[st.SearchStrategy[Any], ValueRange | None]:
    """The element strategy of one input and, for floats, the range it draws from."""
    if dtype.kind in "bO":
        if requested is not None:
            kind = "boolean" if dtype.kind == "b" else "string"
            raise ValueError(f"{_where(model, spec.name)}: values has no meaning for a {kind}")
        return (st.booleans() if dtype.kind == "b" else _strings()), None
    default = DEFAULT_INT_RANGE if dtype.kind in "iu" else DEFAULT_FLOAT_RANGE
    wanted = requested or _merged_range(model, spec.name, options, default)
    if dtype.kind in "iu":
        return _integers(model, spec.name, dtype, wanted), None
    value_range = _float_range(model, spec.name, _part_dtype(dtype), wanted)
    return _floats(dtype, value_range, options), value_range


def _strings() -> st.SearchStrategy[str]:
    # Any Unicode text: onnxruntime stores tensor(string) as UTF-8, whatever it says.
    return st.text(max_size=MAX_STRING_LENGTH)


def _merged_range(
    model: DeployModel, name: str, options: _ValueOptions, default: ValueRange
) -> ValueRange:
    """min_value / max_value, each side falling back to the dtype family's default."""
    low = default[0] if options.min_value is None else options.min_value
    high = default[1] if options.max_value is None else options.max_value
    if low > high:
        raise ValueError(
            f"{_where(model, name)}: value range [{low}, {high}] is empty: one side is the"
            f" default ({default[0]}, {default[1]}); give both min_value and max_value"
        )
    return float(low), float(high)


def _integers(
    model: DeployModel, name: str, dtype: np.dtype[Any], wanted: ValueRange
) -> st.SearchStrategy[int]:
    info = np.iinfo(dtype)
    low = max(math.ceil(wanted[0]), int(info.min))
    high = min(math.floor(wanted[1]), int(info.max))
    if low > high:
        raise ValueError(
            f"{_where(model, name)}: no {dtype.name} value lies in [{wanted[0]}, {wanted[1]}]"
        )
    return st.integers(low, high)


def _part_dtype(dtype: np.dtype[Any]) -> np.dtype[Any]:
    """The float type of each part of a complex dtype; a float dtype itself."""
    return np.dtype(f"float{dtype.itemsize * 4}") if dtype.kind == "c" else dtype


def _float_range(
    model: DeployModel, name: str, dtype: np.dtype[Any], wanted: ValueRange
) -> ValueRange:
    """*wanted* narrowed to values *dtype* holds exactly: hypothesis needs exact bounds."""
    info = np.finfo(dtype)
    low = dtype.type(max(wanted[0], float(info.min)))
    high = dtype.type(min(wanted[1], float(info.max)))
    if float(low) < wanted[0]:
        low = np.nextafter(low, dtype.type(np.inf))
    if float(high) > wanted[1]:
        high = np.nextafter(high, dtype.type(-np.inf))
    if low > high:
        raise ValueError(
            f"{_where(model, name)}: no {dtype.name} value lies in [{wanted[0]}, {wanted[1]}]"
        )
    return float(low), float(high)


def _floats(
    dtype: np.dtype[Any], value_range: ValueRange, options: _ValueOptions
) -> st.SearchStrategy[Any]:
    width = _FLOAT_WIDTHS[_part_dtype(dtype).itemsize]
    finite = st.floats(value_range[0], value_range[1], width=width)
    # hypothesis refuses NaN and infinities together with bounds: add them beside.
    extras: list[st.SearchStrategy[float]] = []
    if options.allow_nan:
        extras.append(st.just(math.nan))
    if options.allow_infinity:
        extras.append(st.sampled_from([math.inf, -math.inf]))
    part = st.one_of(finite, *extras)
    if dtype.kind == "c":
        return st.builds(complex, part, part)
    return part


# --------------------------------------------------------------------------- shapes


def _dims(model: DeployModel, spec: TensorSpec, batch_pinned: bool) -> tuple[int | SizeKey, ...]:
    """Each dimension's fixed or configured size, or the key its drawn size is shared under.

    With *batch* given, the batch follows it even in a configured shape, as in
    ``DeployModel.concrete_shape``.
    """
    batch_names = _batch_names(model)
    configured = model.input_shapes.get(spec.name)
    dims: list[int | SizeKey] = []
    for axis, dim in enumerate(spec.shape):
        if isinstance(dim, int) and dim >= 0:
            dims.append(dim)
            continue
        key = _size_key(spec.name, axis, dim, batch_names)
        follows_batch = batch_pinned and key == BATCH
        dims.append(configured[axis] if configured is not None and not follows_batch else key)
    return tuple(dims)


def _is_fixed(dim: object) -> bool:
    return isinstance(dim, int) and dim >= 0


def _batch_names(model: DeployModel) -> frozenset[str]:
    """Symbols that name a first dimension: they are the batch wherever they appear."""
    return frozenset(
        spec.shape[0]
        for spec in model.inputs
        if spec.shape and isinstance(spec.shape[0], str) and spec.shape[0]
    )


def _size_key(name: str, axis: int, dim: object, batch_names: frozenset[str]) -> SizeKey:
    if axis == 0 or (isinstance(dim, str) and dim in batch_names):
        return BATCH
    if isinstance(dim, str) and dim:
        return dim
    return (name, axis)


def _size_strategies(
    model: DeployModel,
    plans: Sequence[_InputPlan],
    batch: int | st.SearchStrategy[int] | None,
    max_dim: int,
) -> dict[SizeKey, st.SearchStrategy[int]]:
    """One strategy per shared size: *batch*, a configured size, else drawn."""
    pinned = _configured_sizes(model, batch_pinned=batch is not None)
    keys = dict.fromkeys(dim for plan in plans for dim in plan.dims if not isinstance(dim, int))
    sizes: dict[SizeKey, st.SearchStrategy[int]] = {}
    for key in keys:
        if key == BATCH and batch is not None:
            sizes[key] = _batch_strategy(model, batch)
        elif key in pinned:
            sizes[key] = st.just(pinned[key][0])
        else:
            sizes[key] = st.integers(1, max_dim)
    return sizes


def _configured_sizes(model: DeployModel, batch_pinned: bool) -> dict[SizeKey, tuple[int, str]]:
    """The sizes configured shapes give symbols, so unconfigured inputs agree with them.

    Returns key -> (size, the input that set it).
    """
    batch_names = _batch_names(model)
    pinned: dict[SizeKey, tuple[int, str]] = {}
    for spec in model.inputs:
        configured = model.input_shapes.get(spec.name, ())
        for axis, (dim, size) in enumerate(zip(spec.shape, configured, strict=False)):
            key = _size_key(spec.name, axis, dim, batch_names)
            if _is_fixed(dim) or (batch_pinned and key == BATCH):
                continue
            first = pinned.setdefault(key, (size, spec.name))
            if first[0] != size:
                raise ValueError(
                    f"{_where(model, spec.name)}: input_shapes sets {_key_label(key, dim)}"
                    f" to {size}, but to {first[0]} for input {first[1]!r}"
                )
    return pinned


def _key_label(key: SizeKey, dim: object) -> str:
    return "the batch" if key == BATCH else f"dimension {dim!r}"


def _check_batchable(model: DeployModel) -> None:
    """A pinned batch needs a variable first dimension to go into."""
    if any(spec.shape and not _is_fixed(spec.shape[0]) for spec in model.inputs):
        return
    raise ValueError(
        f"{_where(model)}: no input has a variable first (batch) dimension, so batch"
        f" cannot be pinned; inputs: {_inputs_listing(model)}"
    )


def _batch_strategy(
    model: DeployModel, batch: int | st.SearchStrategy[int]
) -> st.SearchStrategy[int]:
    if isinstance(batch, st.SearchStrategy):
        return batch.map(lambda size: _check_batch(model, size))
    return st.just(_check_batch(model, batch))


# --------------------------------------------------------------------------- perturbed


def perturbed(
    feed_strategy_or_feeds: st.SearchStrategy[dict[str, npt.NDArray[Any]]]
    | Mapping[str, npt.NDArray[Any]],
    *,
    scale: float = 0.01,
) -> st.SearchStrategy[tuple[dict[str, npt.NDArray[Any]], dict[str, npt.NDArray[Any]]]]:
    """A strategy of ``(original, perturbed)`` feeds pairs, for "agree under noise" tests.

    Each float input gets uniform noise with ``|noise| <= scale * (high - low)``, where
    [low, high] is the input's range: the one :func:`feeds` drew it from when
    *feed_strategy_or_feeds* is a strategy that :func:`feeds` returned, else the
    array's own smallest and largest value (a constant array then gets no noise).  The
    perturbed values are clipped to that range, so they stay valid inputs.  Integer,
    boolean, string and complex inputs, and NaN or infinite elements, are unchanged.

    The noise is dense (every element moves) and comes from a numpy generator seeded
    by hypothesis, so a failing example replays exactly.
    """
    if isinstance(scale, bool) or not isinstance(scale, int | float) or not 0 <= scale < math.inf:
        raise ValueError(f"perturbed: scale must be a number >= 0 and finite, got {scale!r}")
    if isinstance(feed_strategy_or_feeds, st.SearchStrategy):
        originals = feed_strategy_or_feeds
        ranges = _FLOAT_RANGES.get(feed_strategy_or_feeds, {})
    elif isinstance(feed_strategy_or_feeds, Mapping):
        originals = st.just(dict(feed_strategy_or_feeds))
        ranges = {}
    else:
        raise ValueError(
            "perturbed: expected a strategy of feeds or a dict of input name -> array,"
            f" got {type(feed_strategy_or_feeds).__name__}"
        )
    seeds = st.integers(0, _SEED_LIMIT)
    return st.tuples(originals, seeds).map(lambda pair: _pair(pair[0], pair[1], ranges, scale))


def _pair(
    original: Feeds, seed: int, ranges: Mapping[str, ValueRange], scale: float
) -> tuple[Feeds, Feeds]:
    rng = np.random.default_rng(seed)
    noisy = {
        name: _perturb(value, ranges.get(name), scale, rng) for name, value in original.items()
    }
    return original, noisy


def _perturb(value: Any, value_range: ValueRange | None, scale: float, rng: Any) -> Any:
    """*value* plus bounded noise when it is a float array; else *value* itself."""
    if not isinstance(value, np.ndarray) or value.dtype.kind != "f":
        return value
    finite = np.isfinite(value)
    if not finite.any():
        return value
    low, high = value_range or (float(value[finite].min()), float(value[finite].max()))
    span = high - low  # may overflow for float64 ranges near the largest float
    bound = scale * span if math.isfinite(span) else scale * high - scale * low
    wide = value.astype(np.float64)
    noise = rng.uniform(-bound, bound, size=value.shape) if bound > 0 else 0.0
    # asarray: numpy turns the result for a 0-d input into a scalar
    noisy: Array = np.asarray(np.clip(wide + noise, low, high), dtype=value.dtype)
    noisy = _within_bound(noisy, value, bound)
    return np.where(finite, noisy, value)


def _within_bound(noisy: Array, value: Array, bound: float) -> Array:
    """Undo the rounding to *value*'s dtype where it pushed a value past the bound.

    Rounding moves a value by at most half a step of the dtype, so one step back
    towards the original is enough, and never overshoots it.
    """
    with np.errstate(invalid="ignore"):
        too_far = np.abs(noisy.astype(np.float64) - value.astype(np.float64)) > bound
    if too_far.any():
        noisy[too_far] = np.nextafter(noisy[too_far], value[too_far])
    return noisy
