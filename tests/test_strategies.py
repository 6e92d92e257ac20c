"""Hypothesis strategies of feeds drawn from a model's signature, and perturbed pairs."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st

from pytest_deploycheck import strategies
from pytest_deploycheck.measure.runtime import DeployModel, SessionSettings, load_model
from pytest_deploycheck.strategies import feeds, perturbed

MODELS = Path(__file__).parent / "models"
EXAMPLE_PROJECT = Path(__file__).parent.parent / "example_project"
CLASSIFIER = EXAMPLE_PROJECT / "models" / "classifier_fp32.onnx"
FEW = settings(max_examples=25, deadline=None)


def load(path: Path, **input_shapes: tuple[int, ...]) -> DeployModel:
    return load_model(path.stem, path, SessionSettings(intra_op_threads=1), input_shapes)


@pytest.fixture(scope="module")
def tiny() -> DeployModel:
    return load(MODELS / "tiny_linear.onnx")


@pytest.fixture(scope="module")
def two() -> DeployModel:
    return load(MODELS / "two_inputs.onnx")


@pytest.fixture(scope="module")
def many() -> DeployModel:
    return load(MODELS / "many_types.onnx")


@pytest.fixture(scope="module")
def shapes() -> DeployModel:
    return load(MODELS / "shapes.onnx")


@pytest.fixture(scope="module")
def classifier() -> DeployModel:
    return load(CLASSIFIER)


class _FakeSession:
    """Just enough of an InferenceSession to give a DeployModel an unusual signature."""

    def __init__(self, *inputs: tuple[str, str, Any]) -> None:
        self.inputs = [SimpleNamespace(name=n, type=t, shape=s) for n, t, s in inputs]

    def get_inputs(self) -> list[Any]:
        return self.inputs

    def get_outputs(self) -> list[Any]:
        return []


def _fake(*inputs: tuple[str, str, Any], **input_shapes: tuple[int, ...]) -> DeployModel:
    """A model with the signature *inputs* (name, onnx type, shape): feeds() needs no more."""
    session = _FakeSession(*inputs)
    return DeployModel("fake", Path("fake.onnx"), SessionSettings(), session, (), input_shapes)


# --------------------------------------------------------------------------- valid feeds


@FEW
@given(data=st.data())
def test_tiny_linear_feeds_run_and_give_finite_outputs(
    tiny: DeployModel, data: st.DataObject
) -> None:
    drawn = data.draw(feeds(tiny))
    tiny.check_feeds(drawn)
    (outputs,) = tiny.run(drawn)
    assert outputs.shape == (drawn["x"].shape[0], 2)
    assert np.isfinite(outputs).all()


@FEW
@given(data=st.data())
def test_two_inputs_share_the_drawn_batch(two: DeployModel, data: st.DataObject) -> None:
    drawn = data.draw(feeds(two, max_dim=5))
    assert drawn["a"].dtype == np.float32 and drawn["b"].dtype == np.int64
    assert drawn["a"].shape == drawn["b"].shape
    assert 1 <= drawn["a"].shape[0] <= 5
    two.run(drawn)


@FEW
@given(data=st.data())
def test_classifier_feeds_in_the_image_range_run(
    classifier: DeployModel, data: st.DataObject
) -> None:
    drawn = data.draw(feeds(classifier, values={"image": (0.0, 1.0)}))
    image = drawn["image"]
    assert image.shape[1:] == (1, 8, 8)
    assert image.min() >= 0.0 and image.max() <= 1.0
    _logits, probabilities = classifier.run(drawn)
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)


@FEW
@given(data=st.data())
def test_every_numpy_type_is_drawn_and_round_trips(many: DeployModel, data: st.DataObject) -> None:
    """many_types.onnx is one Identity per type: the outputs are the inputs."""
    drawn = data.draw(feeds(many))
    outputs = many.run(drawn)
    for spec, output in zip(many.inputs, outputs, strict=True):
        assert drawn[spec.name].dtype == np.dtype(spec.dtype)
        assert np.array_equal(output, drawn[spec.name])


@FEW
@given(data=st.data())
def test_symbolic_fixed_and_scalar_shapes(shapes: DeployModel, data: st.DataObject) -> None:
    drawn = data.draw(feeds(shapes, max_dim=3))
    batch, seq = drawn["tokens"].shape
    assert 1 <= batch <= 3 and 1 <= seq <= 3
    assert drawn["fixed"].shape == (3, 2)
    assert drawn["scale"].shape == ()
    shapes.run(drawn)


def test_strings_are_short_text() -> None:
    model = _fake(("words", "tensor(string)", [3]))
    drawn = find(feeds(model), lambda f: any(len(s) > 1 for s in f["words"].flat))
    assert drawn["words"].dtype == object
    assert all(isinstance(s, str) and len(s) <= 8 for s in drawn["words"].flat)


# --------------------------------------------------------------------------- values


@FEW
@given(data=st.data())
def test_default_ranges(many: DeployModel, data: st.DataObject) -> None:
    drawn = data.draw(feeds(many))
    for name in ("t_float16", "t_float64"):
        assert np.isfinite(drawn[name]).all()
        assert np.abs(drawn[name]).max() <= 10
    for name in ("t_int8", "t_uint64", "t_int32"):
        assert drawn[name].min() >= 0 and drawn[name].max() <= 10


@FEW
@given(data=st.data())
def test_min_and_max_value_bound_floats_and_ints(two: DeployModel, data: st.DataObject) -> None:
    drawn = data.draw(feeds(two, min_value=-3, max_value=-1))
    for array in drawn.values():
        assert array.min() >= -3 and array.max() <= -1


@FEW
@given(data=st.data())
def test_values_override_the_common_range(two: DeployModel, data: st.DataObject) -> None:
    drawn = data.draw(feeds(two, min_value=5, max_value=6, values={"b": (100, 200)}))
    assert drawn["a"].min() >= 5 and drawn["a"].max() <= 6
    assert drawn["b"].min() >= 100 and drawn["b"].max() <= 200


@FEW
@given(data=st.data())
def test_float16_bounds_are_rounded_inwards(many: DeployModel, data: st.DataObject) -> None:
    """0.1 is no float16: hypothesis would refuse it as a bound."""
    drawn = data.draw(feeds(many, values={"t_float16": (0.1, 0.2), "t_uint8": (2.5, 3.5)}))
    assert drawn["t_float16"].astype(float).min() >= 0.1
    assert drawn["t_float16"].astype(float).max() <= 0.2
    assert (drawn["t_uint8"] == 3).all()


def test_a_wide_integer_range_is_clipped_to_the_dtype() -> None:
    model = _fake(("small", "tensor(int8)", [2]), ("count", "tensor(uint8)", [2]))
    wide = feeds(model, min_value=-1000, max_value=1000)
    assert find(wide, lambda f: f["small"].min() == -128)["count"].min() >= 0
    assert find(wide, lambda f: f["count"].max() == 255)["small"].max() <= 127


def test_nan_and_infinity_are_drawn_when_allowed(tiny: DeployModel) -> None:
    find(feeds(tiny, allow_nan=True), lambda f: bool(np.isnan(f["x"]).any()))
    find(feeds(tiny, allow_infinity=True), lambda f: bool(np.isinf(f["x"]).any()))


# --------------------------------------------------------------------------- shapes


@FEW
@given(data=st.data())
def test_batch_pins_the_first_dimension(two: DeployModel, data: st.DataObject) -> None:
    drawn = data.draw(feeds(two, batch=7))
    assert drawn["a"].shape[0] == drawn["b"].shape[0] == 7


@FEW
@given(data=st.data())
def test_batch_may_be_a_strategy(two: DeployModel, data: st.DataObject) -> None:
    drawn = data.draw(feeds(two, batch=st.sampled_from([16, 32])))
    assert drawn["a"].shape[0] == drawn["b"].shape[0] in (16, 32)


@FEW
@given(data=st.data())
def test_configured_shapes_win_and_pin_shared_symbols(data: st.DataObject) -> None:
    model = _configured_two()
    drawn = data.draw(feeds(model))
    assert drawn["a"].shape == (4, 3) and drawn["b"].shape == (4, 3)


@FEW
@given(data=st.data())
def test_configured_shapes_take_the_pinned_batch(data: st.DataObject) -> None:
    model = _configured_two()
    drawn = data.draw(feeds(model, batch=st.integers(1, 3)))
    assert drawn["a"].shape == drawn["b"].shape
    assert drawn["a"].shape[0] in (1, 2, 3) and drawn["a"].shape[1] == 3
    model.run(drawn)


_CONFIGURED: list[DeployModel] = []


def _configured_two() -> DeployModel:
    """Built once: @given tests cannot take a fixture that depends on parameters."""
    if not _CONFIGURED:
        _CONFIGURED.append(load(MODELS / "two_inputs.onnx", a=(4, 3)))
    return _CONFIGURED[0]


@FEW
@given(data=st.data())
def test_configured_symbols_reach_other_inputs(data: st.DataObject) -> None:
    ids = ("ids", "tensor(int64)", ["batch", "seq"])
    model = _fake(ids, ("mask", "tensor(bool)", [None, "seq"]), ids=(2, 5))
    drawn = data.draw(feeds(model))
    assert drawn["ids"].shape == drawn["mask"].shape == (2, 5)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"values": {"imag": (0, 1)}}, "model 'classifier_fp32': values names unknown input"),
        ({"values": {"image": (1, 0)}}, "input 'image': values range (1, 0) has low > high"),
        ({"values": {"image": 1.0}}, "input 'image': values entry must be (low, high)"),
        ({"values": {"image": (0, math.nan)}}, "input 'image': high must be finite"),
        ({"min_value": 2, "max_value": 1}, "model 'classifier_fp32': min_value 2 > max_value 1"),
        ({"min_value": 20}, "input 'image': value range [20, 10.0] is empty"),
        ({"batch": 0}, "batch must be a whole number >= 1"),
        ({"batch": True}, "batch must be a whole number >= 1"),
        ({"max_dim": 0}, "max_dim must be a whole number >= 1"),
    ],
)
def test_bad_options_name_the_model_and_input(
    classifier: DeployModel, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=r"^model ") as raised:
        feeds(classifier, **kwargs)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_an_unknown_input_name_lists_the_inputs(classifier: DeployModel) -> None:
    with pytest.raises(ValueError, match=r"inputs: image float32 \[batch, 1, 8, 8\]"):
        feeds(classifier, values={"images": (0, 1)})


@pytest.mark.parametrize("name", ["t_bool", "t_string"])
def test_values_for_booleans_or_strings_are_refused(many: DeployModel, name: str) -> None:
    with pytest.raises(ValueError, match=f"input '{name}': values has no meaning"):
        feeds(many, values={name: (0, 1)})


def test_a_non_tensor_input_is_refused() -> None:
    model = _fake(("x", "tensor(float)", ["batch", 2]), ("history", "seq(tensor(float))", None))
    with pytest.raises(ValueError, match=r"model 'fake', input 'history': is seq\(tensor"):
        feeds(model)


def test_a_type_numpy_cannot_hold_is_refused() -> None:
    model = _fake(("x", "tensor(bfloat16)", [2]))
    with pytest.raises(ValueError, match=r"input 'x': numpy has no type for tensor\(bfloat16\)"):
        feeds(model)


def test_batch_needs_a_variable_first_dimension() -> None:
    model = load(MODELS / "fixed_only.onnx")
    with pytest.raises(ValueError, match=r"no input has a variable first \(batch\) dimension"):
        feeds(model, batch=2)


def test_a_batch_strategy_drawing_zero_fails_clearly(tiny: DeployModel) -> None:
    with pytest.raises(ValueError, match="batch must be a whole number >= 1"):
        find(feeds(tiny, batch=st.just(0)), lambda f: True)


def test_feeds_shares_anonymous_first_dims_but_not_others() -> None:
    model = _fake(("a", "tensor(float)", [None, None]), ("b", "tensor(int64)", [None, "n"]))
    drawn = find(feeds(model), lambda f: f["a"].shape[1] != f["b"].shape[1])
    assert drawn["a"].shape[0] == drawn["b"].shape[0]


# --------------------------------------------------------------------------- perturbed


@settings(max_examples=50, deadline=None)
@given(data=st.data(), scale=st.sampled_from([0.0, 0.001, 0.01, 0.5]))
def test_perturbed_bounds_float_noise_and_keeps_the_rest(data: st.DataObject, scale: float) -> None:
    model = _fake(
        ("half", "tensor(float16)", ["batch", 3]),
        ("double", "tensor(double)", ["batch"]),
        ("ids", "tensor(int64)", ["batch", 2]),
        ("flags", "tensor(bool)", [2]),
    )
    ranges = {"half": (-1.0, 1.0), "double": (0.0, 100.0)}
    original, noisy = data.draw(perturbed(feeds(model, values=ranges), scale=scale))
    for name, (low, high) in ranges.items():
        change = np.abs(noisy[name].astype(float) - original[name].astype(float))
        assert noisy[name].dtype == original[name].dtype
        assert change.max() <= scale * (high - low)
        assert low <= noisy[name].min() and noisy[name].max() <= high
    for name in original.keys() - ranges.keys():
        assert noisy[name] is original[name]


@FEW
@given(pair=perturbed(feeds(_fake(("x", "tensor(float)", [8, 8])), values={"x": (-0.5, 0.5)})))
def test_perturbed_noise_is_dense(pair: tuple[Any, Any]) -> None:
    """hypothesis arrays are mostly one fill value; the noise must not be.

    Values on a bound of the range are clipped back by half the noise draws, so only
    the values inside the range are sure to move.
    """
    original, noisy = pair
    inside = (original["x"] > -0.5) & (original["x"] < 0.5)
    if inside.any():
        assert (noisy["x"] != original["x"])[inside].mean() >= 0.9


@FEW
@given(pair=perturbed({"x": np.array([[0.0, 2.0, 4.0, 1.0]], dtype=np.float32)}))
def test_perturbed_feeds_use_the_arrays_own_range(pair: tuple[Any, Any]) -> None:
    original, noisy = pair
    assert np.abs(noisy["x"] - original["x"]).max() <= 0.01 * 4.0
    assert noisy["x"].min() >= 0.0 and noisy["x"].max() <= 4.0


@pytest.mark.parametrize("scale", [-0.1, math.nan, "0.1"])
def test_perturbed_refuses_a_bad_scale(tiny: DeployModel, scale: Any) -> None:
    with pytest.raises(ValueError, match="scale must be a number >= 0"):
        perturbed(feeds(tiny), scale=scale)


# --------------------------------------------------------------------------- docstring


def test_the_module_docstring_example_runs() -> None:
    """The example users copy is executed as written, against the example project."""
    namespace = {
        "__file__": str(EXAMPLE_PROJECT / "tests" / "test_agreement.py"),
        "__name__": "docstring_example",
    }
    exec(_docstring_example(), namespace)
    example_test = namespace["test_optimized_agrees_with_baseline_on_top1"]
    example_test()
    # Not vacuous: on real digits, a model that ranks the classes backwards is caught.
    baseline = namespace["BASELINE"]
    namespace["OPTIMIZED"] = SimpleNamespace(run=lambda f, names: [-baseline.run(f, names)[0]])
    with np.load(EXAMPLE_PROJECT / "data" / "digits_test.npz") as data:
        digits = {"image": data["images"][:8]}
    with pytest.raises(AssertionError):
        example_test.hypothesis.inner_test(feeds_pair=(digits, digits))


def _docstring_example() -> str:
    doc = strategies.__doc__ or ""
    block = doc.split("::\n", 1)[1]
    lines = []
    for line in block.splitlines():
        if line and not line.startswith("    "):
            break
        lines.append(line)
    return textwrap.dedent("\n".join(lines))
