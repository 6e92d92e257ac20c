"""Names the plugin needs at every pytest start-up: its environment variables.

Plain strings, so that registering the options in a project that never uses this
plugin imports none of the configuration machinery.  The markers' names and help
lines come from the one marker table, :mod:`..markers`.
"""

from __future__ import annotations

ENV_TARGET = "DEPLOYCHECK_TARGET"
ENV_CONFIG = "DEPLOYCHECK_CONFIG"
ENV_SOAK_MINUTES = "DEPLOYCHECK_SOAK_MINUTES"
ENV_ALLOW_PARTIAL = "DEPLOYCHECK_ALLOW_PARTIAL"
ENV_TIMING_LOCK = "DEPLOYCHECK_TIMING_LOCK"
ENV_LOCK_DIR = "DEPLOYCHECK_LOCK_DIR"
ENV_EMULATE = "DEPLOYCHECK_EMULATE"
ENV_JSON_REPORT = "DEPLOYCHECK_JSON"
ENV_HTML_REPORT = "DEPLOYCHECK_HTML"
ENV_RELEASE_DIR = "DEPLOYCHECK_RELEASE_DIR"
