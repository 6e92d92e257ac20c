"""Write ``data/production_sample.npz``: a production-like sample that does not drift.

The camera station's export is stood in for by 300 of the 450 held-out images, drawn
without replacement, as a camera would deliver them again: 1% Gaussian sensor noise
(the level ``test_models_agree_under_sensor_noise`` uses) and a per-image exposure
gain within +-1%, clipped to [0, 1].  Everything is seeded, and the archive is written
with fixed zip metadata, so running this again gives the same bytes.

Why a subset of the held-out images: the example ships no other unseen digits, and
training images would not be a production sample (the model has seen them).  Being
drawn from the reference itself, the sample is the no-drift case by construction;
what ``tests/test_drift.py`` shows is that this much noise stays below what the
drift test can detect with these sample sizes, while a washed-out camera does not.

Needs numpy only::

    python example_project/make_production_sample.py
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
HELD_OUT = HERE / "data" / "digits_test.npz"
PRODUCTION_SAMPLE = HERE / "data" / "production_sample.npz"
SEED = 20261201
ITEMS = 300
NOISE_SD = 0.01
GAIN = 0.01
ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)


def production_sample(images: np.ndarray, seed: int = SEED) -> np.ndarray:
    """*ITEMS* of *images* with sensor noise and exposure jitter, float32 in [0, 1]."""
    rng = np.random.default_rng(seed)
    chosen = images[np.sort(rng.choice(len(images), ITEMS, replace=False))]
    gain = rng.uniform(1.0 - GAIN, 1.0 + GAIN, size=(ITEMS, 1, 1, 1))
    noise = rng.normal(0.0, NOISE_SD, size=chosen.shape)
    return np.clip(chosen * gain + noise, 0.0, 1.0).astype(np.float32)


def save_npz_deterministic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """An .npz that np.load reads, with fixed zip metadata (as build_models.py writes)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_TIMESTAMP)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, buffer.getvalue())


def main() -> None:
    with np.load(HELD_OUT) as data:
        images = data["images"]
    save_npz_deterministic(PRODUCTION_SAMPLE, {"images": production_sample(images)})
    print(f"wrote {PRODUCTION_SAMPLE} ({ITEMS} images)")


if __name__ == "__main__":
    main()
