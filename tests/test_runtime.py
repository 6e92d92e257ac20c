"""Loading models as the target runs them, checked feeds, example inputs, the cache."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnxruntime as ort  # type: ignore[import-untyped]
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_deploycheck.config.schema import Device
from pytest_deploycheck.measure import runtime
from pytest_deploycheck.measure.runtime import (
    DeployModel,
    ModelCache,
    ModelInputError,
    ModelLoadError,
    ModelRunError,
    SessionSettings,
    TensorSpec,
    load_model,
    numpy_dtype_name,
    resolve_providers,
)

if TYPE_CHECKING:
    from conftest import DeployProject

MODELS = Path(__file__).parent / "models"
EXAMPLE_MODELS = Path(__file__).parent.parent / "example_project" / "models"
TINY = MODELS / "tiny_linear.onnx"
CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"


def load(file: str, name: str = "optimized", **kwargs: object) -> DeployModel:
    shapes = kwargs.pop("input_shapes", None)
    return load_model(name, MODELS / file, SessionSettings(**kwargs), shapes)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def tiny() -> DeployModel:
    return load("tiny_linear.onnx")


@pytest.fixture(scope="module")
def two() -> DeployModel:
    return load("two_inputs.onnx")


# --------------------------------------------------------------------------- settings


def test_load_applies_threads_optimization_and_providers() -> None:
    model = load("tiny_linear.onnx", intra_op_threads=2, graph_optimization="basic")
    options = model.session.get_session_options()
    assert options.intra_op_num_threads == 2
    assert options.inter_op_num_threads == 1
    assert options.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    assert model.session.get_providers() == [CPU]
    assert model.notes == ()


def test_default_threads_leave_onnxruntime_to_choose(tiny: DeployModel) -> None:
    assert tiny.session.get_session_options().intra_op_num_threads == 0
    assert tiny.session.get_session_options().graph_optimization_level == (
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    )


def test_settings_for_device_take_cpus_and_providers() -> None:
    device = Device(name="edge-a", cpus=3, execution_providers=(CUDA, CPU))
    assert SessionSettings.for_device(device, host_cpus=8) == SessionSettings(
        intra_op_threads=3, providers=(CUDA, CPU)
    )
    assert SessionSettings.for_device(Device(name="bare")).intra_op_threads is None
    assert SessionSettings.for_device(None) == SessionSettings()


@pytest.mark.parametrize(("cpus", "host", "threads"), [(4, 2, 2), (4, 1, 1), (2, 2, 2), (2, 16, 2)])
def test_intra_op_threads_follow_the_cores_used(cpus: int, host: int, threads: int) -> None:
    """More threads than host cores would time the contention: 4 on 2 ran 2.5x slower."""
    device = Device(name="edge-c", cpus=cpus)
    assert SessionSettings.for_device(device, host_cpus=host).intra_op_threads == threads


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"graph_optimization": "max"}, "graph_optimization: expected one of disable, basic,"),
        ({"intra_op_threads": 0}, "intra_op_threads: expected a whole number >= 1, got 0"),
        ({"inter_op_threads": True}, "inter_op_threads: expected a whole number >= 1"),
    ],
)
def test_settings_reject_invalid_values(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match="^" + message):
        SessionSettings(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("threads", [1025, 5000, 10**30])
def test_thread_counts_beyond_any_host_are_refused(threads: int) -> None:
    # onnxruntime would build a pool of 5000 threads for minutes, or raise a TypeError.
    message = f"intra_op_threads: expected a whole number from 1 to 1024, got {threads}"
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        SessionSettings(intra_op_threads=threads)
    assert SessionSettings(intra_op_threads=1024).intra_op_threads == 1024


def test_settings_are_hashable_with_list_providers() -> None:
    settings = SessionSettings(providers=[CPU])  # type: ignore[arg-type]
    assert settings.providers == (CPU,)
    assert hash(settings) == hash(SessionSettings())


# --------------------------------------------------------------------------- providers


def test_missing_provider_falls_back_to_cpu_with_a_note() -> None:
    providers, notes = resolve_providers([CUDA, CPU], [CPU])
    assert providers == (CPU,)
    assert notes == (
        "CUDAExecutionProvider asked for, CPUExecutionProvider ran instead:"
        " not in this onnxruntime build (available: CPUExecutionProvider)",
    )


def test_providers_keep_order_and_put_cpu_last() -> None:
    assert resolve_providers([CPU, CUDA], [CUDA, CPU]) == ((CUDA, CPU), ())
    assert resolve_providers([], [CPU]) == ((CPU,), ())


def test_missing_provider_falls_back_to_the_next_available_one() -> None:
    providers, notes = resolve_providers(["TensorrtExecutionProvider", CUDA], [CUDA, CPU])
    assert providers == (CUDA, CPU)
    assert notes[0].startswith(
        "TensorrtExecutionProvider asked for, CUDAExecutionProvider ran instead:"
    )


def test_provider_typo_gets_a_suggestion() -> None:
    _, notes = resolve_providers(["CUDAExecutionprovider"], [CPU], known=[CUDA, CPU])
    assert notes == (
        "'CUDAExecutionprovider' asked for, CPUExecutionProvider ran instead:"
        " not an onnxruntime execution provider (did you mean 'CUDAExecutionProvider'?)",
    )


@pytest.mark.skipif(CUDA in ort.get_available_providers(), reason="CUDA is available here")
def test_loaded_model_records_the_provider_fallback() -> None:
    model = load("tiny_linear.onnx", providers=(CUDA,))
    assert model.session.get_providers() == [CPU]
    assert len(model.notes) == 1
    assert model.notes[0].startswith(
        "CUDAExecutionProvider asked for, CPUExecutionProvider ran instead:"
        " not in this onnxruntime build"
    )


# --------------------------------------------------------------------------- load errors


def assert_one_line(error: BaseException, *fragments: str) -> None:
    text = str(error)
    assert "\n" not in text
    for fragment in fragments:
        assert fragment in text


def test_missing_file_is_one_line_naming_model_and_path(tmp_path: Path) -> None:
    path = tmp_path / "gone.onnx"
    with pytest.raises(ModelLoadError) as excinfo:
        load_model("optimized", path, SessionSettings())
    assert_one_line(excinfo.value, "model 'optimized'", str(path), "model file not found")


def test_corrupt_file_is_one_line_naming_model_and_path() -> None:
    with pytest.raises(ModelLoadError) as excinfo:
        load("not_a_model.onnx")
    assert_one_line(
        excinfo.value,
        "model 'optimized' (",
        "not_a_model.onnx): not a valid ONNX model: Protobuf parsing failed",
    )
    assert "ONNXRuntimeError" not in str(excinfo.value)


def test_empty_file_is_not_a_valid_model(tmp_path: Path) -> None:
    path = tmp_path / "empty.onnx"
    path.write_bytes(b"")
    with pytest.raises(ModelLoadError, match="not a valid ONNX model"):
        load_model("baseline", path, SessionSettings())


def test_directory_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"is a directory, expected an \.onnx model file"):
        load_model("baseline", tmp_path, SessionSettings())


def test_paths_below_the_working_directory_are_shown_relative(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(MODELS.parent)
    with pytest.raises(ModelLoadError) as excinfo:
        load("not_a_model.onnx")
    assert str(excinfo.value).startswith(
        f"model 'optimized' ({Path('models', 'not_a_model.onnx')}): not a valid ONNX model"
    )


# --------------------------------------------------------------------------- signature


def test_signature_of_the_example_classifier() -> None:
    model = load_model("baseline", EXAMPLE_MODELS / "classifier_fp32.onnx", SessionSettings())
    assert model.inputs == (TensorSpec("image", "float32", ("batch", 1, 8, 8), "tensor(float)"),)
    assert [o.name for o in model.outputs] == ["logits", "probabilities"]
    assert model.inputs[0].describe() == "float32 [batch, 1, 8, 8]"


def test_every_numpy_representable_type_maps_to_its_dtype() -> None:
    model = load("many_types.onnx")
    for spec in model.inputs:
        assert spec.dtype == spec.name.removeprefix("t_").replace("string", "object")
        assert spec.numpy_supported


@pytest.mark.parametrize(
    ("onnx_type", "dtype"),
    [
        ("tensor(float)", "float32"),
        ("tensor(double)", "float64"),
        ("tensor(int64)", "int64"),
        ("tensor(string)", "object"),
        ("tensor(bfloat16)", "bfloat16"),
        ("seq(tensor(float))", "seq(tensor(float))"),
    ],
)
def test_numpy_dtype_names(onnx_type: str, dtype: str) -> None:
    assert numpy_dtype_name(onnx_type) == dtype


def test_types_numpy_cannot_hold_are_marked_unsupported() -> None:
    spec = TensorSpec("x", numpy_dtype_name("tensor(bfloat16)"), (2,), "tensor(bfloat16)")
    assert not spec.numpy_supported


def test_repr_names_model_path_threads_and_providers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(MODELS.parent)
    model = load_model("optimized", TINY, SessionSettings(intra_op_threads=4))
    expected_path = Path("models", "tiny_linear.onnx")
    assert repr(model) == (
        f"DeployModel('optimized', {expected_path}, threads=4, providers=CPUExecutionProvider)"
    )


# --------------------------------------------------------------------------- feeds


def test_run_returns_what_the_session_returns(tiny: DeployModel) -> None:
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    outputs = tiny.run({"x": x})
    expected = tiny.session.run(None, {"x": x})
    assert len(outputs) == 1
    np.testing.assert_array_equal(outputs[0], expected[0])
    assert tiny.run({"x": x}, ["y"])[0].shape == (2, 2)


F32 = np.float32
I64 = np.int64
F64 = np.float64


@pytest.mark.parametrize(
    ("feeds", "message"),
    [
        (
            {"x": np.zeros((1, 4), I64)},
            "model 'optimized', input 'x': expected float32 [batch, 4], got int64 [1, 4]",
        ),
        (
            {"x": np.zeros((4,), F32)},
            "model 'optimized', input 'x': expected float32 [batch, 4], got float32 [4]"
            " (2 dimensions, not 1)",
        ),
        (
            {"x": np.zeros((2, 5), F32)},
            "model 'optimized', input 'x': expected float32 [batch, 4], got float32 [2, 5]"
            " (dimension 1 must be 4)",
        ),
        ({}, "model 'optimized': missing input 'x'; inputs: x float32 [batch, 4]"),
        (
            {"x": np.zeros((1, 4), F32), "X": np.zeros((1, 4), F32)},
            "model 'optimized': unknown input 'X' (did you mean 'x'?);"
            " inputs: x float32 [batch, 4]",
        ),
        (
            {"x": [[0.0, 1.0, 2.0, 3.0]]},
            "model 'optimized', input 'x': expected a numpy array of float32 [batch, 4], got list",
        ),
        (
            {"x": np.float32(1.0)},
            "model 'optimized', input 'x': expected a numpy array of float32 [batch, 4],"
            " got float32",
        ),
        (
            [np.zeros((1, 4), F32)],
            "model 'optimized': feeds must be a dict of input name -> numpy array, got list",
        ),
    ],
    ids=["dtype", "rank", "fixed-dim", "missing", "unknown", "list", "scalar", "not-a-dict"],
)
def test_feed_errors_are_one_readable_line(tiny: DeployModel, feeds: object, message: str) -> None:
    with pytest.raises(ModelInputError) as excinfo:
        tiny.run(feeds)  # type: ignore[arg-type]
    assert_one_line(excinfo.value)
    assert str(excinfo.value).startswith(message)


def test_the_brief_example_message() -> None:
    model = load_model("optimized", EXAMPLE_MODELS / "classifier_int8.onnx", SessionSettings())
    with pytest.raises(ModelInputError) as excinfo:
        model.run({"image": np.zeros((1, 8, 8), I64)})
    assert str(excinfo.value) == (
        "model 'optimized', input 'image': expected float32 [batch, 1, 8, 8], got int64 [1, 8, 8]"
    )


def test_a_named_dimension_is_a_hint_so_onnxruntime_judges_the_sizes(two: DeployModel) -> None:
    # 'batch' 2 in a and 3 in b: the plugin does not refuse it (onnxruntime would not
    # either); the Add that cannot broadcast does, and its error is one line.
    feeds = {"a": np.zeros((2, 3), F32), "b": np.zeros((3, 3), I64)}
    with pytest.raises(ModelRunError) as excinfo:
        two.run(feeds)
    assert_one_line(
        excinfo.value,
        "model 'optimized' (",
        "two_inputs.onnx): onnxruntime failed: Add node failed: Attempting to broadcast",
        "(fed a float32 [2, 3], b int64 [3, 3])",
    )


@pytest.fixture(scope="module")
def reused() -> DeployModel:
    return load("reused_dims.onnx", name="cls")


def test_a_reused_symbolic_name_takes_unrelated_sizes(reused: DeployModel) -> None:
    # image is [N, 3, N, N]: the text-direction classifier's feed [4, 3, 48, 192] runs
    feeds = {"image": np.zeros((4, 3, 48, 192), F32), "extra": np.zeros((2, 5), F32)}
    outputs = reused.run(feeds)
    assert [out.shape for out in outputs] == [(4, 3, 48, 192), (2, 5)]


@pytest.mark.parametrize(
    ("feeds", "message"),
    [
        (
            {"image": np.zeros((4, 3, 48), F32), "extra": np.zeros((2, 5), F32)},
            "model 'cls', input 'image': expected float32 [N, 3, N, N], got float32 [4, 3, 48]"
            " (4 dimensions, not 3)",
        ),
        (
            {"image": np.zeros((4, 3, 48, 192), F64), "extra": np.zeros((2, 5), F32)},
            "model 'cls', input 'image': expected float32 [N, 3, N, N], got float64",
        ),
        (
            {"image": np.zeros((4, 1, 48, 192), F32), "extra": np.zeros((2, 5), F32)},
            "model 'cls', input 'image': expected float32 [N, 3, N, N], got float32"
            " [4, 1, 48, 192] (dimension 1 must be 3)",
        ),
        (
            {"image": np.zeros((4, 3, 4, 4), F32), "extras": np.zeros((2, 5), F32)},
            "model 'cls': unknown input 'extras' (did you mean 'extra'?)",
        ),
        (
            {"image": np.zeros((4, 3, 4, 4), F32)},
            "model 'cls': missing input 'extra'",
        ),
    ],
    ids=["rank", "dtype", "fixed-dim", "unknown", "missing"],
)
def test_what_onnxruntime_refuses_is_refused_in_one_line(
    reused: DeployModel, feeds: dict[str, np.ndarray], message: str
) -> None:
    with pytest.raises(ModelInputError) as excinfo:
        reused.run(feeds)
    assert_one_line(excinfo.value)
    assert str(excinfo.value).startswith(message)


def test_guessed_dimensions_are_noted_once_with_how_to_set_them() -> None:
    model = load("reused_dims.onnx", name="cls")
    heard: list[str] = []
    model.note_listener = heard.append
    model.example_inputs()
    model.example_inputs(batch=2)
    assert heard == [
        "model 'cls': example inputs guessed dynamic dimensions the model does not size:"
        " input 'image' dimension 2 ('N') = 1; input 'image' dimension 3 ('N') = 1;"
        " input 'extra' dimension 1 (unnamed) = 1; if it needs other sizes, set them in"
        " [tool.deploycheck.models.cls] as input_shapes = { image = [1, 3, 1, 1], extra = [1, 1] }"
    ]


def test_configured_shapes_and_fixed_models_guess_nothing() -> None:
    shaped = load("reused_dims.onnx", input_shapes={"image": (1, 3, 48, 192), "extra": (1, 5)})
    assert shaped.guessed_dims() == ()
    assert shaped.guess_note() == ""
    assert load("tiny_linear.onnx").guessed_dims() == ()  # only the batch is dynamic
    assert load("shapes.onnx").guessed_dims() == (("tokens", 1, "seq"),)


def test_unknown_output_name_lists_the_outputs(tiny: DeployModel) -> None:
    with pytest.raises(
        ModelInputError, match=r"^model 'optimized': unknown output 'z'; outputs: y$"
    ):
        tiny.run(tiny.example_inputs(), ["z"])


def test_string_inputs_accept_str_and_object_arrays() -> None:
    model = load("many_types.onnx")
    feeds = model.example_inputs()
    feeds["t_string"] = np.array([["a", "b"]])
    assert model.run(feeds)[-1].tolist() == [["a", "b"]]


@settings(max_examples=60, deadline=None)
@given(
    dtype=st.sampled_from(["float32", "float64", "int64", "int32", "bool", "float16"]),
    shape=st.lists(st.integers(min_value=0, max_value=5), min_size=0, max_size=3),
)
def test_fuzzed_feeds_never_reach_onnxruntime_invalid(dtype: str, shape: list[int]) -> None:
    """Whatever the array, run() either succeeds or raises the readable error."""
    model = _fuzz_model()
    try:
        outputs = model.run({"x": np.zeros(shape, dtype=dtype)})
    except ModelInputError as exc:
        assert_one_line(exc, "model 'fuzz', input 'x': expected float32 [batch, 4], got")
        return
    assert outputs[0].shape == (shape[0], 2)


_FUZZ: list[DeployModel] = []


def _fuzz_model() -> DeployModel:
    if not _FUZZ:
        _FUZZ.append(load_model("fuzz", TINY, SessionSettings(intra_op_threads=1)))
    return _FUZZ[0]


# --------------------------------------------------------------------------- examples


@pytest.mark.parametrize(
    "path",
    [
        TINY,
        MODELS / "two_inputs.onnx",
        MODELS / "many_types.onnx",
        MODELS / "shapes.onnx",
        MODELS / "fixed_only.onnx",
        EXAMPLE_MODELS / "classifier_fp32.onnx",
        EXAMPLE_MODELS / "classifier_int8.onnx",
    ],
    ids=lambda p: p.stem,
)
def test_example_inputs_are_valid_feeds(path: Path) -> None:
    model = load_model(path.stem, path, SessionSettings(intra_op_threads=1))
    outputs = model.run(model.example_inputs())
    assert len(outputs) == len(model.outputs)


def test_example_inputs_cycle_through_16_distinct_feed_sets(tiny: DeployModel) -> None:
    model = load_model("cycle", TINY, SessionSettings())
    seen = [model.example_inputs()["x"] for _ in range(17)]
    distinct = {array.tobytes() for array in seen[:16]}
    assert len(distinct) == 16
    assert seen[16] is seen[0]
    assert not any(np.array_equal(seen[i], seen[i + 1]) for i in range(15))


def test_example_feeds_are_fresh_dicts_of_read_only_arrays(tiny: DeployModel) -> None:
    model = load_model("fresh", TINY, SessionSettings())
    feeds = model.example_inputs()
    feeds["extra"] = np.zeros(1)
    for _ in range(15):
        model.example_inputs()
    again = model.example_inputs()
    assert set(again) == {"x"}
    assert not again["x"].flags.writeable


def test_example_values_are_in_the_documented_ranges() -> None:
    model = load("many_types.onnx")
    feeds = model.input_pool(size=4, batch=3, seed=1)
    for feed in feeds:
        for name, array in feed.items():
            dtype = name.removeprefix("t_").replace("string", "object")
            assert array.dtype == np.dtype(dtype)
            assert array.shape == (3, 2)
            if array.dtype.kind in "iu":
                assert array.min() >= 0 and array.max() < 10
            if array.dtype.kind == "f":
                assert array.min() >= 0 and array.max() < 1


def test_input_pool_is_seeded(two: DeployModel) -> None:
    first, again, other = (two.input_pool(size=3, seed=s) for s in (7, 7, 8))
    assert all(np.array_equal(a["a"], b["a"]) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first[0]["a"], other[0]["a"])
    assert len(first) == 3


def test_example_inputs_take_a_batch_size(two: DeployModel) -> None:
    feeds = two.example_inputs(batch=5)
    assert {name: array.shape for name, array in feeds.items()} == {"a": (5, 3), "b": (5, 3)}
    assert two.run(feeds)[0].shape == (5, 3)
    assert two.example_inputs()["a"].shape == (1, 3)


def test_large_feed_sets_make_a_smaller_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "POOL_BYTES_LIMIT", 4 * 4 * 100 * 4)  # four sets of batch 100
    model = load_model("big", TINY, SessionSettings())
    seen = [model.example_inputs(batch=100)["x"] for _ in range(5)]
    assert seen[4] is seen[0]
    assert len({array.tobytes() for array in seen[:4]}) == 4


def test_a_batch_the_model_cannot_take_is_an_error() -> None:
    model = load("fixed_only.onnx")
    with pytest.raises(ModelInputError) as excinfo:
        model.example_inputs(batch=4)
    assert str(excinfo.value) == (
        "model 'optimized': no input has a variable first (batch) dimension, so batch 4 is not"
        " possible; inputs: x float32 [1, 4]"
    )
    assert model.example_inputs(batch=1)["x"].shape == (1, 4)


@pytest.mark.parametrize("batch", [0, -1, 1.5, True])
def test_invalid_batch_sizes_are_rejected(tiny: DeployModel, batch: object) -> None:
    with pytest.raises(ValueError, match="batch must be a whole number >= 1"):
        tiny.example_inputs(batch=batch)  # type: ignore[arg-type]


def test_example_inputs_larger_than_the_free_memory_are_refused_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runtime, "available_memory_bytes", lambda: 10**9)  # 1 GB free
    model = load_model("big", TINY, SessionSettings())
    with pytest.raises(ModelInputError) as excinfo:
        model.example_inputs(batch=10**8)  # 1.6 GB a feed set
    message = str(excinfo.value)
    assert "\n" not in message
    assert re.fullmatch(
        r"model 'big'.*: example inputs for input 'x' of shape \[100000000, 4\] \(float32\)"
        r" need 6\.4 GB for 2 feed sets, more than the 1 GB of memory available;"
        r" use a smaller batch or input_shapes entry",
        message,
    ), message
    assert model.example_inputs(batch=1000)["x"].shape == (1000, 4)


def test_a_configured_shape_larger_than_the_host_is_refused_at_load(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runtime, "total_memory_bytes", lambda: 10 * 10**9)
    with pytest.raises(ModelLoadError) as excinfo:
        load("tiny_linear.onnx", input_shapes={"x": (10**9, 4)})
    assert str(excinfo.value).endswith(
        ": input_shapes['x'] = [1000000000, 4] needs 16 GB for one array, more than this"
        " host's 10 GB of memory; the model's input is float32 [batch, 4]"
    )
    assert load("tiny_linear.onnx", input_shapes={"x": (10**8, 4)}).input_shapes


# --------------------------------------------------------------------------- shapes


def test_concrete_shapes_default_symbolic_dims_to_batch_then_one() -> None:
    model = load("shapes.onnx")
    shapes = {spec.name: model.concrete_shape(spec) for spec in model.inputs}
    assert shapes == {"tokens": (1, 1), "fixed": (3, 2), "scale": ()}
    batched = {spec.name: model.concrete_shape(spec, batch=4) for spec in model.inputs}
    assert batched == {"tokens": (4, 1), "fixed": (3, 2), "scale": ()}


def test_configured_input_shapes_win_and_take_the_batch() -> None:
    model = load("shapes.onnx", input_shapes={"tokens": (2, 7)})
    tokens = model.inputs[0]
    assert model.input_shapes == {"tokens": (2, 7)}
    assert model.concrete_shape(tokens) == (2, 7)
    assert model.concrete_shape(tokens, batch=5) == (5, 7)
    feeds = model.example_inputs(batch=3)
    assert feeds["tokens"].shape == (3, 7)
    assert model.run(feeds)[0].shape == (3, 7)


@pytest.mark.parametrize(
    ("shapes", "message"),
    [
        (
            {"token": (1, 7)},
            "input_shapes names unknown input 'token'; inputs: tokens int64 [batch, seq],",
        ),
        (
            {"tokens": (1, 7, 2)},
            "input_shapes['tokens'] = [1, 7, 2] has 3 dimensions, not 2;"
            " the model's input is int64 [batch, seq]",
        ),
        (
            {"fixed": (2, 2)},
            "input_shapes['fixed'] = [2, 2] sets dimension 0 to 2, the model fixes it at 3;"
            " the model's input is float32 [3, 2]",
        ),
    ],
)
def test_configured_shapes_that_do_not_fit_fail_at_load(
    shapes: dict[str, tuple[int, ...]], message: str
) -> None:
    with pytest.raises(ModelLoadError) as excinfo:
        load("shapes.onnx", input_shapes=shapes)
    assert_one_line(excinfo.value, "model 'optimized' (", message)


def test_a_runtime_failure_is_one_line_pointing_at_input_shapes() -> None:
    model = load("needs_even.onnx")
    with pytest.raises(ModelRunError) as excinfo:
        model.run(model.example_inputs())
    assert_one_line(
        excinfo.value,
        "model 'optimized' (",
        "needs_even.onnx): onnxruntime failed: Reshape node failed: The input tensor cannot be"
        " reshaped to the requested shape.",
        "set input_shapes for x",
    )
    assert "reshape_helper" not in str(excinfo.value)


def test_input_shapes_make_such_a_model_runnable() -> None:
    model = load("needs_even.onnx", input_shapes={"x": (1, 4)})
    assert model.run(model.example_inputs())[0].shape == (2, 2)


# --------------------------------------------------------------------------- cache


def test_cache_loads_each_model_once() -> None:
    cache = ModelCache()
    settings = SessionSettings(intra_op_threads=1)
    first = cache.get("optimized", TINY, settings)
    assert cache.get("optimized", TINY, settings) is first
    assert cache.get("optimized", TINY, SessionSettings(intra_op_threads=1)) is first
    assert len(cache) == 1


def test_cache_keys_on_settings_and_shares_sessions_across_names() -> None:
    cache = ModelCache()
    one = cache.get("optimized", TINY, SessionSettings(intra_op_threads=1))
    two = cache.get("optimized", TINY, SessionSettings(intra_op_threads=2))
    alias = cache.get("alias", TINY, SessionSettings(intra_op_threads=1))
    assert one is not two
    assert two.session.get_session_options().intra_op_num_threads == 2
    assert alias.session is one.session
    assert alias.name == "alias"
    assert len(cache) == 2


def test_cache_reloads_a_model_whose_file_changed(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    shutil.copyfile(TINY, path)
    cache = ModelCache()
    before = cache.get("optimized", path, SessionSettings())
    shutil.copyfile(MODELS / "two_inputs.onnx", path)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    after = cache.get("optimized", path, SessionSettings())
    assert after is not before
    assert [spec.name for spec in after.inputs] == ["a", "b"]
    assert len(cache) == 1  # the stale session was dropped


def test_the_deployed_batch_is_part_of_the_cache_key() -> None:
    cache = ModelCache()
    one = cache.get("optimized", TINY, SessionSettings())
    four = cache.get("optimized", TINY, SessionSettings(), batch=4)
    assert (one.batch, four.batch) == (1, 4)
    assert four.session is one.session  # one session: the batch is the model's, not ORT's
    with pytest.raises(ValueError, match=r"^batch must be a whole number >= 1, got 0$"):
        cache.get("optimized", TINY, SessionSettings(), batch=0)


def test_cache_reports_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"^model 'optimized' \(.*\): model file not found$"):
        ModelCache().get("optimized", tmp_path / "none.onnx", SessionSettings())


# --------------------------------------------------------------------------- test models


@pytest.mark.skipif(importlib.util.find_spec("onnx") is None, reason="needs onnx (examples extra)")
def test_committed_test_models_match_their_builder(tmp_path: Path) -> None:
    # a subprocess, because the tests themselves must not import onnx
    builder = MODELS / "build_test_models.py"
    subprocess.run([sys.executable, str(builder), str(tmp_path)], check=True, capture_output=True)
    built = sorted(p.name for p in tmp_path.iterdir())
    assert built == sorted(p.name for p in MODELS.glob("*.onnx"))
    for name in built:
        assert (tmp_path / name).read_bytes() == (MODELS / name).read_bytes(), name


# --------------------------------------------------------------------------- in a run


def test_a_run_notes_the_guessed_dimensions_in_its_summary(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    project = deploy_project.replace(
        target="edge",
        models={"cls": {"path": "models/cls.onnx"}},
        devices=({"name": "edge", "memory_mb": 4096, "cpus": 1},),
        files={"models/cls.onnx": MODELS / "reused_dims.onnx"},
    )
    project.make(
        """
