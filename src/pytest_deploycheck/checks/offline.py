"""The ``offline`` check: turn the network attempts of an offline test into a check.

The block itself is :mod:`..measure.netguard` and the marker's arguments are read by
:mod:`..markers`; this module decides what a test runs under (the marker, or a model
that ``requires_offline`` when the configuration enforces it) and how the attempts are
judged.  Kept apart from the plugin so it is tested without running pytest.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from ..markers import OfflineRequest
from .metrics import NETWORK_ATTEMPTS
from .record import Check

if TYPE_CHECKING:
    from ..measure.netguard import Attempt, NetworkPolicy

CHECK_NAME = "offline"
SHOWN_ADDRESSES = 5


def network_policy(request: OfflineRequest) -> NetworkPolicy:
    """The socket-level policy an offline request runs under."""
    from ..measure.netguard import NetworkPolicy

    return NetworkPolicy.from_marker_value(request.allow_loopback)


def for_models(models: Iterable[str]) -> OfflineRequest:
    """The request of a test that runs models declared ``requires_offline``."""
    names = ", ".join(sorted(set(models)))
    return OfflineRequest(reason=f"requires_offline model {names} (enforce_requires_offline)")


def offline_check(request: OfflineRequest, attempts: Sequence[Attempt]) -> Check:
    """Pass when nothing tried the network; strict=False only reports the attempts."""
    blocked = [a for a in attempts if not a.allowed]
    distinct = list(dict.fromkeys(a.describe() for a in blocked))
    shown = ", ".join(distinct[:SHOWN_ADDRESSES])
    if len(distinct) > SHOWN_ADDRESSES:
        shown += f" and {len(distinct) - SHOWN_ADDRESSES} more"
    policy = network_policy(request).describe()
    if not blocked:
        display = f"no network attempt ({policy})"
        details = ""
    else:
        display = f"{len(blocked)} blocked network attempt{'s' * (len(blocked) != 1)}: {shown}"
        details = f"tried the network while offline ({request.reason}): {shown}"
    passed = not blocked or not request.strict
    if blocked and not request.strict:
        details = f"survived {len(blocked)} blocked attempt(s) (strict=False): {shown}"
    return Check(
        name=CHECK_NAME,
        metric=NETWORK_ATTEMPTS,
        value=len(blocked),
        unit="attempts",
        budget=0 if request.strict else None,
        passed=passed,
        provenance="measured",
        details=details,
        display=display,
        extra={
            "attempts": [a.describe() for a in blocked][:100],
            "policy": policy,
            "strict": request.strict,
            "reason": request.reason,
        },
    )
