"""Load a model the way the target would run it, and feed it valid inputs.

A :class:`DeployModel` wraps one ``onnxruntime.InferenceSession`` built with the
target's thread count, execution providers and optimization level, so a latency
figure measured through it describes the deployment rather than onnxruntime's
defaults.  Feeds are checked before they reach onnxruntime: a wrong dtype or shape
becomes one line naming the model, the input and what would be valid, instead of an
``[ONNXRuntimeError] : 2 : INVALID_ARGUMENT`` from deep inside the runtime.  The check
refuses only what onnxruntime refuses (an unknown or missing input, the dtype, the rank,
a fixed dimension): exporters reuse one symbolic name, or ``?``, for dimensions that are
unrelated, so a symbolic dimension's name is a hint, never a contract.

numpy and onnxruntime are imported at the top of this module on purpose: nothing
that pytest imports at start-up imports this module (the plugin, ``modelset`` and the
budget checks import it inside functions, or under ``TYPE_CHECKING``), so the cost is
paid only by a run that loads a model.  The cold-start child loads this file on its
own, without the package, which is why it has no runtime imports from the package.
"""

from __future__ import annotations

import contextlib
import difflib
import math
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort  # type: ignore[import-untyped]
from onnxruntime.capi import onnxruntime_pybind11_state as _ort_state  # type: ignore[import-untyped]

if TYPE_CHECKING:
    from ..config.schema import Device

Array = npt.NDArray[Any]
Dim = int | str | None
Feeds = dict[str, Array]

CPU_PROVIDER = "CPUExecutionProvider"
DEFAULT_POOL_SIZE = 16
# A pool of 16 feed sets of a large batch of images would dwarf the model itself and
# show up in a memory budget: above this many bytes the pool holds fewer sets (>= 2).
POOL_BYTES_LIMIT = 32 * 2**20
MIN_POOL_SIZE = 2
# More threads than any host has cores: onnxruntime builds a pool of that size (5000
# took minutes) or refuses the number (10**30) with a bare TypeError.
MAX_THREADS = 1024
GB = 1e9
INT_LOW, INT_HIGH = 0, 10

GRAPH_OPTIMIZATION_LEVELS: Mapping[str, str] = {
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}

# Every tensor element type onnxruntime reports, by the numpy dtype that holds it.
# Types numpy cannot represent (bfloat16, the float8 and 4-bit families) keep their
# ONNX name as dtype; such inputs are passed through unchecked and need user feeds.
ONNX_TO_NUMPY: Mapping[str, str] = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int8)": "int8",
    "tensor(int16)": "int16",
    "tensor(int32)": "int32",
    "tensor(int64)": "int64",
    "tensor(uint8)": "uint8",
    "tensor(uint16)": "uint16",
    "tensor(uint32)": "uint32",
    "tensor(uint64)": "uint64",
    "tensor(bool)": "bool",
    "tensor(string)": "object",
    "tensor(complex64)": "complex64",
    "tensor(complex128)": "complex128",
}
NUMPY_DTYPES = frozenset(ONNX_TO_NUMPY.values())

