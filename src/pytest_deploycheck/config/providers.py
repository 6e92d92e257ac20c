"""A device's execution providers and their options, as the config names them.

``execution_providers = ["cuda", "CPUExecutionProvider"]``: onnxruntime's own names,
or the short names of the accelerators a deployment usually asks for (any case).  The
names are not checked against onnxruntime here (config imports no runtime): a name
this onnxruntime does not know becomes a "did you mean" note when the session is
built, and the run falls back to the next provider, as the target's runtime would.

``provider_options = { cuda = { device_id = 0 } }``: one table per provider the device
lists, of option = string, number or boolean, handed to onnxruntime as strings.  Each
bad entry is one line of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"
OPENVINO = "OpenVINOExecutionProvider"
# Short names, matched case-insensitively; anything else is kept as written.
SHORT_NAMES: Mapping[str, str] = {
    "cpu": CPU,
    "cuda": CUDA,
    "tensorrt": TENSORRT,
    "openvino": OPENVINO,
}
# Providers that run on an NVIDIA GPU: their memory is read with nvidia-smi.
NVIDIA_PROVIDERS = (CUDA, TENSORRT)
OptionValue = str | int | float | bool
ProviderOptions = Mapping[str, Mapping[str, OptionValue]]
AddError = Callable[[str], None]


def provider_name(name: str) -> str:
    """onnxruntime's name for *name*: ``cuda`` -> ``CUDAExecutionProvider``."""
    return SHORT_NAMES.get(name.strip().lower(), name.strip())


def provider_names(names: Sequence[str]) -> tuple[str, ...]:
    """The listed providers by onnxruntime's names, duplicates dropped, order kept."""
    return tuple(dict.fromkeys(provider_name(name) for name in names))


def parse_provider_options(
    raw: Any, providers: Sequence[str]
) -> tuple[dict[str, dict[str, OptionValue]], list[str]]:
    """The device's ``provider_options`` table, by onnxruntime's provider names, and
    its problems, one line each starting with the key that holds it.

    *providers* are the device's execution providers (already full names).
    """
    problems: list[str] = []
    parsed = _parse(raw, providers, problems.append)
    return parsed, problems


def _parse(
    raw: Any, providers: Sequence[str], add_error: AddError
) -> dict[str, dict[str, OptionValue]]:
    if not isinstance(raw, Mapping):
        add_error(
            "provider_options: expected a table of provider = { option = value },"
            " e.g. { CUDAExecutionProvider = { device_id = 0 } }"
        )
        return {}
    parsed: dict[str, dict[str, OptionValue]] = {}
    for key, options in raw.items():
        name = provider_name(str(key))
        if name not in providers:
            listed = ", ".join(providers)
            add_error(
                f"provider_options.{key}: {name} is not in this device's execution_providers"
                f" ({listed}); add it there or remove its options"
            )
            continue
        parsed[name] = _options(f"provider_options.{key}", options, add_error)
    return parsed


def _options(where: str, options: Any, add_error: AddError) -> dict[str, OptionValue]:
    if not isinstance(options, Mapping):
        add_error(f"{where}: expected a table of option = value, e.g. {{ device_id = 0 }}")
        return {}
    valid: dict[str, OptionValue] = {}
    for option, value in options.items():
        problem = _option_problem(str(option), value)
        if problem:
            add_error(f"{where}.{option}: {problem}")
        else:
            valid[str(option)] = value
    return valid


def _option_problem(option: str, value: Any) -> str:
    if option == "device_id":
        whole = isinstance(value, int) and not isinstance(value, bool)
        return "" if whole and value >= 0 else f"expected a GPU index >= 0, got {value!r}"
    if isinstance(value, str | int | float | bool):
        return ""
    return f"expected a string, number or boolean, got {type(value).__name__} ({value!r})"


def option_text(value: OptionValue) -> str:
    """An option as onnxruntime takes it: a string (booleans as ``true``/``false``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def nvidia_gpu(providers: Sequence[str], options: ProviderOptions) -> int | None:
    """The GPU index a device's NVIDIA provider runs on (``device_id``, default 0), or
    None when it asks for none: then there is no accelerator memory to read."""
    for provider in providers:
        if provider in NVIDIA_PROVIDERS:
            device_id = options.get(provider, {}).get("device_id", 0)
            return int(device_id)
    return None
