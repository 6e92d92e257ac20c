"""Deploy tests on a device through xdist: popen gateways to this interpreter stand in.

Each run is a subprocess (runpytest_subprocess): xdist starts gateway processes and an
in-process run would share this process's imported plugin state with them.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Generator
from pathlib import Path

import pytest

from conftest import DeployProject

pytest.importorskip("xdist")

POPEN = f"popen//python={sys.executable}"
# The tiny real ONNX model of tests/models; budgets far from what it measures.
TESTS = """
import pytest

@pytest.mark.latency_under(ms=60000, warmup=1, max_samples=200, max_time_s=20)
def test_fast(deploy_model):
    deploy_model.run(deploy_model.example_inputs())

def test_where(deploy_target):
    import os
    assert os.environ.get("PYTEST_XDIST_WORKER"), "ran on the controller, not the device"
"""


@pytest.fixture
def device_project(deploy_project: DeployProject, request: pytest.FixtureRequest) -> DeployProject:
    models_dir = request.path.parent / "models"
    model = models_dir / "tiny_linear.onnx"
    return deploy_project.replace(
        models={"optimized": {"path": f"models/{model.name}"}},
        files={f"models/{model.name}": model},
        devices=[{"name": "edge-c", "cpus": 1, "host": POPEN}, "edge-a"],
    )


def test_runs_on_the_device_and_judges_on_the_controller(device_project: DeployProject) -> None:
    device_project.make(TESTS)
    result = run(device_project, "--deploy-target", "edge-c")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [f"deploycheck: edge-c runs on its host {POPEN}", "release_candidate: True*"]
    )
    report = device_project.report("edge-c")
    where = report["environment"]["measured_on"]["edge-c"]
    assert where["gateway"] == POPEN
    assert where["hostname"] == socket.gethostname()
    (check,) = [c for c in report["checks"] if c["metric"].startswith("latency")]
    assert check["extra"]["measured_on"] == where


def run(project: DeployProject, *args: str) -> pytest.RunResult:
    return project.pytester.runpytest_subprocess(*args, "-p", "no:cacheprovider", timeout=240)


def test_models_that_differ_on_the_device_fail_the_run_in_one_line(
    device_project: DeployProject,
) -> None:
    """The gateway's working directory is another copy of the project, its model changed."""
    device_project.make(TESTS)
    copy = device_project.path / "device-copy"
    (copy / "models").mkdir(parents=True)
    (copy / "models" / "tiny_linear.onnx").write_bytes(b"an older model")
    device_project.configure(
        devices=[{"name": "edge-c", "host": f"{POPEN}//chdir={copy}"}, "edge-a"]
    )
    result = run(device_project, "--deploy-target", "edge-c")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*edge-c: models/tiny_linear.onnx differs from the controller's (sha256 *.. vs *..):"
            " copy the project's models to the device"
        ]
    )
    result.stdout.no_fnmatch_line("*INTERNALERROR*")


def test_a_tx_the_user_gave_is_used_and_no_other_added(device_project: DeployProject) -> None:
    device_project.make(TESTS)
    result = run(device_project, "--deploy-target", "edge-c", "--tx", POPEN)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [f"deploycheck: edge-c runs through the --tx given: {POPEN} (the devices table*"]
    )
    result.stdout.fnmatch_lines(["created: 1/1 worker"])


def test_a_device_without_host_runs_here(device_project: DeployProject) -> None:
    device_project.make("def test_where(deploy_target):\n    pass\n")
    result = device_project.pytester.runpytest(
        "--deploy-target", "edge-a", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("deploycheck: edge-a runs*")


def test_a_device_with_host_needs_xdist(device_project: DeployProject) -> None:
    device_project.make("def test_where(deploy_target):\n    pass\n")
    result = run(device_project, "--deploy-target", "edge-c", "-p", "no:xdist")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*device 'edge-c' has host = *needs pytest-xdist; install it*"])


@pytest.mark.parametrize("host", ["sh=pi@edge", "popen//pyhton=/usr/bin/python3", "2*popen", ""])
def test_a_host_of_the_wrong_shape_is_a_one_line_config_error(
    device_project: DeployProject, host: str
) -> None:
    device_project.make("def test_x():\n    pass\n", devices=[{"name": "edge-c", "host": host}])
    result = device_project.pytester.runpytest("--deploy-target", "edge-c")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*(edge-c)*host: expected an execnet gateway spec as xdist's --tx*"]
    )


SSHD = Path("/usr/sbin/sshd")


@pytest.fixture
def loopback_sshd(tmp_path: Path) -> Generator[Path, None, None]:
    """An sshd on 127.0.0.1 and a free port, and an ssh_config that reaches it with a key.

    Host key checking is off for this throwaway server only (ssh_config in tmp_path).
    """
    if not SSHD.is_file() or shutil.which("ssh") is None:
        pytest.skip("sshd cannot run here: openssh-server is not installed (.ci/run installs it)")
    privsep = Path("/run/sshd")
    if not privsep.is_dir():
        if os.geteuid() != 0:
            pytest.skip("sshd cannot run here: /run/sshd is missing and this is not root")
        privsep.mkdir(mode=0o755, exist_ok=True)
    for name in ("host_key", "client_key"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / name)],
            check=True,
            timeout=60,
        )
    (tmp_path / "authorized_keys").write_text((tmp_path / "client_key.pub").read_text())
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sshd_config = tmp_path / "sshd_config"
    sshd_config.write_text(
        f"HostKey {tmp_path / 'host_key'}\nAuthorizedKeysFile {tmp_path / 'authorized_keys'}\n"
        f"PidFile {tmp_path / 'sshd.pid'}\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n"
        "PermitRootLogin prohibit-password\nAcceptEnv no\n"
    )
    with (tmp_path / "sshd.log").open("wb") as log:  # the child keeps its own copy
        server = subprocess.Popen(
            [
                str(SSHD),
                "-D",
                "-e",
                "-f",
                str(sshd_config),
                "-p",
                str(port),
                "-o",
                "ListenAddress=127.0.0.1",
            ],
            stderr=log,
        )
    client = tmp_path / "ssh_config"
    client.write_text(
        f"Host deploy-device\n  HostName 127.0.0.1\n  Port {port}\n  User {getpass.getuser()}\n"
        f"  IdentityFile {tmp_path / 'client_key'}\n  IdentitiesOnly yes\n  BatchMode yes\n"
        "  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n"
    )
    try:
        _wait_for_port(port, server)
        yield client
    finally:
        server.terminate()
        server.wait(timeout=30)