# onnxruntime's exceptions share no base class below Exception; collect them so that a
# load or run failure is converted without swallowing unrelated errors.
_ORT_ERRORS: tuple[type[Exception], ...] = tuple(
    value
    for value in vars(_ort_state).values()
    if isinstance(value, type) and issubclass(value, Exception) and value is not Exception
)
# What a provider that fails to initialise raises: worth one more try without it.
_RETRY_ERRORS: tuple[type[Exception], ...] = (*_ORT_ERRORS, RuntimeError, ValueError)
_ORT_PREFIX = re.compile(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ")
_LOAD_PREFIX = re.compile(r"^Load model from .*? failed:\s*")
_KERNEL_FAILURE = re.compile(
    r"^Non-zero status code returned while running (\w+) node\. Name:'([^']*)'"
    r" Status Message: (.*)$"
)
_SOURCE_PREFIX = re.compile(r"^\S+:\d+ .*? was false\. ")  # source file, line, C++ condition


class ModelLoadError(Exception):
    """A model file that cannot be loaded: missing, not ONNX, corrupt or mis-configured."""


class ModelInputError(ValueError):
    """Feeds (or a requested output or shape) that do not match the model's signature."""


class ModelRunError(RuntimeError):
    """onnxruntime accepted the feeds but failed while running the model."""


def _hide_under_own_errors(excinfo: Any) -> bool:
    """pytest leaves this module's frames out under its own one-line errors.

    They say what to fix in the caller's line (its feeds, its model file); any other
    exception is a bug in the plugin and keeps its whole traceback.
    """
    own = (ModelLoadError, ModelInputError, ModelRunError)
    return excinfo is not None and bool(excinfo.errisinstance(own))


__tracebackhide__ = _hide_under_own_errors


# --------------------------------------------------------------------------- signature


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of a model as onnxruntime reports it."""

    name: str
    dtype: str
    shape: tuple[Dim, ...]
    onnx_type: str

    @classmethod
    def from_node_arg(cls, arg: Any) -> TensorSpec:
        """The spec of an ``onnxruntime.NodeArg`` (unknown shapes become ``()``)."""
        onnx_type = str(arg.type)
        shape = tuple(arg.shape) if arg.shape is not None else ()
        return cls(arg.name, numpy_dtype_name(onnx_type), shape, onnx_type)

    @property
    def is_tensor(self) -> bool:
        return self.onnx_type.startswith("tensor(")

    @property
    def numpy_supported(self) -> bool:
        """Whether numpy can hold values of this type (and so build and check them)."""
        return self.dtype in NUMPY_DTYPES

    def describe(self) -> str:
        """``float32 [batch, 1, 8, 8]``: the way errors name what would be valid."""
        return f"{self.dtype} {format_shape(self.shape)}"


def numpy_dtype_name(onnx_type: str) -> str:
    """The numpy dtype name for an onnxruntime type string, else the ONNX type itself."""
    if onnx_type in ONNX_TO_NUMPY:
        return ONNX_TO_NUMPY[onnx_type]
    if onnx_type.startswith("tensor(") and onnx_type.endswith(")"):
        return onnx_type[len("tensor(") : -1]
    return onnx_type


def format_shape(shape: Sequence[Dim]) -> str:
    """``[batch, 1, 8, 8]``; an unknown dimension is shown as ``?``."""
    return "[" + ", ".join("?" if dim is None else str(dim) for dim in shape) + "]"


def _describe_fed(value: Any) -> str:
    """An array as ``float32 [2, 3]``; a sequence or map fed to a non-tensor input by type."""
    return _describe_array(value) if isinstance(value, np.ndarray) else type(value).__name__


def _describe_array(value: Array) -> str:
    dtype = "object" if value.dtype.kind in "OUS" else value.dtype.name
    return f"{dtype} {format_shape(value.shape)}"


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class SessionSettings:
    """How a session is built: the target's threads, providers and optimization level.

    Hashable, so that :class:`ModelCache` can key sessions on it.
    """

    intra_op_threads: int | None = None
    inter_op_threads: int = 1
    providers: tuple[str, ...] = (CPU_PROVIDER,)
    graph_optimization: str = "all"
    # ((provider, ((option, value as a string), ...)), ...): hashable, unlike a dict.
    provider_options: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "providers", tuple(self.providers))
        object.__setattr__(self, "provider_options", _frozen_options(self.provider_options))
        _check_threads("intra_op_threads", self.intra_op_threads, allow_none=True)
        _check_threads("inter_op_threads", self.inter_op_threads, allow_none=False)
        if self.graph_optimization not in GRAPH_OPTIMIZATION_LEVELS:
            valid = ", ".join(GRAPH_OPTIMIZATION_LEVELS)
            raise ValueError(
                f"graph_optimization: expected one of {valid}, got {self.graph_optimization!r}"
            )

    @classmethod
    def for_device(cls, device: Device | None, host_cpus: int | None = None) -> SessionSettings:
        """Settings that run a model as *device* would: as many intra-op threads as the
        cores a measurement is pinned to (its cpus, at most the host's usable cores:
        *host_cpus*, read from the host when None), its execution providers;
        onnxruntime's defaults when there is no target."""
        if device is None:
            return cls()
        # Imported here: the cold-start child loads this file alone, without the package.
        from ..config.providers import option_text
        from .pinning import cores_used

        threads = cores_used(device.cpus, host_cpus)
        options = tuple(
            (provider, tuple((key, option_text(value)) for key, value in table.items()))
            for provider, table in device.provider_options.items()
        )
        return cls(
            intra_op_threads=threads,
            providers=tuple(device.execution_providers),
            provider_options=options,
        )

    def options_for(self, provider: str) -> dict[str, str]:
        """The options this device gives *provider* (empty when none)."""
        return {
            key: value
            for name, pairs in self.provider_options
            if name == provider
            for key, value in pairs
        }

    def session_options(self) -> Any:
        """An ``onnxruntime.SessionOptions`` with these settings.

        Execution is sequential so that inter-op threads do not add parallelism the
        target would not have; warnings are silenced because provider fallback is
        reported through :attr:`DeployModel.notes` instead of stderr noise.

        No ``session.intra_op_thread_affinities``: with an explicit thread count
        onnxruntime pins none of its threads, and the measurement pins every thread
        of the process (its pool included) to the cores it chose, which it may choose
        afresh per measurement while this session is built once and cached.
        """
        options = ort.SessionOptions()
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.intra_op_num_threads = self.intra_op_threads or 0
        options.inter_op_num_threads = self.inter_op_threads
        level = GRAPH_OPTIMIZATION_LEVELS[self.graph_optimization]
        options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
        options.log_severity_level = 3
        return options

    def describe(self) -> str:
        threads = self.intra_op_threads if self.intra_op_threads else "default"
        return f"threads={threads}, providers={','.join(self.providers)}"


def _check_threads(name: str, value: int | None, *, allow_none: bool) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}: expected a whole number >= 1, got {value!r}")
    if value > MAX_THREADS:
        raise ValueError(f"{name}: expected a whole number from 1 to {MAX_THREADS}, got {value!r}")


