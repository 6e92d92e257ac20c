"""Build the example project's digit classifier models, reproducibly.

Trains a small convolutional network on scikit-learn's bundled handwritten digits
(8x8 grayscale, 10 classes) with plain numpy, exports it to ONNX (fp32), derives a
static int8 QDQ model from it, writes the held-out test split and records the
resulting accuracy figures in ``models/BUILD_INFO.json``. The failure cases are
evidence of each test run (``assert_accuracy_drop`` writes them), not of the build.

Everything comes from packages already installed, so nothing is downloaded, and every
source of randomness is seeded so that a rebuild gives the same figures.

Run from the repository root or from ``example_project/``::

    python example_project/build_models.py
"""

from __future__ import annotations

import hashlib
import io
import json
import platform
import tempfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import sklearn
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

HERE = Path(__file__).resolve().parent
MODELS_DIR = HERE / "models"
DATA_DIR = HERE / "data"
FP32_PATH = MODELS_DIR / "classifier_fp32.onnx"
INT8_PATH = MODELS_DIR / "classifier_int8.onnx"
BUILD_INFO_PATH = MODELS_DIR / "BUILD_INFO.json"
TEST_DATA_PATH = DATA_DIR / "digits_test.npz"

SEED = 0
TEST_SIZE = 0.25
EPOCHS = 30
BATCH_SIZE = 32
LEARNING_RATE = 0.01
WEIGHT_DECAY = 1e-4
CALIBRATION_IMAGES = 200
CALIBRATION_BATCH = 20
OPSET = 17
IR_VERSION = 9
NUM_CLASSES = 10
INPUT_NAME = "image"
LOGITS_NAME = "logits"
PROBS_NAME = "probabilities"
SOFTMAX_NODE = "softmax"
# A fixed timestamp keeps the .npz archive byte-identical from one build to the next.
ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)

Params = dict[str, np.ndarray]
Cache = dict[str, np.ndarray]


@dataclass(frozen=True)
class Split:
    """Train/test arrays in the layout the models consume (float32 NCHW, int64 labels)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


# --------------------------------------------------------------------------- data


def load_split() -> Split:
    """Load the bundled digits and split them deterministically, stratified by class."""
    digits = load_digits()
    images = (digits.images.astype(np.float32) / 16.0).reshape(-1, 1, 8, 8)
    labels = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=TEST_SIZE, random_state=SEED, stratify=labels
    )
    return Split(
        x_train=np.ascontiguousarray(x_train),
        y_train=np.ascontiguousarray(y_train),
        x_test=np.ascontiguousarray(x_test),
        y_test=np.ascontiguousarray(y_test),
    )


def save_npz_deterministic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write an .npz that np.load reads, with fixed zip metadata so rebuilds don't churn git."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_TIMESTAMP)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, buffer.getvalue())


# --------------------------------------------------------------------------- network layers


def im2col(x: np.ndarray) -> np.ndarray:
    """Unfold 3x3 / pad-1 patches into rows so a convolution becomes one matrix product."""
    n, c, h, w = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    cols = np.empty((n, c, 3, 3, h, w), dtype=x.dtype)
    for i in range(3):
        for j in range(3):
            cols[:, :, i, j] = padded[:, :, i : i + h, j : j + w]
    # Column order (c, kh, kw) matches an ONNX Conv weight of shape (F, C, 3, 3).
    return cols.transpose(0, 4, 5, 1, 2, 3).reshape(n * h * w, c * 9)


def col2im(cols: np.ndarray, x_shape: tuple[int, ...]) -> np.ndarray:
    """Fold patch gradients back onto the input: the adjoint of im2col."""
    n, c, h, w = x_shape
    patches = cols.reshape(n, h, w, c, 3, 3).transpose(0, 3, 4, 5, 1, 2)
    padded = np.zeros((n, c, h + 2, w + 2), dtype=cols.dtype)
    for i in range(3):
        for j in range(3):
            padded[:, :, i : i + h, j : j + w] += patches[:, :, i, j]
    return padded[:, :, 1:-1, 1:-1]


def conv_forward(
    x: np.ndarray, weight: np.ndarray, bias: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """3x3 convolution, stride 1, pad 1 (same semantics as ONNX Conv); returns output and cols."""
    n, _, h, w = x.shape
    cols = im2col(x)
    out = cols @ weight.reshape(weight.shape[0], -1).T + bias
    return out.reshape(n, h, w, -1).transpose(0, 3, 1, 2), cols


def conv_backward(
    dout: np.ndarray, cols: np.ndarray, x_shape: tuple[int, ...], weight: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of conv_forward with respect to its input, weight and bias."""
    filters = weight.shape[0]
    d2 = dout.transpose(0, 2, 3, 1).reshape(-1, filters)
    dweight = (d2.T @ cols).reshape(weight.shape)
    dbias = d2.sum(axis=0)
    dx = col2im(d2 @ weight.reshape(filters, -1), x_shape)
    return dx, dweight, dbias