def _wait_for_port(port: int, server: subprocess.Popen[bytes]) -> None:
    for _ in range(200):  # 20 s at most
        if server.poll() is not None:
            pytest.skip(f"sshd cannot run here: it exited with {server.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.1)
    pytest.skip("sshd cannot run here: it did not listen within 20 s")


def test_a_real_ssh_gateway_to_a_loopback_sshd(
    device_project: DeployProject, loopback_sshd: Path
) -> None:
    """The same path a Raspberry Pi takes: ssh, the remote python, the project's copy."""
    host = (
        f"ssh=deploy-device//ssh_config={loopback_sshd}//python={sys.executable}"
        f"//chdir={device_project.path}"
    )
    device_project.make(TESTS, devices=[{"name": "edge-c", "host": host}, "edge-a"])
    result = run(device_project, "--deploy-target", "edge-c")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["release_candidate: True*"])
    where = device_project.report("edge-c")["environment"]["measured_on"]["edge-c"]
    assert where["gateway"] == host
    assert where["python"] == platform.python_version()


FLEET_TESTS = """
import os
import pytest

@pytest.mark.latency_under(ms=60000, warmup=1, max_samples=200, max_time_s=20)
def test_fast(deploy_model):
    deploy_model.run(deploy_model.example_inputs())

def test_on_its_own_device(deploy_target):
    assert os.environ["PYTEST_XDIST_WORKER"] == deploy_target.name

def test_edge_a_misses(deploy_target):
    assert deploy_target.name != "edge-a", "edge-a misses"
"""


def fleet(project: DeployProject) -> DeployProject:
    return project.replace(
        devices=[
            {"name": "edge-a", "cpus": 1, "host": POPEN},
            {"name": "edge-c", "cpus": 1, "host": POPEN},
            "edge-b",
        ]
    )


def test_a_fleet_runs_each_target_on_its_own_device_and_judges_each(
    device_project: DeployProject,
) -> None:
    project = fleet(device_project)
    project.make(FLEET_TESTS)
    result = run(project, "--deploy-target", "edge-a,edge-c")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=5, failed=1)
    result.stdout.fnmatch_lines(["deploycheck: fleet of 2: edge-a on popen*; edge-c on popen*"])
    result.stdout.fnmatch_lines(
        [
            "*deploy readiness: edge-a*",
            "release_candidate: False",
            "*deploy readiness: edge-c*",
            "release_candidate: True*",
            "*deploy readiness: fleet*",
            "fleet release_candidate: False (edge-a: False, edge-c: True)",
        ]
    )
    for target, expected in (("edge-a", False), ("edge-c", True)):
        report = project.report(target)
        assert report["verdict"]["release_candidate"] is expected
        assert report["target_device"]["name"] == target
        (check,) = [c for c in report["checks"] if c["metric"].startswith("latency")]
        assert check["extra"]["measured_on"]["gateway"] == POPEN
        assert report["environment"]["measured_on"][target]["gateway"] == POPEN
    assert project.report("edge-a")["failed_tests"] == ["test_deploy.py::test_edge_a_misses"]
    assert project.report("edge-c")["failed_tests"] == []


def test_a_fleet_with_a_target_without_host_is_refused_naming_it(
    device_project: DeployProject,
) -> None:
    fleet(device_project).make(FLEET_TESTS)
    result = device_project.pytester.runpytest("--deploy-target", "edge-a,edge-b")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*'edge-a,edge-b': one target per run, unless every target has a host*'edge-b' has none*"]
    )


def test_a_fleet_makes_its_own_gateways(device_project: DeployProject) -> None:
    fleet(device_project).make(FLEET_TESTS)
    result = run(device_project, "--deploy-target", "edge-a,edge-c", "--tx", POPEN)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*a fleet run makes one gateway per device*drop --tx*"])


CRASH_TESTS = """
import os
import pytest

@pytest.mark.latency_under(ms=60000, warmup=1, max_samples=200, max_time_s=20)
def test_fast(deploy_model):
    deploy_model.run(deploy_model.example_inputs())

def test_device_dies(deploy_target):
    if deploy_target.name == "edge-a":
        os._exit(3)  # the device's worker is lost mid-run
"""


def test_a_device_lost_mid_run_makes_its_target_false_and_the_fleet_false(
    device_project: DeployProject,
) -> None:
    project = fleet(device_project)
    project.make(CRASH_TESTS)
    result = run(project, "--deploy-target", "edge-a,edge-c")
    assert result.ret != pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["fleet release_candidate: False (edge-a: False, edge-c: True)"])
    assert project.report("edge-a")["verdict"]["release_candidate"] is False
    assert project.report("edge-c")["verdict"]["release_candidate"] is True
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