def _frozen_options(options: Any) -> tuple[tuple[str, tuple[tuple[str, str], ...]], ...]:
    """*options* (a mapping or pairs of provider and its options) as sorted string pairs."""
    pairs = options.items() if isinstance(options, Mapping) else options
    frozen = []
    for provider, table in pairs:
        items = table.items() if isinstance(table, Mapping) else table
        frozen.append((str(provider), tuple(sorted((str(k), str(v)) for k, v in items))))
    return tuple(frozen)


def resolve_providers(
    requested: Sequence[str],
    available: Sequence[str],
    known: Sequence[str] | None = None,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The requested providers that exist here, in order, with CPU last as fallback.

    Returns ``(providers, notes)``: one note per requested provider that this
    onnxruntime build lacks, naming the provider that runs in its place and why.
    *known* (all providers onnxruntime knows of) turns a typo into a "did you mean".
    """
    usable = [p for p in requested if p in available and p != CPU_PROVIDER]
    providers = (*dict.fromkeys(usable), CPU_PROVIDER)
    reasons = missing_providers(requested, available, known)
    notes = [
        fallback_note(provider, _runs_instead(requested, providers, provider), reason)
        for provider, reason in reasons.items()
    ]
    return providers, tuple(notes)


def missing_providers(
    requested: Sequence[str], available: Sequence[str], known: Sequence[str] | None
) -> dict[str, str]:
    """Why each requested provider that this build lacks cannot run, by provider."""
    listing = ", ".join(available) or "none"
    reasons: dict[str, str] = {}
    for provider in requested:
        if provider in available or provider in reasons:
            continue
        if known is not None and provider not in known:
            hint = _did_you_mean(provider, known)
            reasons[provider] = f"not an onnxruntime execution provider{hint}"
        else:
            reasons[provider] = f"not in this onnxruntime build (available: {listing})"
    return reasons


def fallback_note(asked: str, ran: str, reason: str) -> str:
    """``CUDAExecutionProvider asked for, CPUExecutionProvider ran instead: <why>``."""
    shown = asked if asked.endswith("ExecutionProvider") else repr(asked)
    return f"{shown} asked for, {ran} ran instead: {reason}"


def _runs_instead(requested: Sequence[str], used: Sequence[str], provider: str) -> str:
    """The provider that takes *provider*'s nodes: the first one used that was not
    asked for ahead of it (those take their own nodes first)."""
    ahead = set(requested[: list(requested).index(provider)])
    return next((p for p in used if p not in ahead), used[0] if used else CPU_PROVIDER)


# --------------------------------------------------------------------------- model


class DeployModel:
    """A loaded model: the raw session plus its signature, checked feeds and examples.

    ``run`` checks the feeds (a few microseconds) and returns exactly what
    ``session.run`` returns; ``session`` is there for code that wants the raw runtime.
    """

    def __init__(
        self,
        name: str,
        path: Path,
        settings: SessionSettings,
        session: Any,
        notes: Sequence[str] = (),
        input_shapes: Mapping[str, tuple[int, ...]] | None = None,
        batch: int = 1,
    ) -> None:
        _check_batch(batch)
        self.name = name
        # The batch size the model is deployed with (the config's ``batch``): accuracy
        # is evaluated at it, since a dynamically quantized model's outputs depend on it.
        self.batch = batch
        self.path = path
        self.settings = settings
        self.session = session
        self.notes: tuple[str, ...] = tuple(notes)
        self.inputs = tuple(TensorSpec.from_node_arg(arg) for arg in session.get_inputs())
        self.outputs = tuple(TensorSpec.from_node_arg(arg) for arg in session.get_outputs())
        self._by_name = {spec.name: spec for spec in self.inputs}
        self._output_names = [spec.name for spec in self.outputs]
        self._plans = tuple(_InputPlan.for_spec(spec) for spec in self.inputs)
        self.input_shapes: dict[str, tuple[int, ...]] = self._checked_shapes(input_shapes or {})
        self._pools: dict[int | None, _FeedCycle] = {}
        # Called once with a note when example inputs first guess a dynamic dimension
        # (ModelSet records it as a check); None: nobody listens.
        self.note_listener: Callable[[str], None] | None = None
        self._guess_noted = False

    # ----------------------------------------------------------------- stand-in

    def signature_difference(self, other: DeployModel) -> str | None:
        """How *other*'s inputs and outputs differ from this model's, or None.

        Names, element types and ranks: what a feed built for one must also fit.
        """
        mine = [(s.name, s.dtype, len(s.shape)) for s in self.inputs]
        theirs = [(s.name, s.dtype, len(s.shape)) for s in other.inputs]
        if mine != theirs:
            return f"inputs differ: {_signature(self.inputs)} vs {_signature(other.inputs)}"
        if self._output_names != other._output_names:
            return f"outputs differ: {self._output_names} vs {other._output_names}"
        return None

    @contextlib.contextmanager
    def standing_in(self, other: DeployModel) -> Iterator[None]:
        """Run *other*'s session in this model's place for a while.

        The paired A/B comparison (``measure.duet``) times the same test body on the
        release's model and the candidate's: swapping the session under the object the
        test holds is what makes the body run the other model, unchanged.
        """
        problem = self.signature_difference(other)
        if problem is not None:
            raise ModelInputError(f"{self._label()}: cannot stand in for it: {problem}")
        saved = self.session
        self.session = other.session
        try:
            yield
        finally:
            self.session = saved

    # ----------------------------------------------------------------- running

    def run(self, feeds: Mapping[str, Any], output_names: Sequence[str] | None = None) -> list[Any]:
        """Run the model on *feeds* (input name -> numpy array) after checking them.

        Returns the outputs as onnxruntime does (a list, in ``output_names`` order or
        the model's).  Raises :class:`ModelInputError` for feeds that do not match the
        signature and :class:`ModelRunError` when onnxruntime fails on valid-looking
        feeds.
        """
        self.check_feeds(feeds)
        names = self._checked_output_names(output_names)
        try:
            outputs: list[Any] = self.session.run(names, dict(feeds))
        except _ORT_ERRORS as exc:
            message = f"{self._label()}: onnxruntime failed: {_run_message(exc)}"
            fed = f" (fed {self._feeds_listing(feeds)})"
            # from None: the message holds onnxruntime's, which would print twice.
            raise ModelRunError(message + fed + self._shapes_hint()) from None
        return outputs

    def _feeds_listing(self, feeds: Mapping[str, Any]) -> str:
        """``a float32 [2, 3], b int64 [3, 3]``: what onnxruntime was given, by input."""
        return ", ".join(f"{name} {_describe_fed(feeds[name])}" for name in self._by_name)

    def _shapes_hint(self) -> str:
        """Point at input_shapes when example shapes may have guessed a symbolic dim."""
        guessed = [
            spec.name
            for spec in self.inputs
            if spec.name not in self.input_shapes
            and any(not isinstance(dim, int) for dim in spec.shape[1:])
        ]
        if not guessed:
            return ""
        return (
            "; example inputs set symbolic dimensions other than the batch to 1: if the model"
            f" needs other sizes, set input_shapes for {', '.join(guessed)}"
        )

    def check_feeds(self, feeds: Mapping[str, Any]) -> None:
        """Raise :class:`ModelInputError` unless *feeds* match the model's inputs."""
        if not isinstance(feeds, Mapping):
            raise ModelInputError(
                f"model {self.name!r}: feeds must be a dict of input name -> numpy array,"
                f" got {type(feeds).__name__}; inputs: {self._inputs_listing()}"
            )
        self._check_names(feeds)
        for plan in self._plans:
            if plan.is_tensor:
                self._check_value(plan, feeds[plan.spec.name])

    def _check_names(self, feeds: Mapping[str, Any]) -> None:
        for name in feeds:
            if name not in self._by_name:
                hint = _did_you_mean(str(name), list(self._by_name))
                raise ModelInputError(
                    f"model {self.name!r}: unknown input {name!r}{hint};"
                    f" inputs: {self._inputs_listing()}"
                )
        missing = [spec.name for spec in self.inputs if spec.name not in feeds]
        if missing:
            raise ModelInputError(
                f"model {self.name!r}: missing input {missing[0]!r};"
                f" inputs: {self._inputs_listing()}"
            )

    def _check_value(self, plan: _InputPlan, value: Any) -> None:
        spec = plan.spec
        if not isinstance(value, np.ndarray):
            raise ModelInputError(
                f"model {self.name!r}, input {spec.name!r}: expected a numpy array of"
                f" {spec.describe()}, got {type(value).__name__}"
                " (build one with np.asarray(value, dtype=...))"
            )
        problem = plan.problem(value)
        if problem is not None:
            raise ModelInputError(
                f"model {self.name!r}, input {spec.name!r}: expected {spec.describe()}{problem}"
            )

    def _checked_output_names(self, output_names: Sequence[str] | None) -> list[str] | None:
        if output_names is None:
            return None
        if isinstance(output_names, str):
            output_names = [output_names]
        for name in output_names:
            if name not in self._output_names:
                raise ModelInputError(
                    f"model {self.name!r}: unknown output {name!r};"
                    f" outputs: {', '.join(self._output_names)}"
                )
        return list(output_names)

    # ----------------------------------------------------------------- shapes

    def concrete_shape(self, spec: TensorSpec, batch: int | None = None) -> tuple[int, ...]:
        """The shape example feeds of input *spec* get.

        The configured ``input_shapes`` entry wins, with its first dimension replaced
        by *batch* when one is given and the model's first dimension is not fixed.
        Otherwise a symbolic or unknown first dimension is the batch (*batch*, or 1)
        and every other symbolic dimension is 1.  A model whose symbolic dimensions
        cannot be 1 (a sequence length of at least 2, say) needs an ``input_shapes``
        entry: that constraint is invisible in the signature.
        """
        _check_batch(batch)
        configured = self.input_shapes.get(spec.name)
        if configured is not None:
            if batch is not None and configured and _is_batch_dim(spec.shape):
                return (batch, *configured[1:])
            return configured
        return tuple(
            _concrete_dim(dim, batch if axis == 0 else None) for axis, dim in enumerate(spec.shape)
        )

    def _checked_shapes(self, shapes: Mapping[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
        """Configured shapes, checked against the signature once, at load time."""
        checked: dict[str, tuple[int, ...]] = {}
        for name, dims in shapes.items():
            spec = self._by_name.get(name)
            if spec is None:
                raise ModelLoadError(
                    f"{self._label()}: input_shapes names unknown input {name!r};"
                    f" inputs: {self._inputs_listing()}"
                )
            checked[name] = tuple(int(d) for d in dims)
            problem = _shape_conflict(spec.shape, checked[name]) or _too_big_for_host(
                spec, checked[name]
            )
            if problem:
                raise ModelLoadError(
                    f"{self._label()}: input_shapes[{name!r}] = {format_shape(checked[name])}"
                    f" {problem}; the model's input is {spec.describe()}"
                )
        return checked

    # ----------------------------------------------------------------- examples

    def example_inputs(self, batch: int | None = None) -> dict[str, Array]:
        """Valid feeds built from the signature, different on each call.

        Successive calls cycle through a pool of seeded random feed sets (16 by
        default, fewer when one set is large, see ``POOL_BYTES_LIMIT``) so that no
        cache inside the runtime or the CPU can flatter a latency figure.  The pool is
        built once per batch size; each call costs a dict copy.  The arrays are
        read-only because they are shared between calls.
        """
        cycle = self._pools.get(batch)
        if cycle is None:
            _check_batch(batch)
            size = self._pool_size(batch)
            cycle = self._pools[batch] = _FeedCycle(self._frozen_pool(size, batch))
        return cycle.next()

    def input_pool(
        self, size: int = DEFAULT_POOL_SIZE, batch: int | None = None, seed: int = 0
    ) -> list[dict[str, Array]]:
        """*size* distinct feed sets of shape :meth:`concrete_shape`, from *seed*.

        Floats are uniform in [0, 1), integers in [0, 10), booleans fair coin flips and
        strings short digit strings: values every well-formed model accepts.
        """
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"input_pool: size must be a whole number >= 1, got {size!r}")
        self._check_batchable(batch)
        shapes = {spec.name: self.concrete_shape(spec, batch) for spec in self.inputs}
        self._check_pool_fits(shapes, size)
        self._note_guesses(shapes)
        rng = np.random.default_rng(seed)
        return [
            {spec.name: self._random_array(spec, shapes[spec.name], rng) for spec in self.inputs}
            for _ in range(size)
        ]

    def guessed_dims(self) -> tuple[tuple[str, int, Dim], ...]:
        """``(input, axis, dim)`` of every dynamic dimension example inputs set to 1.

        The first dimension is the batch and is not a guess; an input with an
        ``input_shapes`` entry has none.
        """
        return tuple(
            (spec.name, axis, dim)
            for spec in self.inputs
            if spec.name not in self.input_shapes
            for axis, dim in enumerate(spec.shape)
            if axis > 0 and not (isinstance(dim, int) and dim >= 0)
        )

    def guess_note(self, shapes: Mapping[str, tuple[int, ...]] | None = None) -> str:
        """One line saying which dimensions example inputs guessed, and how to set them."""
        guessed = self.guessed_dims()
        if not guessed:
            return ""
        if shapes is None:
            shapes = {spec.name: self.concrete_shape(spec) for spec in self.inputs}
        dims = "; ".join(
            f"input {name!r} dimension {axis} ({_dim_label(dim)}) = {shapes[name][axis]}"
            for name, axis, dim in guessed
        )
        names = dict.fromkeys(name for name, _, _ in guessed)
        table = ", ".join(f"{name} = {list(shapes[name])}" for name in names)
        return (
            f"model {self.name!r}: example inputs guessed dynamic dimensions the model does"
            f" not size: {dims}; if it needs other sizes, set them in"
            f" [tool.deploycheck.models.{self.name}] as input_shapes = {{ {table} }}"
        )

    def _note_guesses(self, shapes: Mapping[str, tuple[int, ...]]) -> None:
        if self._guess_noted or self.note_listener is None:
            return
        note = self.guess_note(shapes)
        if note:
            self._guess_noted = True
            self.note_listener(note)

    def _frozen_pool(self, size: int, batch: int | None) -> list[dict[str, Array]]:
        pool = self.input_pool(size, batch)
        for feeds in pool:
            for array in feeds.values():
                array.flags.writeable = False
        return pool

    def _pool_size(self, batch: int | None) -> int:
        # math.prod: exact for any size, where an int64 product would wrap around.
        one_set = sum(
            math.prod(self.concrete_shape(spec, batch)) * _itemsize(spec) for spec in self.inputs
        )
        if one_set * DEFAULT_POOL_SIZE <= POOL_BYTES_LIMIT:
            return DEFAULT_POOL_SIZE
        return max(MIN_POOL_SIZE, POOL_BYTES_LIMIT // max(one_set, 1))

    def _check_pool_fits(self, shapes: Mapping[str, tuple[int, ...]], size: int) -> None:
        """Refuse, in one line, example feeds that would take more memory than is free.

        Without this a batch of 10**8 or an ``input_shapes`` entry of 10**9 rows ends in
        numpy's MemoryError for hundreds of GiB (or in the kernel's OOM killer).
        """
        available = available_memory_bytes()
        if available is None or not self.inputs:
            return
        sizes = {s.name: math.prod(shapes[s.name]) * _itemsize(s) for s in self.inputs}
        # The values are drawn as float64 before the cast: one array's worth more.
        needed = sum(sizes.values()) * size + max(math.prod(v) for v in shapes.values()) * 8
        if needed <= available:
            return
        largest = max(self.inputs, key=lambda spec: sizes[spec.name])
        raise ModelInputError(
            f"{self._label()}: example inputs for input {largest.name!r} of shape"
            f" {format_shape(shapes[largest.name])} ({largest.dtype}) need"
            f" {_gigabytes(needed)} for {size} feed sets, more than the {_gigabytes(available)}"
            " of memory available; use a smaller batch or input_shapes entry"
        )

    def _check_batchable(self, batch: int | None) -> None:
        """A batch size the model cannot take is an error, not a silent batch of 1."""
        _check_batch(batch)
        if batch is None or not self.inputs:
            return
        takes_batch = [s for s in self.inputs if _is_batch_dim(s.shape)]
        fixed_at_batch = all(s.shape and s.shape[0] == batch for s in self.inputs)
        if not takes_batch and not fixed_at_batch:
            raise ModelInputError(
                f"model {self.name!r}: no input has a variable first (batch) dimension,"
                f" so batch {batch} is not possible; inputs: {self._inputs_listing()}"
            )

    def _random_array(self, spec: TensorSpec, shape: tuple[int, ...], rng: Any) -> Array:
        if not spec.is_tensor or not spec.numpy_supported:
            raise ModelInputError(
                f"model {self.name!r}, input {spec.name!r}: cannot build example values of"
                f" {spec.onnx_type} (numpy has no such type); pass feeds to run() yourself"
            )
        return _random_values(spec.dtype, shape, rng)

    # ----------------------------------------------------------------- display

    @property
    def providers(self) -> list[str]:
        """The execution providers the session actually uses, in priority order."""
        providers: list[str] = self.session.get_providers()
        return providers

    def _inputs_listing(self) -> str:
        return ", ".join(f"{s.name} {s.describe()}" for s in self.inputs) or "none"

    def _label(self) -> str:
        return f"model {self.name!r} ({display_path(self.path)})"

    def __repr__(self) -> str:
        threads = self.settings.intra_op_threads or "default"
        return (
            f"DeployModel({self.name!r}, {display_path(self.path)}, threads={threads},"
            f" providers={','.join(self.providers)})"
        )


class _FeedCycle:
    """Hands out a pool's feed sets in turn: O(1) per call, a fresh dict each time."""

    def __init__(self, pool: list[dict[str, Array]]) -> None:
        self.pool = pool
        self.index = 0

    def next(self) -> dict[str, Array]:
        feeds = self.pool[self.index]
        self.index = (self.index + 1) % len(self.pool)
        return dict(feeds)


def _did_you_mean(name: str, valid: Sequence[str]) -> str:
    """`` (did you mean 'image'?)`` for a near miss, ignoring case; else empty."""
    by_lower = {candidate.lower(): candidate for candidate in valid}
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=0.6)
    return f" (did you mean {by_lower[close[0]]!r}?)" if close else ""


@dataclass(frozen=True)
class _InputPlan:
    """One input's checks, worked out once: ``run`` pays for comparisons only."""

    spec: TensorSpec
    is_tensor: bool
    dtype: np.dtype[Any] | None  # None where numpy cannot check the type
    fixed: tuple[tuple[int, int], ...]  # (axis, size)

    @classmethod
    def for_spec(cls, spec: TensorSpec) -> _InputPlan:
        checkable = spec.is_tensor and spec.numpy_supported
        return cls(
            spec=spec,
            is_tensor=spec.is_tensor,
            dtype=np.dtype(spec.dtype) if checkable else None,
            fixed=tuple((a, d) for a, d in enumerate(spec.shape) if isinstance(d, int) and d >= 0),
        )

    def problem(self, value: Array) -> str | None:
        """What is wrong with *value*, as the end of the error message; else None.

        The message is formatted only once a check fails.  Symbolic dimensions are not
        compared across inputs or axes: onnxruntime does not, and exporters name
        unrelated dimensions alike (``?``, or one name for height and width).
        """
        dtype, shape = self.dtype, value.shape
        if dtype is not None and value.dtype != dtype and not _both_strings(dtype, value.dtype):
            return f", got {_describe_array(value)}"
        if len(shape) != len(self.spec.shape):
            rank = f"{len(self.spec.shape)} dimensions, not {len(shape)}"
            return f", got {_describe_array(value)} ({rank})"
        for axis, size in self.fixed:
            if shape[axis] != size:
                return f", got {_describe_array(value)} (dimension {axis} must be {size})"
        return None


def _dim_label(dim: Dim) -> str:
    """``'seq'``, or ``unnamed`` for a dimension the exporter gave no name."""
    return repr(dim) if isinstance(dim, str) and dim else "unnamed"


def _both_strings(expected: np.dtype[Any], actual: np.dtype[Any]) -> bool:
    # onnxruntime takes str and object arrays alike for tensor(string)
    return expected.kind == "O" and actual.kind in "OUS"


def _is_batch_dim(shape: tuple[Dim, ...]) -> bool:
    return bool(shape) and not (isinstance(shape[0], int) and shape[0] >= 0)


def _concrete_dim(dim: Dim, batch: int | None) -> int:
    if isinstance(dim, int) and dim >= 0:
        return dim
    return batch if batch is not None else 1


def _check_batch(batch: int | None) -> None:
    if batch is None:
        return
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a whole number >= 1, got {batch!r}")


def _shape_conflict(model_shape: tuple[Dim, ...], configured: tuple[int, ...]) -> str:
    if len(configured) != len(model_shape):
        return f"has {len(configured)} dimensions, not {len(model_shape)}"
    for axis, (dim, size) in enumerate(zip(model_shape, configured, strict=True)):
        if size < 1:
            return f"has dimension {axis} = {size}; dimensions must be >= 1"
        if isinstance(dim, int) and dim >= 0 and dim != size:
            return f"sets dimension {axis} to {size}, the model fixes it at {dim}"
    return ""


def available_memory_bytes() -> int | None:
    """Memory the host can hand out now without swapping (psutil); None if unknown."""
    return _virtual_memory("available")


def total_memory_bytes() -> int | None:
    """The host's physical memory (psutil); None if unknown."""
    return _virtual_memory("total")


def _virtual_memory(field: str) -> int | None:
    try:
        import psutil

        return int(getattr(psutil.virtual_memory(), field))
    except Exception:  # an exotic platform: no guard rather than no model
        return None


def _too_big_for_host(spec: TensorSpec, shape: tuple[int, ...]) -> str:
    """Why one array of *shape* cannot exist on this host at all, or ""."""
    total = total_memory_bytes()
    needed = math.prod(shape) * _itemsize(spec)
    if total is None or needed <= total:
        return ""
    return (
        f"needs {_gigabytes(needed)} for one array, more than this host's"
        f" {_gigabytes(total)} of memory"
    )


def _gigabytes(size_bytes: int) -> str:
    """``6.4 GB``, ``1,600 GB``: three figures, no exponent (this module imports no units)."""
    value = size_bytes / GB
    return f"{value:,.0f} GB" if value >= 100 else f"{value:.3g} GB"


def _itemsize(spec: TensorSpec) -> int:
    if not spec.numpy_supported or spec.dtype == "object":
        return 8
    return int(np.dtype(spec.dtype).itemsize)


def _random_values(dtype: str, shape: tuple[int, ...], rng: Any) -> Array:
    """Seeded values of *dtype* that any model accepts as ordinary input."""
    kind = np.dtype(dtype).kind
    if kind == "b":
        values: Array = rng.random(shape) < 0.5
        return values
    if kind in "iu":
        return np.asarray(rng.integers(INT_LOW, INT_HIGH, size=shape, dtype=dtype))
    if kind == "c":
        return np.asarray(rng.random(shape) + 1j * rng.random(shape), dtype=dtype)
    if kind == "O":
        digits = rng.integers(INT_LOW, INT_HIGH, size=shape)
        return np.asarray(digits.astype(str), dtype=object)
    return np.asarray(rng.random(shape), dtype=dtype)


def display_path(path: Path) -> str:
    """*path* relative to the working directory when it lies below it: shorter errors."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)


# --------------------------------------------------------------------------- loading


def load_model(
    name: str,
    path: Path,
    settings: SessionSettings,
    input_shapes: Mapping[str, tuple[int, ...]] | None = None,
    batch: int = 1,
) -> DeployModel:
    """Load the model at *path* with *settings*; :class:`ModelLoadError` when it cannot be.

    Providers this host lacks are dropped in favour of the next available one (CPU
    last) and the fallback is recorded in :attr:`DeployModel.notes`.
    """
    session, notes = open_session(name, Path(path), settings)
    return DeployModel(name, Path(path), settings, session, notes, input_shapes, batch)


def open_session(name: str, path: Path, settings: SessionSettings) -> tuple[Any, tuple[str, ...]]:
    """A new ``InferenceSession`` and the notes on how it differs from *settings*.

    A requested provider missing from this build, or one that fails to initialise
    (its error's first line is kept), is left out and the next one runs in its place,
    as onnxruntime itself would fall back, but with a note saying which and why.
    """
    label = f"model {name!r} ({display_path(path)})"
    _check_file(label, path)
    requested = settings.providers
    missing = missing_providers(requested, ort.get_available_providers(), ort.get_all_providers())
    usable = [p for p in requested if p not in missing and p != CPU_PROVIDER]
    try:
        session, failed = _session_with_fallback(path, settings, [*dict.fromkeys(usable)])
    except _ORT_ERRORS as exc:
        raise ModelLoadError(f"{label}: {_load_problem(exc)}") from None
    except (RuntimeError, ValueError, OSError) as exc:
        raise ModelLoadError(f"{label}: cannot be loaded: {_first_line(str(exc))}") from None
    return session, _provider_notes(requested, session.get_providers(), {**missing, **failed})


def _session_with_fallback(
    path: Path, settings: SessionSettings, accelerators: list[str]
) -> tuple[Any, dict[str, str]]:
    """A session on *accelerators* (then CPU), leaving out each one that fails to start.

    Only an accelerator is retried without: once CPU alone fails, the model itself is
    at fault and that error is raised.
    """
    failed: dict[str, str] = {}
    while True:
        try:
            return _new_session(path, settings, [*accelerators, CPU_PROVIDER]), failed
        except _RETRY_ERRORS as exc:
            if not accelerators:
                raise
            failed[accelerators.pop(0)] = f"failed to initialise: {_ort_message(exc)}"


def _new_session(path: Path, settings: SessionSettings, providers: Sequence[str]) -> Any:
    """One ``InferenceSession``; onnxruntime's own fallback is off (it prints to stdout
    and retries on CPU silently): :func:`_session_with_fallback` does it with a note."""
    with_options = [(p, settings.options_for(p)) for p in providers]
    return ort.InferenceSession(
        os.fspath(path),
        sess_options=settings.session_options(),
        providers=with_options,
        enable_fallback=0,
    )


def _check_file(label: str, path: Path) -> None:
    if path.is_dir():
        raise ModelLoadError(f"{label}: is a directory, expected an .onnx model file")
    if not path.exists():
        raise ModelLoadError(f"{label}: model file not found")
    if not os.access(path, os.R_OK):
        raise ModelLoadError(f"{label}: model file is not readable (check its permissions)")


def _load_problem(exc: Exception) -> str:
    message = _ort_message(exc)
    if type(exc).__name__ in ("InvalidProtobuf", "InvalidGraph") or "protobuf" in message.lower():
        return f"not a valid ONNX model: {message}"
    return f"onnxruntime {ort.__version__} cannot load it: {message}"


def _provider_notes(
    requested: Sequence[str], used: Sequence[str], reasons: Mapping[str, str]
) -> tuple[str, ...]:
    """One note per requested provider the session does not use: which runs instead, why.

    A provider onnxruntime dropped without an error (CUDA without its libraries only
    logs a warning, silenced here) is said to have failed to initialise all the same.
    """
    silent = "failed to initialise (onnxruntime dropped it without an error)"
    notes = [
        fallback_note(p, _runs_instead(requested, used, p), reasons.get(p, silent))
        for p in dict.fromkeys(requested)
        if p not in used
    ]
    return tuple(notes)


def _ort_message(exc: BaseException) -> str:
    """onnxruntime's message without its error-code prefix, first line only."""
    text = _ORT_PREFIX.sub("", _first_line(str(exc)))
    return _LOAD_PREFIX.sub("", text) or type(exc).__name__


def _run_message(exc: BaseException) -> str:
    """``Reshape node failed: <reason>`` from onnxruntime's kernel failure text."""
    message = _ort_message(exc)
    match = _KERNEL_FAILURE.match(message)
    if match is None:
        return message
    op_type, node, detail = match.groups()
    detail = _SOURCE_PREFIX.sub("", detail)
    where = f"{op_type} node {node!r}" if node else f"{op_type} node"
    return f"{where} failed: {detail}"


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


# --------------------------------------------------------------------------- cache


def _signature(specs: Sequence[TensorSpec]) -> str:
    return ", ".join(f"{spec.name} {spec.describe()}" for spec in specs)


class ModelCache:
    """One session per (file, its mtime and size, settings): each model loads once.

    A test session asks for the same model from many tests; building a session again
    each time would cost seconds for large models.  The file's modification time and
    size are part of the key, so a rebuilt model is loaded afresh (and the stale
    session dropped) instead of serving yesterday's weights.
    """

    def __init__(self) -> None:
        self._sessions: dict[tuple[Any, ...], tuple[Any, tuple[str, ...]]] = {}
        self._models: dict[tuple[Any, ...], DeployModel] = {}

    def get(
        self,
        name: str,
        path: Path,
        settings: SessionSettings,
        input_shapes: Mapping[str, tuple[int, ...]] | None = None,
        batch: int = 1,
    ) -> DeployModel:
        """The model at *path* loaded with *settings*, from the cache when unchanged."""
        file_key = _file_key(name, Path(path))
        session_key = (*file_key, settings)
        shapes_key = tuple(sorted((k, tuple(v)) for k, v in (input_shapes or {}).items()))
        model_key = (*session_key, name, shapes_key, batch)
        model = self._models.get(model_key)
        if model is not None:
            return model
        self._drop_stale(file_key)
        if session_key not in self._sessions:
            self._sessions[session_key] = open_session(name, Path(path), settings)
        session, notes = self._sessions[session_key]
        model = DeployModel(name, Path(path), settings, session, notes, input_shapes, batch)
        self._models[model_key] = model
        return model

    def clear(self) -> None:
        """Forget every session (their memory is freed once no test holds them)."""
        self._sessions.clear()
        self._models.clear()

    def __len__(self) -> int:
        return len(self._sessions)

    def _drop_stale(self, file_key: tuple[Any, ...]) -> None:
        resolved = file_key[0]
        for cache in (self._sessions, self._models):
            stale = [k for k in cache if k[0] == resolved and k[:3] != file_key]
            for key in stale:
                del cache[key]


def _file_key(name: str, path: Path) -> tuple[str, int, int]:
    label = f"model {name!r} ({display_path(path)})"
    _check_file(label, path)
    try:
        resolved = path.resolve()
        stat = resolved.stat()
    except OSError as exc:
        raise ModelLoadError(f"{label}: cannot be read: {exc.strerror or exc}") from None
    return (str(resolved), stat.st_mtime_ns, stat.st_size)
