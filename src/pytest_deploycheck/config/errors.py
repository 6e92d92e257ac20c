"""The one exception of the configuration layer, in a module of its own.

Every config module raises it (schema, services); keeping it here lets them import
one another without a cycle.  The plugin turns it into ``pytest.UsageError``.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration problem, worded for the person who has to fix it."""
