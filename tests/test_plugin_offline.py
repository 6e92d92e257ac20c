"""The offline marker and enforce_requires_offline as users run them.

Every socket here is on loopback; a refused connect or lookup is stopped inside the
process before it happens, so no test needs (or uses) an external network.  The
loopback server is a listening socket of this process: connects complete through its
backlog, nothing has to accept them.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import DeployProject

MODELS = Path(__file__).resolve().parent / "models"

LOOKUP = """
import socket

def look_up(host="deploycheck-offline.example"):
    try:
        socket.getaddrinfo(host, 443)
    except socket.gaierror:
        pass  # swallowed: the check must fail all the same
"""


def offline_models(requires_offline: bool = True) -> dict[str, dict[str, object]]:
    """This module's two models: optimized (requires_offline unless told not) and online."""
    return {
        "optimized": {"path": "models/tiny.onnx", "requires_offline": requires_offline},
        "online": {"path": "models/two.onnx"},
    }


@pytest.fixture
def deploy_project(deploy_project: DeployProject) -> DeployProject:
    """This module's projects: two tiny test models on an offline device, the target."""
    return deploy_project.replace(
        target="edge",
        models=offline_models(),
        devices=({"name": "edge", "memory_mb": 100000, "cpus": 1, "offline": True},),
        files={
            "models/tiny.onnx": MODELS / "tiny_linear.onnx",
            "models/two.onnx": MODELS / "two_inputs.onnx",
        },
    )


@pytest.fixture
def server_port() -> Iterator[int]:
    """A listening loopback TCP port of this process."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(32)
        yield listener.getsockname()[1]


# --------------------------------------------------------------------------- the marker

LOOPBACK_TESTS = """
import socket
import pytest

PORT = {port}
OTHER = {other}


def connect():
    with socket.create_connection(("127.0.0.1", PORT), timeout=10):
        pass


@pytest.mark.offline
def test_swallowed():
    try:
        connect()
    except OSError:
        pass


@pytest.mark.offline
def test_raised():
    connect()


@pytest.mark.offline(allow_loopback=True)
def test_any_loopback():
    connect()


@pytest.mark.offline(allow_loopback=[PORT])
def test_listed_port():
    connect()


@pytest.mark.offline(allow_loopback=[OTHER])
def test_other_port():
    connect()


@pytest.mark.offline(strict=False)
def test_survives():
    try:
        connect()
    except OSError as exc:
        assert "network access blocked" in str(exc)
    else:
        raise AssertionError("the connect went through")


def test_unmarked_afterwards():
    connect()