def _pool_windows(x: np.ndarray) -> np.ndarray:
    """View each 2x2 window as a trailing axis of length 4."""
    n, c, h, w = x.shape
    windows = x.reshape(n, c, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5)
    return windows.reshape(n, c, h // 2, w // 2, 4)


def maxpool_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """2x2 max pool, stride 2; also returns the winning index for the backward pass."""
    windows = _pool_windows(x)
    winner = windows.argmax(axis=-1)
    out = np.take_along_axis(windows, winner[..., None], axis=-1)[..., 0]
    return out, winner


def maxpool_backward(dout: np.ndarray, winner: np.ndarray, x_shape: tuple[int, ...]) -> np.ndarray:
    """Route each pooled gradient to the single input that won the max."""
    n, c, h, w = x_shape
    dwindows = np.zeros((n, c, h // 2, w // 2, 4), dtype=dout.dtype)
    np.put_along_axis(dwindows, winner[..., None], dout[..., None], axis=-1)
    dx = dwindows.reshape(n, c, h // 2, w // 2, 2, 2).transpose(0, 1, 2, 4, 3, 5)
    return dx.reshape(n, c, h, w)


# --------------------------------------------------------------------------- model


def init_params(rng: np.random.Generator) -> Params:
    """He-initialised weights in the exact shapes the ONNX graph uses."""

    def he(shape: tuple[int, ...], fan_in: int) -> np.ndarray:
        return np.asarray(rng.standard_normal(shape) * np.sqrt(2.0 / fan_in), dtype=np.float32)

    return {
        "conv1.weight": he((8, 1, 3, 3), 9),
        "conv1.bias": np.zeros(8, dtype=np.float32),
        "conv2.weight": he((16, 8, 3, 3), 72),
        "conv2.bias": np.zeros(16, dtype=np.float32),
        "fc.weight": he((NUM_CLASSES, 64), 64),
        "fc.bias": np.zeros(NUM_CLASSES, dtype=np.float32),
    }


def forward(params: Params, x: np.ndarray) -> tuple[np.ndarray, Cache]:
    """Conv-Relu-Pool x2, Flatten, Gemm; returns logits and what backward needs."""
    z1, cols1 = conv_forward(x, params["conv1.weight"], params["conv1.bias"])
    a1 = np.maximum(z1, 0.0)
    p1, win1 = maxpool_forward(a1)
    z2, cols2 = conv_forward(p1, params["conv2.weight"], params["conv2.bias"])
    a2 = np.maximum(z2, 0.0)
    p2, win2 = maxpool_forward(a2)
    flat = p2.reshape(p2.shape[0], -1)
    logits = flat @ params["fc.weight"].T + params["fc.bias"]
    cache = {
        "x": x, "cols1": cols1, "z1": z1, "win1": win1, "p1": p1,
        "cols2": cols2, "z2": z2, "win2": win2, "flat": flat,
    }  # fmt: skip
    return logits, cache


def backward(params: Params, cache: Cache, dlogits: np.ndarray) -> Params:
    """Backpropagate the logit gradient through forward()'s layers."""
    grads: Params = {
        "fc.weight": dlogits.T @ cache["flat"],
        "fc.bias": dlogits.sum(axis=0),
    }
    z2, z1 = cache["z2"], cache["z1"]
    dp2 = (dlogits @ params["fc.weight"]).reshape(z2.shape[0], z2.shape[1], 2, 2)
    dz2 = maxpool_backward(dp2, cache["win2"], z2.shape) * (z2 > 0)
    dp1, grads["conv2.weight"], grads["conv2.bias"] = conv_backward(
        dz2, cache["cols2"], cache["p1"].shape, params["conv2.weight"]
    )
    dz1 = maxpool_backward(dp1, cache["win1"], z1.shape) * (z1 > 0)
    _, grads["conv1.weight"], grads["conv1.bias"] = conv_backward(
        dz1, cache["cols1"], cache["x"].shape, params["conv1.weight"]
    )
    return grads


def softmax(logits: np.ndarray) -> np.ndarray:
    """Numerically stable softmax over the class axis."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return np.asarray(exp / exp.sum(axis=1, keepdims=True))


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean softmax cross-entropy and its gradient with respect to the logits."""
    probs = softmax(logits)
    n = labels.shape[0]
    loss = float(-np.log(probs[np.arange(n), labels] + 1e-12).mean())
    dlogits = probs.copy()
    dlogits[np.arange(n), labels] -= 1.0
    return loss, (dlogits / n).astype(np.float32)


def predict(params: Params, x: np.ndarray) -> np.ndarray:
    """Logits for a batch, without keeping the backward cache."""
    return forward(params, x)[0]


# --------------------------------------------------------------------------- training


class Adam:
    """Adam with decoupled weight decay on weights only; float32 state for determinism."""

    def __init__(self, params: Params, lr: float, weight_decay: float) -> None:
        self.lr = lr
        self.weight_decay = weight_decay
        self.beta1, self.beta2, self.eps = 0.9, 0.999, 1e-8
        self.step_count = 0
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}

    def step(self, params: Params, grads: Params, lr: float) -> None:
        """Update params in place."""
        self.step_count += 1
        correction1 = 1.0 - self.beta1**self.step_count
        correction2 = 1.0 - self.beta2**self.step_count
        for key, grad in grads.items():
            self.m[key] = self.beta1 * self.m[key] + (1.0 - self.beta1) * grad
            self.v[key] = self.beta2 * self.v[key] + (1.0 - self.beta2) * grad * grad
            update = (self.m[key] / correction1) / (np.sqrt(self.v[key] / correction2) + self.eps)
            if key.endswith("weight"):
                update = update + self.weight_decay * params[key]
            params[key] = (params[key] - lr * update).astype(np.float32)


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy."""
    return float((logits.argmax(axis=1) == labels).mean())


def train(split: Split) -> Params:
    """Train the CNN with minibatch Adam and a cosine learning-rate schedule."""
    rng = np.random.default_rng(SEED)
    params = init_params(rng)
    optimizer = Adam(params, LEARNING_RATE, WEIGHT_DECAY)
    n = split.x_train.shape[0]
    steps_per_epoch = -(-n // BATCH_SIZE)
    total_steps = EPOCHS * steps_per_epoch
    for epoch in range(EPOCHS):
        order = rng.permutation(n)
        losses = []
        for start in range(0, n, BATCH_SIZE):
            idx = order[start : start + BATCH_SIZE]
            logits, cache = forward(params, split.x_train[idx])
            loss, dlogits = cross_entropy(logits, split.y_train[idx])
            grads = backward(params, cache, dlogits)
            progress = optimizer.step_count / total_steps
            lr = LEARNING_RATE * 0.5 * (1.0 + np.cos(np.pi * progress))
            optimizer.step(params, grads, lr)
            losses.append(loss)
        if (epoch + 1) % 5 == 0 or epoch == 0:
            test_acc = accuracy(predict(params, split.x_test), split.y_test)
            print(f"epoch {epoch + 1:3d}  loss {np.mean(losses):.4f}  test acc {test_acc:.4f}")
    return params


# --------------------------------------------------------------------------- ONNX export


def build_onnx(params: Params) -> onnx.ModelProto:
    """Express the trained network as an ONNX graph with a symbolic batch dimension."""
    initializers = [numpy_helper.from_array(value, name) for name, value in params.items()]
    conv_attrs: dict[str, Any] = {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "strides": [1, 1]}
    pool_attrs: dict[str, Any] = {"kernel_shape": [2, 2], "strides": [2, 2]}
    nodes = [
        helper.make_node("Conv", [INPUT_NAME, "conv1.weight", "conv1.bias"], ["conv1"],
                         name="conv1", **conv_attrs),
        helper.make_node("Relu", ["conv1"], ["relu1"], name="relu1"),
        helper.make_node("MaxPool", ["relu1"], ["pool1"], name="pool1", **pool_attrs),
        helper.make_node("Conv", ["pool1", "conv2.weight", "conv2.bias"], ["conv2"],
                         name="conv2", **conv_attrs),
        helper.make_node("Relu", ["conv2"], ["relu2"], name="relu2"),
        helper.make_node("MaxPool", ["relu2"], ["pool2"], name="pool2", **pool_attrs),
        helper.make_node("Flatten", ["pool2"], ["flat"], name="flatten", axis=1),
        helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], [LOGITS_NAME],
                         name="fc", transB=1),
        helper.make_node("Softmax", [LOGITS_NAME], [PROBS_NAME], name=SOFTMAX_NODE, axis=1),
    ]  # fmt: skip
    graph = helper.make_graph(
        nodes,
        "digits_cnn",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", 1, 8, 8])],
        [
            helper.make_tensor_value_info(LOGITS_NAME, TensorProto.FLOAT, ["batch", NUM_CLASSES]),
            helper.make_tensor_value_info(PROBS_NAME, TensorProto.FLOAT, ["batch", NUM_CLASSES]),
        ],
        initializer=initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="pytest-deploycheck-example",
        producer_version="1",
        doc_string=(
            "Handwritten digit classifier (fp32) for the pytest-deploycheck example project. "
            "Input 'image': float32 [batch,1,8,8], pixels scaled to [0,1]. "
            "Outputs 'logits' and 'probabilities' (softmax): float32 [batch,10], classes 0-9. "
            "Small CNN trained on scikit-learn's bundled digits by build_models.py."
        ),
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return model


def session(path: Path) -> ort.InferenceSession:
    """A single-threaded CPU session so evaluation is reproducible everywhere."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_onnx(path: Path, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Logits and probabilities from an ONNX file for a batch of images."""
    logits, probs = session(path).run([LOGITS_NAME, PROBS_NAME], {INPUT_NAME: images})
    return np.asarray(logits), np.asarray(probs)


def export_fp32(params: Params, split: Split) -> None:
    """Write the fp32 model and prove it computes what the numpy network computes."""
    MODELS_DIR.mkdir(parents=True, exist_ok=True)
    onnx.save_model(build_onnx(params), FP32_PATH)
    reference = predict(params, split.x_test)
    logits, probs = run_onnx(FP32_PATH, split.x_test)
    np.testing.assert_allclose(logits, reference, atol=1e-4, rtol=0)
    np.testing.assert_allclose(probs, softmax(reference), atol=1e-4, rtol=0)
    print(f"wrote {FP32_PATH.relative_to(HERE)} (matches numpy forward pass, atol 1e-4)")


# --------------------------------------------------------------------------- int8 quantization


class DigitsCalibrationReader(CalibrationDataReader):  # type: ignore[misc]
    """Feeds a fixed slice of training images to the calibrator in small batches."""

    def __init__(self, images: np.ndarray) -> None:
        self._batches: Iterator[np.ndarray] = iter(
            [images[i : i + CALIBRATION_BATCH] for i in range(0, len(images), CALIBRATION_BATCH)]
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        """Next calibration batch, or None when exhausted."""
        batch = next(self._batches, None)
        return None if batch is None else {INPUT_NAME: batch}


def preprocess_for_quantization(source: Path, target: Path) -> Path:
    """Run ORT's recommended pre-processing; fall back to the raw model if it fails."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    try:
        # ONNX shape inference covers every op in this graph; symbolic shape inference
        # is skipped so the result does not depend on whether sympy happens to be installed.
        quant_pre_process(str(source), str(target), skip_symbolic_shape=True)
    except Exception as exc:  # pre-processing is an optimisation, not a requirement
        print(f"note: quant_pre_process skipped ({type(exc).__name__}: {exc})")
        return source
    return target


def prune_unused_opsets(model: onnx.ModelProto) -> None:
    """Drop opset imports that pre-processing adds but no node uses, keeping the model plain."""
    used = {node.domain for node in model.graph.node} | {""}
    kept = [opset for opset in model.opset_import if opset.domain in used]
    del model.opset_import[:]
    model.opset_import.extend(kept)


def quantize_int8(split: Split) -> None:
    """Derive the static int8 QDQ model, calibrated on training images only."""
    calibration = split.x_train[:CALIBRATION_IMAGES]
    with tempfile.TemporaryDirectory() as tmp:
        tmp_dir = Path(tmp)
        source = preprocess_for_quantization(FP32_PATH, tmp_dir / "preprocessed.onnx")
        quantize_static(
            str(source),
            str(tmp_dir / "quantized.onnx"),
            DigitsCalibrationReader(calibration),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            # 7-bit weights: AVX2 CPUs without VNNI sum int8 products in int16 and would
            # otherwise saturate, so results would depend on which CPU runs the model.
            reduce_range=True,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            # Keep 'probabilities' in float: int8 would round small probabilities to zero.
            nodes_to_exclude=[SOFTMAX_NODE],
            calibrate_method=CalibrationMethod.MinMax,
        )
        model = onnx.load_model(tmp_dir / "quantized.onnx")
    prune_unused_opsets(model)
    model.doc_string = (
        "Handwritten digit classifier (static int8, QDQ, per-channel 7-bit weights) for the "
        "pytest-deploycheck example project; quantized from classifier_fp32.onnx with "
        f"MinMax calibration on {len(calibration)} training images. Same inputs and outputs."
    )
    onnx.checker.check_model(model, full_check=True)
    onnx.save_model(model, INT8_PATH)
    print(f"wrote {INT8_PATH.relative_to(HERE)}")


# --------------------------------------------------------------------------- evaluation


def sha256(path: Path) -> str:
    """Content hash, recorded so a rebuild can be compared byte for byte."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def evaluate(split: Split) -> dict[str, float | int]:
    """Compare both ONNX files on the held-out split."""
    fp32_pred = run_onnx(FP32_PATH, split.x_test)[0].argmax(axis=1)
    int8_pred = run_onnx(INT8_PATH, split.x_test)[0].argmax(axis=1)
    fp32_acc = float((fp32_pred == split.y_test).mean())
    int8_acc = float((int8_pred == split.y_test).mean())
    return {
        "n": int(split.y_test.shape[0]),
        "fp32_accuracy": round(fp32_acc, 6),
        "int8_accuracy": round(int8_acc, 6),
        "accuracy_drop": round(fp32_acc - int8_acc, 6),
        "agreement": round(float((fp32_pred == int8_pred).mean()), 6),
        "fp32_size_bytes": FP32_PATH.stat().st_size,
        "int8_size_bytes": INT8_PATH.stat().st_size,
    }


def write_build_info(figures: dict[str, float | int]) -> None:
    """Record the figures and toolchain so a later rebuild can be checked against them."""
    info = {
        "dataset": "sklearn.datasets.load_digits",
        "split": {"test_size": TEST_SIZE, "random_state": SEED, "stratified": True},
        "seed": SEED,
        "architecture": (
            "Conv(1->8,3x3,pad1)-Relu-MaxPool2 -> Conv(8->16,3x3,pad1)-Relu-MaxPool2 "
            "-> Flatten(64) -> Gemm(64->10) -> Softmax"
        ),
        "training": {
            "epochs": EPOCHS,
            "batch_size": BATCH_SIZE,
            "optimizer": "Adam, cosine schedule",
            "learning_rate": LEARNING_RATE,
            "weight_decay": WEIGHT_DECAY,
        },
        "quantization": {
            "format": "QDQ",
            "activations": "int8",
            "weights": "int8 per-channel, reduced range (7-bit)",
            "calibration": f"MinMax on {CALIBRATION_IMAGES} training images",
        },
        "metrics": figures,
        "sha256": {FP32_PATH.name: sha256(FP32_PATH), INT8_PATH.name: sha256(INT8_PATH)},
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "onnx": onnx.__version__,
            "onnxruntime": ort.__version__,
            "scikit-learn": sklearn.__version__,
        },
    }
    BUILD_INFO_PATH.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")


def print_figures(figures: dict[str, float | int]) -> None:
    """Human-readable summary of the evaluation."""
    print(f"n                 {figures['n']}")
    print(f"fp32 accuracy     {figures['fp32_accuracy']:.4f}")
    print(f"int8 accuracy     {figures['int8_accuracy']:.4f}")
    print(f"accuracy drop     {figures['accuracy_drop']:.4f}")
    print(f"top-1 agreement   {figures['agreement']:.4f}")
    print(f"fp32 size (bytes) {figures['fp32_size_bytes']}")
    print(f"int8 size (bytes) {figures['int8_size_bytes']}")


def main() -> None:
    """Build models and data, then evaluate and record the figures."""
    split = load_split()
    started = time.perf_counter()
    # One BLAS thread: multithreaded matmuls may sum in a different order, which would
    # change the trained weights' low bits and hence the committed .onnx bytes.
    with threadpool_limits(limits=1):
        params = train(split)
    print(f"training took {time.perf_counter() - started:.1f} s")
    export_fp32(params, split)
    quantize_int8(split)
    save_npz_deterministic(TEST_DATA_PATH, {"images": split.x_test, "labels": split.y_test})
    print(f"wrote {TEST_DATA_PATH.relative_to(HERE)}")
    figures = evaluate(split)
    write_build_info(figures)
    print_figures(figures)
    print(f"wrote {BUILD_INFO_PATH.relative_to(HERE)}")


if __name__ == "__main__":
    main()
