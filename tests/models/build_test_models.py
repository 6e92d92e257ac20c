"""Build the tiny ONNX models the plugin's own integration tests load.

Run ``python tests/models/build_test_models.py [OUTPUT_DIR]`` (needs ``onnx``, from the
``examples`` extra).  The tests never import onnx: they load the committed files, and
one test rebuilds them into a temporary directory to prove the committed bytes still
come from this script.  Every weight is written out literally and no producer version
is recorded, so a rebuild is byte-identical.  ir_version 8 with opset 13 loads on every
onnxruntime from 1.17 on.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from onnx import ModelProto, NodeProto, TensorProto, ValueInfoProto, checker, helper

IR_VERSION = 8
OPSET = 13
HERE = Path(__file__).resolve().parent
Dim = int | str | None

# Input element types of many_types.onnx: one Identity per type exercises the dtype
# mapping of every tensor type numpy can hold.
MANY_TYPES: dict[str, int] = {
    "float16": TensorProto.FLOAT16,
    "float64": TensorProto.DOUBLE,
    "int8": TensorProto.INT8,
    "int16": TensorProto.INT16,
    "int32": TensorProto.INT32,
    "uint8": TensorProto.UINT8,
    "uint16": TensorProto.UINT16,
    "uint32": TensorProto.UINT32,
    "uint64": TensorProto.UINT64,
    "bool": TensorProto.BOOL,
    "string": TensorProto.STRING,
}


def tensor(name: str, elem_type: int, shape: Sequence[Dim]) -> ValueInfoProto:
    return helper.make_tensor_value_info(name, elem_type, list(shape))


def model(
    name: str,
    nodes: Sequence[NodeProto],
    inputs: Sequence[ValueInfoProto],
    outputs: Sequence[ValueInfoProto],
    initializers: Sequence[TensorProto] = (),
) -> ModelProto:
    """A checked model with a fixed IR version and opset and no producer version."""
    graph = helper.make_graph(list(nodes), name, list(inputs), list(outputs), list(initializers))
    built = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="pytest-deploycheck tests",
    )
    built.ir_version = IR_VERSION
    checker.check_model(built)
    return built


def tiny_linear() -> ModelProto:
    """``y = x @ W + b``: float32 ``x`` [batch, 4] to ``y`` [batch, 2]."""
    weights = helper.make_tensor(
        "W", TensorProto.FLOAT, [4, 2], [0.5, -1.0, 0.25, 2.0, -0.75, 1.5, 1.0, -0.5]
    )
    bias = helper.make_tensor("b", TensorProto.FLOAT, [2], [0.1, -0.2])
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["xw"]),
        helper.make_node("Add", ["xw", "b"], ["y"]),
    ]
    return model(
        "tiny_linear",
        nodes,
        [tensor("x", TensorProto.FLOAT, ["batch", 4])],
        [tensor("y", TensorProto.FLOAT, ["batch", 2])],
        [weights, bias],
    )


def two_inputs() -> ModelProto:
    """``total = a + float(b)``: a float32 and an int64 input sharing the batch dim."""
    nodes = [
        helper.make_node("Cast", ["b"], ["b_float"], to=TensorProto.FLOAT),
        helper.make_node("Add", ["a", "b_float"], ["total"]),
    ]
    return model(
        "two_inputs",
        nodes,
        [
            tensor("a", TensorProto.FLOAT, ["batch", 3]),
            tensor("b", TensorProto.INT64, ["batch", 3]),
        ],
        [tensor("total", TensorProto.FLOAT, ["batch", 3])],
    )


def many_types() -> ModelProto:
    """One Identity per element type: input ``t_<dtype>`` [batch, 2] to ``o_<dtype>``."""
    nodes = [helper.make_node("Identity", [f"t_{n}"], [f"o_{n}"]) for n in MANY_TYPES]
    inputs = [tensor(f"t_{n}", t, ["batch", 2]) for n, t in MANY_TYPES.items()]
    outputs = [tensor(f"o_{n}", t, ["batch", 2]) for n, t in MANY_TYPES.items()]
    return model("many_types", nodes, inputs, outputs)


def shapes() -> ModelProto:
    """Inputs whose shapes need care: a symbolic non-batch dim, a fixed shape, a scalar."""
    names = ("tokens", "fixed", "scale")
    nodes = [helper.make_node("Identity", [n], [f"{n}_out"]) for n in names]
    inputs = [
        tensor("tokens", TensorProto.INT64, ["batch", "seq"]),
        tensor("fixed", TensorProto.FLOAT, [3, 2]),
        tensor("scale", TensorProto.FLOAT, []),
    ]
    outputs = [
        tensor("tokens_out", TensorProto.INT64, ["batch", "seq"]),
        tensor("fixed_out", TensorProto.FLOAT, [3, 2]),
        tensor("scale_out", TensorProto.FLOAT, []),
    ]
    return model("shapes", nodes, inputs, outputs)


def fixed_only() -> ModelProto:
    """``y = relu(x)`` with a fixed shape [1, 4]: a model that takes no other batch size."""
    nodes = [helper.make_node("Relu", ["x"], ["y"])]
    return model(
        "fixed_only",
        nodes,
        [tensor("x", TensorProto.FLOAT, [1, 4])],
        [tensor("y", TensorProto.FLOAT, [1, 4])],
    )


def needs_even() -> ModelProto:
    """Reshape of ``x`` [batch, seq] to [-1, 2]: fails at run time unless batch * seq is even,
    as with the default example shape [1, 1] -- the case ``input_shapes`` exists for."""
    target = helper.make_tensor("pairs", TensorProto.INT64, [2], [-1, 2])
    nodes = [helper.make_node("Reshape", ["x", "pairs"], ["y"])]
    return model(
        "needs_even",
        nodes,
        [tensor("x", TensorProto.FLOAT, ["batch", "seq"])],
        [tensor("y", TensorProto.FLOAT, [None, 2])],
        [target],
    )


def reused_dims() -> ModelProto:
    """Symbolic names as exporters write them: ``image`` [N, 3, N, N] reuses one name for
    the batch, height and width, ``extra`` [?, unnamed] has a ``?`` and an unnamed dim.
    onnxruntime runs any sizes there; the feed check must too."""
    nodes = [
        helper.make_node("Identity", ["image"], ["image_out"]),
        helper.make_node("Identity", ["extra"], ["extra_out"]),
    ]
    return model(
        "reused_dims",
        nodes,
        [
            tensor("image", TensorProto.FLOAT, ["N", 3, "N", "N"]),
            tensor("extra", TensorProto.FLOAT, ["?", None]),
        ],
        [
            tensor("image_out", TensorProto.FLOAT, ["N", 3, "N", "N"]),
            tensor("extra_out", TensorProto.FLOAT, ["?", None]),
        ],
    )


def batch_mean() -> ModelProto:
    """tiny_linear's scores minus their mean over the batch (ReduceMean over axis 0):
    each row's output depends on the other rows, as a dynamically quantized model's do."""
    weights = helper.make_tensor(
        "W", TensorProto.FLOAT, [4, 2], [0.5, -1.0, 0.25, 2.0, -0.75, 1.5, 1.0, -0.5]
    )
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["xw"]),
        helper.make_node("ReduceMean", ["xw"], ["mean"], axes=[0], keepdims=1),
        helper.make_node("Sub", ["xw", "mean"], ["y"]),
    ]
    return model(
        "batch_mean",
        nodes,
        [tensor("x", TensorProto.FLOAT, ["batch", 4])],
        [tensor("y", TensorProto.FLOAT, ["batch", 2])],
        [weights],
    )


NOT_A_MODEL = b"This is a text file with an .onnx name: the corrupt-model test case.\n"


def build(out_dir: Path) -> list[Path]:
    """Write every test model into *out_dir*; returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    builders = (
        tiny_linear,
        two_inputs,
        many_types,
        shapes,
        fixed_only,
        needs_even,
        reused_dims,
        batch_mean,
    )
    for build_one in builders:
        path = out_dir / f"{build_one.__name__}.onnx"
        path.write_bytes(build_one().SerializeToString(deterministic=True))
        written.append(path)
    corrupt = out_dir / "not_a_model.onnx"
    corrupt.write_bytes(NOT_A_MODEL)
    return [*written, corrupt]


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE
    for written_path in build(target):
        print(f"{written_path}: {written_path.stat().st_size} bytes")