"""


@pytest.fixture
def loopback_run(
    pytester: pytest.Pytester, deploy_project: DeployProject, server_port: int
) -> tuple[pytest.RunResult, int]:
    other = server_port + 1 if server_port < 65535 else server_port - 1
    tests = LOOPBACK_TESTS.format(port=server_port, other=other)
    deploy_project.make(tests, "test_user_offline_loopback")
    return pytester.runpytest("-rA"), server_port


def test_a_loopback_connect_fails_an_offline_test_naming_the_address(
    deploy_project: DeployProject, loopback_run: tuple[pytest.RunResult, int]
) -> None:
    result, port = loopback_run
    result.assert_outcomes(passed=4, failed=3)
    address = f"127.0.0.1:{port}"
    result.stdout.fnmatch_lines(
        [
            "*_ test_swallowed _*",
            "offline: 1 attempts (budget 0 attempts) - tried the network while offline"
            f" (@pytest.mark.offline): connect to {address}",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*NetworkBlockedError: *network access blocked (offline check):"
            f" connect to {address}; allow loopback ports with"
            f" @pytest.mark.offline(allow_loopback=[[]{port}[]])*",
        ]
    )
    result.stdout.fnmatch_lines(
        [f"offline*1 blocked network attempt: connect to {address}*budget 0 attempts*FAIL"]
    )
    checks = deploy_project.checks(name="offline")
    for name in ("test_swallowed", "test_raised"):
        check = checks[name]
        assert (check["status"], check["value"]) == ("FAIL", 1)
        assert check["extra"]["attempts"] == [f"connect to {address}"]
        assert check["extra"]["policy"] == "network blocked"
    result.stdout.fnmatch_lines(["release_candidate: False"])


def test_allow_loopback_opens_loopback_or_the_listed_ports_only(
    deploy_project: DeployProject, loopback_run: tuple[pytest.RunResult, int]
) -> None:
    result, port = loopback_run
    result.stdout.fnmatch_lines(["PASSED *::test_any_loopback", "PASSED *::test_listed_port"])
    checks = deploy_project.checks(name="offline")
    assert checks["test_any_loopback"]["status"] == "PASS"
    assert checks["test_any_loopback"]["extra"]["policy"] == "network blocked (loopback allowed)"
    assert checks["test_listed_port"]["status"] == "PASS"
    assert checks["test_listed_port"]["display"] == (
        f"no network attempt (network blocked (loopback allowed on port {port}))"
    )
    other = checks["test_other_port"]
    assert other["status"] == "FAIL"
    assert other["extra"]["attempts"] == [f"connect to 127.0.0.1:{port}"]
    result.stdout.fnmatch_lines(
        ["*_ test_other_port _*", f"*NetworkBlockedError: *connect to 127.0.0.1:{port};*"]
    )


def test_strict_false_passes_a_test_that_survives_and_reports_the_attempt(
    deploy_project: DeployProject, loopback_run: tuple[pytest.RunResult, int]
) -> None:
    result, port = loopback_run
    result.stdout.fnmatch_lines(["PASSED *::test_survives"])
    check = deploy_project.checks(name="offline")["test_survives"]
    assert (check["status"], check["value"], check["budget"]) == ("PASS", 1, None)
    assert check["details"] == (
        f"survived 1 blocked attempt(s) (strict=False): connect to 127.0.0.1:{port}"
    )


def test_the_block_ends_with_the_test(
    deploy_project: DeployProject, loopback_run: tuple[pytest.RunResult, int]
) -> None:
    result, _ = loopback_run
    result.stdout.fnmatch_lines(["PASSED *::test_unmarked_afterwards"])
    assert "test_unmarked_afterwards" not in deploy_project.checks(name="offline")


def test_a_swallowed_host_name_lookup_fails_naming_the_host(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    tests = LOOKUP + "\nimport pytest\n\n@pytest.mark.offline\ndef test_lookup():\n    look_up()\n"
    deploy_project.make(tests, "test_user_offline_lookup")
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "offline: 1 attempts (budget 0 attempts) - tried the network while offline"
            " (@pytest.mark.offline): resolve deploycheck-offline.example:443",
            "offline*1 blocked network attempt: resolve deploycheck-offline.example:443*FAIL",
        ]
    )
    assert deploy_project.checks(name="offline")["test_lookup"]["extra"]["attempts"] == [
        "resolve deploycheck-offline.example:443"
    ]


# --------------------------------------------------------------------------- requires_offline

ENFORCED_TESTS = (
    LOOKUP
    + """

def test_model(deploy_model):
    look_up()
    deploy_model.run(deploy_model.example_inputs())


def test_no_model(deploy_target):
    look_up()
