"""Shared set-up of the plugin's own test suite."""

# In-process pytester runs forget the modules first imported inside them, and numpy's
# and onnxruntime's extension modules cannot be loaded twice in one process: import
# them here, once, so the runs share them.
import numpy  # noqa: F401
import onnxruntime  # noqa: F401
from hypothesis import settings

# A shared, noisy machine must never fail a test: no per-example time limit.
settings.register_profile("deploycheck", deadline=None)
settings.load_profile("deploycheck")
