"""The offline marker's arguments (markers.py) and the offline check (checks/offline.py)."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_deploycheck.checks.offline import for_models, network_policy, offline_check
from pytest_deploycheck.markers import (
    OFFLINE,
    MarkerError,
    OfflineRequest,
    parse_offline_marker,
)
from pytest_deploycheck.measure.netguard import Attempt
from pytest_deploycheck.verdict.decide import decide

VALID_POLICY = "expected True, False or a list of port numbers 1-65535"


def marker_error(*args: Any, **kwargs: Any) -> str:
    with pytest.raises(MarkerError) as excinfo:
        parse_offline_marker(args, kwargs)
    message = str(excinfo.value)
    assert "\n" not in message
    assert message.startswith("@pytest.mark.offline: ")
    return message


def blocked(kind: str, address: str) -> Attempt:
    return Attempt(kind, address, allowed=False)


# --------------------------------------------------------------------------- the marker


def test_no_arguments_block_everything_strictly() -> None:
    request = parse_offline_marker((), {})

    assert request == OfflineRequest()
    assert (request.allow_loopback, request.strict) == (False, True)
    assert request.reason == "@pytest.mark.offline"
    assert network_policy(request).describe() == "network blocked"


@pytest.mark.parametrize(
    ("args", "kwargs"), [((True,), {}), ((), {"allow_loopback": True})], ids=["pos", "kw"]
)
def test_allow_loopback_true_opens_every_loopback_port(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    request = parse_offline_marker(args, kwargs)

    assert request.allow_loopback is True
    assert network_policy(request).allow_loopback is True
    assert network_policy(request).describe() == "network blocked (loopback allowed)"


@pytest.mark.parametrize("ports", [[8080, 9000], (9000, 8080), {8080, 9000}])
def test_a_list_of_ports_opens_those_loopback_ports_only(ports: Any) -> None:
    policy = network_policy(parse_offline_marker((ports,), {}))

    assert policy.allow_loopback is False
    assert policy.loopback_ports == frozenset({8080, 9000})
    assert policy.describe() == "network blocked (loopback allowed on ports 8080, 9000)"


def test_strict_false_is_kept() -> None:
    request = parse_offline_marker((), {"strict": False})

    assert request.strict is False
    assert request.allow_loopback is False


def test_unknown_keyword_names_it_and_the_signature() -> None:
    message = marker_error(allow=True)

    assert "unknown argument 'allow'" in message
    assert OFFLINE.signature in message
    assert "offline(allow_loopback=False, *, strict=True)" in message


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((True, False), {}), (([80],), {"allow_loopback": True})],
    ids=["two-positional", "positional-and-keyword"],
)
def test_allow_loopback_given_twice_is_refused(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    message = marker_error(*args, **kwargs)

    assert "give allow_loopback once" in message
    assert OFFLINE.signature in message


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("yes", "got 'yes'"),
        (1, "got 1"),
        (None, "got None"),
        ([0], "(0 is not a port number)"),
        ([70000], "(70000 is not a port number)"),
        (["8080"], "('8080' is not a port number)"),
        ([True], "(True is not a port number)"),
    ],
)
def test_bad_allow_loopback_says_what_is_valid(value: object, shown: str) -> None:
    message = marker_error(allow_loopback=value)

    assert f"allow_loopback: {VALID_POLICY}" in message
    assert shown in message


@pytest.mark.parametrize("value", ["no", 0, None])
def test_strict_must_be_a_boolean(value: object) -> None:
    message = marker_error(strict=value)

    assert f"strict: expected True or False, got {value!r}" in message


def test_for_models_names_the_models_once_in_order() -> None:
    request = for_models(["vision", "asr", "vision"])

    assert request.reason == "requires_offline model asr, vision (enforce_requires_offline)"
    assert (request.allow_loopback, request.strict) == (False, True)


# --------------------------------------------------------------------------- the check


def test_no_attempt_passes() -> None:
    check = offline_check(OfflineRequest(), [])

    assert (check.name, check.metric, check.unit) == ("offline", "network_attempts", "attempts")
    assert (check.value, check.budget, check.passed) == (0, 0, True)
    assert check.status == "PASS"
    assert check.display == "no network attempt (network blocked)"
    assert check.extra["attempts"] == []
    assert check.details == ""


def test_allowed_attempts_do_not_count() -> None:
    request = parse_offline_marker(([8080],), {})
    check = offline_check(request, [Attempt("connect", "127.0.0.1:8080", allowed=True)])

    assert (check.value, check.passed) == (0, True)
    assert check.display == "no network attempt (network blocked (loopback allowed on port 8080))"


def test_blocked_attempts_fail_naming_each_address_once() -> None:
    attempts = [
        blocked("connect", "127.0.0.1:5555"),
        blocked("resolve", "pypi.org:443"),
        blocked("connect", "127.0.0.1:5555"),
        Attempt("connect", "127.0.0.1:8080", allowed=True),
    ]

    check = offline_check(OfflineRequest(), attempts)

    assert (check.value, check.passed, check.status) == (3, False, "FAIL")
    shown = "connect to 127.0.0.1:5555, resolve pypi.org:443"
    assert check.display == f"3 blocked network attempts: {shown}"
    assert check.details == f"tried the network while offline (@pytest.mark.offline): {shown}"
    assert check.extra["attempts"] == [
        "connect to 127.0.0.1:5555",
        "resolve pypi.org:443",
        "connect to 127.0.0.1:5555",
    ]
    assert check.extra["strict"] is True


def test_one_blocked_attempt_is_singular() -> None:
    check = offline_check(OfflineRequest(), [blocked("sendto", "8.8.8.8:53")])

    assert check.display == "1 blocked network attempt: send to 8.8.8.8:53"


def test_at_most_five_addresses_then_how_many_more() -> None:
    attempts = [blocked("resolve", f"host{i}.example:443") for i in range(8)]

    check = offline_check(OfflineRequest(), attempts)

    names = ", ".join(f"resolve host{i}.example:443" for i in range(5))
    assert check.details.endswith(f": {names} and 3 more")
    assert "host5" not in check.details
    assert check.display == f"8 blocked network attempts: {names} and 3 more"


def test_strict_false_passes_and_says_the_test_survived() -> None:
    request = parse_offline_marker((), {"strict": False})
    attempts = [blocked("resolve", "pypi.org:443"), blocked("connect", "192.0.2.1:53")]

    check = offline_check(request, attempts)

    assert (check.passed, check.status, check.budget, check.value) == (True, "PASS", None, 2)
    assert check.details == (
        "survived 2 blocked attempt(s) (strict=False):"
        " resolve pypi.org:443, connect to 192.0.2.1:53"
    )
    assert check.extra["strict"] is False
    assert decide([check], target="edge").release_candidate is True


def test_the_check_names_the_requires_offline_models() -> None:
    check = offline_check(for_models(["optimized"]), [blocked("resolve", "hub.example:443")])

    assert check.passed is False
    assert "requires_offline model optimized (enforce_requires_offline)" in check.details
    assert check.extra["reason"] == "requires_offline model optimized (enforce_requires_offline)"
    assert decide([check], target="edge").release_candidate is False