"""
)


def test_enforce_requires_offline_blocks_the_tests_of_such_a_model(
    pytester: pytest.Pytester,
    deploy_project: DeployProject,
) -> None:
    deploy_project.make(
        ENFORCED_TESTS,
        "test_user_offline_enforced",
        top="enforce_requires_offline = true",
    )
    result = pytester.runpytest("-rA")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*_ test_model _*",
            "offline: 1 attempts (budget 0 attempts) - tried the network while offline"
            " (requires_offline model optimized (enforce_requires_offline)):"
            " resolve deploycheck-offline.example:443",
        ]
    )
    result.stdout.fnmatch_lines(["PASSED *::test_no_model"])
    checks = deploy_project.checks(name="offline")
    assert list(checks) == ["test_model"]
    assert checks["test_model"]["extra"]["reason"] == (
        "requires_offline model optimized (enforce_requires_offline)"
    )


@pytest.mark.parametrize(
    ("top", "requires"),
    [
        ("", True),
        ("enforce_requires_offline = false", True),
        ("enforce_requires_offline = true", False),
        pytest.param(
            'enforce_requires_offline = true\ndefault_model = "online"', True, id="other-model"
        ),
    ],
    ids=["not-enforced", "enforce-false", "not-required", "other-model"],
)
def test_no_block_without_enforcement_or_a_requires_offline_model(
    pytester: pytest.Pytester, deploy_project: DeployProject, top: str, requires: bool
) -> None:
    deploy_project.make(
        ENFORCED_TESTS, "test_user_offline_enforced", top=top, models=offline_models(requires)
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2)
    assert deploy_project.checks(name="offline") == {}


# --------------------------------------------------------------------------- child processes

CHILD_TESTS = """
import os
import socket
import pytest


@pytest.mark.offline
@pytest.mark.memory_under(2000, repeat=1)
def test_memory():
    if {only_in_child} and "DEPLOYCHECK_MEMORY_CHILD" not in os.environ:
        return
    try:
        socket.getaddrinfo("child.example", 80)
    except OSError:
        pass
"""


def test_the_memory_child_is_offline_too(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.make(CHILD_TESTS.format(only_in_child=False), "test_user_offline_memory")
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    # The child blocked the lookup as well: its own offline check failed the child's run.
    result.stdout.fnmatch_lines(
        ["memory_under: the test failed in the child process: offline: *: resolve child.example:80"]
    )
    check = deploy_project.checks(name="offline")["test_memory"]
    assert check["status"] == "FAIL"
    assert "resolve child.example:80" in check["extra"]["attempts"]
    assert check["details"].endswith(": resolve child.example:80")


def test_an_attempt_made_only_in_the_memory_child_fails_the_parents_check(
    pytester: pytest.Pytester,
    deploy_project: DeployProject,
) -> None:
    deploy_project.make(CHILD_TESTS.format(only_in_child=True), "test_user_offline_memchild")
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    check = deploy_project.checks(name="offline")["test_memory"]
    assert check["status"] == "FAIL"
    assert check["extra"]["attempts"] == ["resolve child.example:80"]


def test_the_cold_start_child_runs_the_model_offline(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    tests = """
import pytest


@pytest.mark.offline
@pytest.mark.cold_start_under(60000, runs=1)
def test_cold(deploy_model):
    deploy_model.run(deploy_model.example_inputs())
"""
    deploy_project.make(tests, "test_user_offline_cold")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["cold_start_under_60000 *(n=1;*PASS"])
    result.stdout.fnmatch_lines(["offline*no network attempt (network blocked)*PASS"])
    assert deploy_project.checks(name="offline")["test_cold"]["value"] == 0


# --------------------------------------------------------------------------- collection


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ("offline(allow_loopback='yes')", "allow_loopback: expected True, False or a list*"),
        ("offline([0])", "allow_loopback: *(0 is not a port number)"),
        ("offline(strict='no')", "strict: expected True or False, got 'no'"),
        ("offline(allow=True)", "unknown argument 'allow'; the signature is offline(*"),
    ],
)
def test_a_bad_marker_argument_is_a_one_line_collection_error(
    pytester: pytest.Pytester, deploy_project: DeployProject, marker: str, message: str
) -> None:
    tests = f"import pytest\n\n@pytest.mark.{marker}\ndef test_x():\n    pass\n"
    deploy_project.make(tests, "test_user_offline_bad")
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [f"test_user_offline_bad.py::test_x: @pytest.mark.offline: {message}"]
    )
    result.stdout.no_fnmatch_line("*During handling of the above exception*")
    result.stdout.no_fnmatch_line("*Traceback*")
    result.stdout.no_fnmatch_line("*INTERNALERROR*")


def test_markers_lists_offline_with_its_signature(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(
        ["@pytest.mark.offline(allow_loopback=False, *, strict=True): run the test (setup,*"]
    )