def test_feeds(deploy_models):
    model = deploy_models["cls"]
    model.run(model.example_inputs())
    model.run(model.example_inputs())
"""
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
    result.stdout.fnmatch_lines(
        [
            "*model 'cls': example inputs guessed dynamic dimensions the model does not size:"
            " input 'image' dimension 2 ('N') = 1;*set them in [[]tool.deploycheck.models.cls]"
            " as input_shapes = { image = [[]1, 3, 1, 1], extra = [[]1, 1] }*"
        ]
    )
    (check,) = project.checks(name="input_shapes[cls]").values()
    assert check["gating"] is False


# --------------------------------------------------------------- standing in (paired A/B)


def test_a_model_of_the_same_signature_stands_in_for_the_time_of_a_block() -> None:
    candidate, release = load("batch_mean.onnx"), load("tiny_linear.onnx", name="release")
    feeds = candidate.example_inputs()
    own = candidate.run(feeds)[0]
    with candidate.standing_in(release):
        stood_in = candidate.run(feeds)[0]
    np.testing.assert_array_equal(stood_in, release.run(feeds)[0])
    np.testing.assert_array_equal(candidate.run(feeds)[0], own)
    assert not np.array_equal(own, stood_in)


def test_a_model_of_another_signature_cannot_stand_in() -> None:
    candidate, other = load("tiny_linear.onnx"), load("two_inputs.onnx", name="other")
    assert candidate.signature_difference(other) is not None
    with (
        pytest.raises(ModelInputError, match="cannot stand in for it: inputs differ"),
        candidate.standing_in(other),
    ):
        pass
    assert candidate.session is not other.session
