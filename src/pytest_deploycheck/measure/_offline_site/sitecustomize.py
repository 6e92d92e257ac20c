"""Blocks the network of a Python service started with ``offline = true``.

Imported by Python itself at start-up because measure.service puts this directory first
on the service's PYTHONPATH; the variables it reads say the policy (loopback allowed)
and where to log blocked attempts.  It must never stop the service from starting: a
service whose interpreter cannot import the plugin simply runs unblocked, and the
offline check then has no attempts to read (said in the README).
"""

from __future__ import annotations

try:
    from pytest_deploycheck.measure.netguard import install_from_environment
except ImportError:  # another interpreter, without the plugin installed
    pass
else:
    install_from_environment()
