"""The service fixtures, config keys and service checks, as a user's project uses them.

Each project copies tests/services/echo_service.py (standard library only) in and
configures it under [tool.deploycheck.services.echo].  Runs are in-process: the
services are children of the pytester run, stopped at its session end.  Budgets are
far from anything measured, so no assertion depends on the host's speed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import psutil
import pytest

from conftest import PLACEHOLDER_FILES, DeployProject, toml_value

ECHO = Path(__file__).resolve().parent / "services" / "echo_service.py"
FILES = {**PLACEHOLDER_FILES, "echo_service.py": ECHO}


def service_table(name: str = "echo", *options: str, **keys: object) -> str:
    """A [tool.deploycheck.services.NAME] table running the echo service."""
    command = [sys.executable, "echo_service.py", "--port", "{port}", *options]
    lines = [f"[tool.deploycheck.services.{name}]", f"command = {toml_value(command)}"]
    # Generous: a busy 2-core host under -n auto starts Python slowly.
    keys = {"startup_timeout_s": 60, **keys}
    lines += [f"{key} = {toml_value(value)}" for key, value in keys.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture
def project(deploy_project: DeployProject) -> DeployProject:
    return deploy_project.replace(files=FILES, extra=service_table(), target="edge-a")


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def test_fixtures_start_the_service_once_and_stop_it_at_session_end(
    project: DeployProject,
) -> None:
    project.make(
        """
        from pathlib import Path

        def test_first(deploy_service, deploy_services):
            assert deploy_services["echo"] is deploy_service
            assert deploy_service.url.startswith("http://127.0.0.1:")
            assert deploy_service.client.get("/health").status_code == 200
            assert deploy_service.client.post("/echo", json={"a": 1}).json() == {"echo": {"a": 1}}
            Path("pids.txt").write_text(f"{deploy_service.pid}\\n")

        def test_second(deploy_services):
            with open("pids.txt", "a") as pids:
                pids.write(f"{deploy_services['echo'].pid}\\n")
        """
    )
    result = project.pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    pids = {int(line) for line in (project.path / "pids.txt").read_text().split()}
    assert len(pids) == 1  # one start per session, the same service for both tests
    assert not _alive(pids.pop())


def test_a_test_using_a_service_fixture_counts_as_a_deploy_test(project: DeployProject) -> None:
    project.make("def test_uses(deploy_service):\n    pass\n")
    project.pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
    # Evidence is written only for a run with deploy tests in it.
    assert (project.evidence() / "report.json").is_file()


def test_an_unknown_service_name_fails_the_test_naming_the_configured_ones(
    project: DeployProject,
) -> None:
    project.make("def test_typo(deploy_services):\n    deploy_services['ehco']\n")
    result = project.pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*deploy_services[[]'ehco'[]]: no such service (did you mean 'echo'?); configured: echo"]
    )
    result.stdout.no_fnmatch_line("*Traceback*")
    result.stdout.no_fnmatch_line("*INTERNALERROR*")


def test_a_service_that_cannot_start_fails_in_one_line_with_its_stderr(
    deploy_project: DeployProject,
) -> None:
    project = deploy_project.replace(files=FILES, extra=service_table("echo", "--exit-code", "3"))
    project.make(
        """
        def test_body(deploy_services):
            deploy_services["echo"]

        def test_fixture(deploy_service):
            pass
        """
    )
    result = project.pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1, errors=1)
    line = (
        "*service echo: exited with code 3 before GET /health answered 2xx on"
        " http://127.0.0.1:*; stderr: echo service starting (pid *)"
        " | echo service: told to exit before binding"
    )
    result.stdout.fnmatch_lines([line, line])  # the body's failure, the fixture's error
    result.stdout.no_fnmatch_line("*During handling*")
    result.stdout.no_fnmatch_line("*INTERNALERROR*")


def test_deploy_service_without_a_service_says_how_to_add_one(
    deploy_project: DeployProject,
) -> None:
    deploy_project.make("def test_needs(deploy_service):\n    pass\n")
    result = deploy_project.pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*pyproject.toml: no service configured: add [[]tool.deploycheck.services.NAME[]]*"]
    )
    result.stdout.no_fnmatch_line("*INTERNALERROR*")


def test_deploy_service_with_two_services_and_no_default_names_both(
    deploy_project: DeployProject,
) -> None:
    extra = service_table("api") + service_table("worker")
    deploy_project.make("def test_needs(deploy_service):\n    pass\n", files=FILES, extra=extra)
    result = deploy_project.pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*pyproject.toml: 2 services (api, worker): set default_service to one of them"]
    )


def test_default_service_picks_among_several(deploy_project: DeployProject) -> None:
    extra = service_table("api") + service_table("worker")
    deploy_project.make(
        "def test_needs(deploy_service):\n    assert deploy_service.name == 'worker'\n",
        files=FILES,
        extra=extra,
        top='default_service = "worker"',
    )
    deploy_project.pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("top", "extra", "line"),
    [
        (
            "",
            '[tool.deploycheck.services.echo]\ncomand = ["x", "{port}"]\n',
            "ERROR: pyproject.toml: [[]tool.deploycheck.services.echo[]] has the unknown key"
            " 'comand' (did you mean command?); valid keys: *",
        ),
        (
            'default_service = "nope"',
            service_table(),
            "ERROR: pyproject.toml: [[]tool.deploycheck[]]: default_service: unknown service"
            " 'nope'; services defines: echo",
        ),
    ],
    ids=["unknown-key", "default-names-nothing"],
)
def test_service_config_errors_are_one_line_usage_errors(
    deploy_project: DeployProject, top: str, extra: str, line: str
) -> None:
    deploy_project.make("def test_x():\n    pass\n", files=FILES, top=top, extra=extra)
    result = deploy_project.pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([line])
    result.stderr.no_fnmatch_line("*Traceback*")


def test_memory_under_judges_the_service_process_tree(deploy_project: DeployProject) -> None:
    project = deploy_project.replace(
        files=FILES, extra=service_table("echo", "--spawn-child"), target="edge-a"
    )
    project.make(
        """
        from pytest_deploycheck import memory_under

        @memory_under(100000, repeat=3)
        def test_service_memory(deploy_service):
            assert deploy_service.client.get("/health").status_code == 200
        """
    )
    result = project.pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    check = project.checks(metric="peak_memory")["test_service_memory"]
    assert check["status"] == "PASS"
    assert check["unit"] == "MB"
    assert check["value"] > 0
    assert check["details"] == (
        "peak RSS of service echo's process tree (2 processes), sampled every 10 ms"
    )
    assert check["extra"]["services"] == ["echo"]


def test_memory_under_on_deploy_services_measures_the_service_the_body_uses(
    deploy_project: DeployProject,
) -> None:
    extra = service_table("api") + service_table("other")
    project = deploy_project.replace(files=FILES, extra=extra, target="edge-a")
    project.make(
        """
        from pytest_deploycheck import memory_under

        def test_starts_other(deploy_services):
            deploy_services["other"]

        @memory_under(100000, repeat=2)
        def test_api_memory(deploy_services):
            deploy_services["api"].client.get("/health")
        """
    )
    project.pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)
    check = project.checks(metric="peak_memory")["test_api_memory"]
    assert check["details"].startswith("peak RSS of service api's process tree (1 process)")
    assert check["value"] > 0


def test_cold_start_under_a_service_is_start_to_ready(project: DeployProject) -> None:
    project.make(
        """
        from pytest_deploycheck import cold_start_under

        @cold_start_under(600000, service="echo", runs=2)
        def test_service_cold_start():
            pass
        """
    )
    result = project.pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    check = project.checks(metric="cold_start")["test_service_cold_start"]
    assert check["status"] == "PASS"
    assert check["value"] > 0
    assert check["extra"]["n"] == 2
    assert check["extra"]["service"] == "echo"
    assert "of service echo (n=2;" in check["display"]


def test_cold_start_of_a_service_that_cannot_start_fails_in_one_line(
    deploy_project: DeployProject,
) -> None:
    project = deploy_project.replace(files=FILES, extra=service_table("echo", "--exit-code", "4"))
    project.make(
        """
        from pytest_deploycheck import cold_start_under

        @cold_start_under(600000, service="echo", runs=2)
        def test_broken():
            pass
        """
    )
    result = project.pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*cold_start_under: service echo: exited with code 4 before*"])
    result.stdout.no_fnmatch_line("*INTERNALERROR*")


@pytest.mark.parametrize(
    ("arguments", "line"),
    [
        (
            'service="nope"',
            "*@cold_start_under service: unknown service 'nope'; configured services: echo",
        ),
        (
            'service="echo", model="optimized"',
            "*@cold_start_under: give model= or service=, not both*",
        ),
        ("service=3", "*@cold_start_under service: expected a configured service name, got 3"),
    ],
    ids=["unknown", "with-model", "not-a-name"],
)
def test_cold_start_service_option_is_validated(
    project: DeployProject, arguments: str, line: str
) -> None:
    project.make(
        f"""
        import pytest

        @pytest.mark.cold_start_under(1000, {arguments})
        def test_marked():
            pass
        """
    )
    result = project.pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([line])
    result.stdout.no_fnmatch_line("*INTERNALERROR*")


def test_soak_on_a_service_follows_the_service_memory(project: DeployProject) -> None:
    project.make(
        """
        from pytest_deploycheck import soak

        @soak(0.01, sample_interval_s=0.05, growth_mb_per_hour=1e6, max_error_rate=1)
        def test_service_soak(deploy_service):
            deploy_service.client.get("/health")
        """
    )
    project.pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
    check = project.checks(metric="soak_memory_growth")["test_service_soak"]
    assert check["extra"]["memory_of"] == "RSS of service echo's process tree"


OFFLINE_TESTS = """
import pytest


