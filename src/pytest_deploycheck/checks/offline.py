"""The ``offline`` marker: read its arguments and turn blocked network attempts into a check.

The block itself is :mod:`.netguard`; this module decides what a test asked for
(the marker, or a model that ``requires_offline`` when the configuration enforces it)
and how the attempts are judged.  Kept apart from the plugin so it is tested without
running pytest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .record import Check

if TYPE_CHECKING:
    from ..measure.netguard import Attempt, NetworkPolicy

SIGNATURE = "offline(allow_loopback=False, *, strict=True)"
HELP = (
    f"{SIGNATURE}: run the test (setup, body and the measuring child processes) with"
    " network access blocked at the socket level; a connect, datagram or host-name lookup"
    " fails the check naming the address. allow_loopback=True allows loopback, a list of"
    " ports allows those loopback ports only. strict=False passes a test that survives the"
    " loss (attempts are reported)"
)
CHECK_NAME = "offline"
SHOWN_ADDRESSES = 5


class OfflineMarkerError(ValueError):
    """An offline marker written with arguments that cannot work."""


@dataclass(frozen=True)
class OfflineRequest:
    """What one test runs under: the policy, strictness, and why it is offline."""

    allow_loopback: object = False
    strict: bool = True
    reason: str = "@pytest.mark.offline"

    def policy(self) -> NetworkPolicy:
        from ..measure.netguard import NetworkPolicy

        return NetworkPolicy.from_marker_value(self.allow_loopback)


def parse_offline_marker(args: Sequence[Any], kwargs: Mapping[str, Any]) -> OfflineRequest:
    """Validate ``@pytest.mark.offline(...)``; one line saying what is valid otherwise."""
    from ..measure.netguard import NetworkPolicy

    where = "@pytest.mark.offline"
    unknown = sorted(set(kwargs) - {"allow_loopback", "strict"})
    if unknown:
        raise OfflineMarkerError(
            f"{where}: unknown argument {unknown[0]!r}; the signature is {SIGNATURE}"
        )
    if len(args) > 1 or (args and "allow_loopback" in kwargs):
        raise OfflineMarkerError(f"{where}: give allow_loopback once; signature {SIGNATURE}")
    allow = args[0] if args else kwargs.get("allow_loopback", False)
    strict = kwargs.get("strict", True)
    if not isinstance(strict, bool):
        raise OfflineMarkerError(f"{where}: strict: expected True or False, got {strict!r}")
    try:
        NetworkPolicy.from_marker_value(allow)
    except ValueError as exc:
        raise OfflineMarkerError(f"{where}: {exc}") from None
    return OfflineRequest(allow_loopback=allow, strict=strict)


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
    policy = request.policy().describe()
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
        metric="network_attempts",
        value=len(blocked),
        unit="attempts",
        budget=0 if request.strict else None,
        passed=passed,
        provenance="measured",
        details=details,
        extra={
            "display": display,
            "attempts": [a.describe() for a in blocked][:100],
            "policy": policy,
            "strict": request.strict,
            "reason": request.reason,
        },
    )