@pytest.mark.offline(allow_loopback=True)
def test_serves_offline(deploy_service):
    assert deploy_service.client.get("/health").status_code == 200


@pytest.mark.offline(allow_loopback=True)
def test_phones_home(deploy_service):
    outcome = deploy_service.client.get("/phone-home").json()["outcome"]
    assert outcome == "refused: NetworkBlockedError"
"""


def test_an_offline_service_runs_blocked_and_its_attempts_fail_the_offline_test(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    extra = service_table(offline=True)
    deploy_project.replace(files=FILES, extra=extra, target="edge-a").make(OFFLINE_TESTS)
    result = pytester.runpytest()
    # The service's own connect was refused inside it (the body's assert passes), and
    # the offline check of the test that made it ask fails on the attempt it logged.
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*test_phones_home*", "*192.0.2.1*"])
    result.stdout.no_fnmatch_line("*INTERNALERROR*")


def test_a_service_not_marked_offline_is_not_blocked(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    deploy_project.replace(files=FILES, extra=service_table(), target="edge-a").make(
        """
def test_phone_home_is_not_tried(deploy_service):
    outcome = deploy_service.client.get("/phone-home").json()["outcome"]
    assert outcome == "not attempted: no block in the environment"
"""
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_offline_must_be_true_or_false(
    pytester: pytest.Pytester, deploy_project: DeployProject
) -> None:
    extra = service_table(offline="yes")
    deploy_project.replace(files=FILES, extra=extra, target="edge-a").make(
        "def test_x():\n    pass\n"
    )
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*[[]tool.deploycheck.services.echo[]] offline must be true or false, got 'yes'*"]
    )
