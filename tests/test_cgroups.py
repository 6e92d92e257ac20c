"""Enforced target limits (measure/cgroups.py): a fake cgroup tree, the switch, and the real thing.

The fake trees are laid out as the kernel lays out v1 and v2 (control files in each
group; a new group gets its parent's files), so the logic is tested without root; one
test uses this host's real cgroups and is skipped, with the probe's reason, elsewhere.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pytest_deploycheck.measure import cgroups
from pytest_deploycheck.measure.cgroups import (
    CgroupFs,
    CgroupSupport,
    TargetLimits,
    Unsupported,
    create_limited_group,
    probe,
    resolve_emulation,
)

if TYPE_CHECKING:
    from conftest import DeployProject

V1_MEMORY = (
    "memory.limit_in_bytes",
    "memory.memsw.limit_in_bytes",
    "memory.max_usage_in_bytes",
    "memory.oom_control",
    "memory.failcnt",
    "cgroup.procs",
)
V2_FILES = (
    "memory.max",
    "memory.swap.max",
    "memory.peak",
    "memory.events",
    "cpuset.cpus",
    "cgroup.procs",
    "cgroup.controllers",
)


def _files(directory: Path, names: tuple[str, ...], text: str = "0\n") -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        (directory / name).write_text(text)


def _kernel_like() -> CgroupFs:
    """mkdir gives the new group its parent's control files, as cgroupfs does."""

    def mkdir(path: Path) -> None:
        path.mkdir()
        for source in path.parent.iterdir():
            if source.is_file():
                (path / source.name).write_text("")

    return CgroupFs(mkdir=mkdir, rmdir=shutil.rmtree)


def _v1_tree(tmp_path: Path, memsw: bool = True) -> tuple[Path, Path]:
    root = tmp_path / "cg"
    names = V1_MEMORY if memsw else tuple(n for n in V1_MEMORY if "memsw" not in n)
    _files(root / "memory" / "jobs" / "me", names)
    _files(root / "cpuset", ("cpuset.cpus", "cpuset.mems", "cgroup.procs"))
    (root / "cpuset" / "cpuset.mems").write_text("0\n")
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text("4:memory:/jobs/me\n3:cpuset:/\n1:cpu,cpuacct:/\n0::/\n")
    return root, proc


def _v2_tree(tmp_path: Path, enabled: str = "cpuset cpu io memory pids") -> tuple[Path, Path]:
    root = tmp_path / "cg2"
    _files(root, ("cgroup.controllers",), "cpuset cpu io memory pids\n")
    own = root / "user.slice" / "me"
    _files(own, V2_FILES)
    (own / "cgroup.subtree_control").write_text(enabled + "\n")
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text("0::/user.slice/me\n")
    return root, proc


def test_v1_probe_finds_the_memory_and_cpuset_parents(tmp_path: Path) -> None:
    root, proc = _v1_tree(tmp_path)
    found = probe(root, proc, platform="linux")
    assert isinstance(found, CgroupSupport)
    assert (found.version, found.memory, found.cpuset) == (
        1,
        root / "memory" / "jobs" / "me",
        root / "cpuset",
    )


def test_v1_group_enforces_memory_swap_and_cores_then_goes(tmp_path: Path) -> None:
    root, proc = _v1_tree(tmp_path)
    support = probe(root, proc, platform="linux")
    assert isinstance(support, CgroupSupport)
    with create_limited_group(support, TargetLimits(512, [1]), fs=_kernel_like()) as group:
        memory_dir, cpuset_dir = group.dirs
        assert (memory_dir / "memory.limit_in_bytes").read_text() == "512000000"
        assert (memory_dir / "memory.memsw.limit_in_bytes").read_text() == "512000000"
        assert (cpuset_dir / "cpuset.mems").read_text() == "0"
        assert (cpuset_dir / "cpuset.cpus").read_text() == "1"
        group.add_pid(4242)
        assert (cpuset_dir / "cgroup.procs").read_text() == "4242"
        assert group.notes == [] and "swap off" in group.describe()
    assert not memory_dir.exists() and not cpuset_dir.exists()
    group.remove()  # idempotent


def test_v1_without_memsw_says_swap_was_not_limited(tmp_path: Path) -> None:
    root, proc = _v1_tree(tmp_path, memsw=False)
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal: 100 kB\nSwapTotal:       2048 kB\n")
    support = probe(root, proc, platform="linux")
    assert isinstance(support, CgroupSupport)
    support = CgroupSupport(1, support.memory, meminfo=meminfo)
    with create_limited_group(support, TargetLimits(128), fs=_kernel_like()) as group:
        assert group.notes == [
            "swap could not be limited (no memory.memsw.limit_in_bytes: swapaccount is off)"
        ]


def test_v1_oom_kill_is_read_from_oom_control(tmp_path: Path) -> None:
    root, proc = _v1_tree(tmp_path)
    support = probe(root, proc, platform="linux")
    assert isinstance(support, CgroupSupport)
    with create_limited_group(support, TargetLimits(512), fs=_kernel_like()) as group:
        (group.memory_dir / "memory.oom_control").write_text(
            "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n"
        )
        assert not group.oom_killed(-9)
        (group.memory_dir / "memory.oom_control").write_text(
            "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n"
        )
        (group.memory_dir / "memory.max_usage_in_bytes").write_text("511705088\n")
        assert group.oom_killed(-9)
        assert group.oom_line() == (
            "killed by the OOM killer at the target's 512 MB limit (peak before the kill 512 MB)"
        )


def test_v1_oom_falls_back_to_failcnt_and_sigkill_on_old_kernels(tmp_path: Path) -> None:
    root, proc = _v1_tree(tmp_path)
    support = probe(root, proc, platform="linux")
    assert isinstance(support, CgroupSupport)
    with create_limited_group(support, TargetLimits(64), fs=_kernel_like()) as group:
        (group.memory_dir / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\n")
        (group.memory_dir / "memory.failcnt").write_text("3\n")
        assert group.oom_killed(-9)
        assert not group.oom_killed(1)


def test_v2_group_sets_memory_max_swap_and_cpuset(tmp_path: Path) -> None:
    root, proc = _v2_tree(tmp_path)
    support = probe(root, proc, platform="linux")
    assert isinstance(support, CgroupSupport) and support.version == 2
    with create_limited_group(support, TargetLimits(256, [0, 1], 0.5), fs=_kernel_like()) as group:
        (own,) = group.dirs
        assert (own / "memory.max").read_text() == "256000000"
        assert (own / "memory.swap.max").read_text() == "0"
        assert (own / "cpuset.cpus").read_text() == "0,1"
        assert (own / "cpu.max").read_text() == "50000 100000"
        (own / "memory.events").write_text("low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n")
        (own / "memory.peak").write_text("255000000\n")
        assert group.oom_killed() and group.peak_bytes() == 255_000_000
    assert not own.exists()


def test_a_failed_setup_leaves_no_group(tmp_path: Path) -> None:
    root, proc = _v1_tree(tmp_path)
    support = probe(root, proc, platform="linux")
    assert isinstance(support, CgroupSupport)
    (root / "cpuset" / "cpuset.mems").unlink()  # the copy of the parent's nodes fails
    with (
        pytest.raises(cgroups.GroupError, match=r"cpuset\.mems"),
        create_limited_group(support, TargetLimits(64, [0]), fs=_kernel_like()),
    ):
        pass
    assert [p.name for p in (root / "memory" / "jobs" / "me").iterdir() if p.is_dir()] == []


@pytest.mark.parametrize(
    ("enabled", "platform", "reason"),
    [
        ("cpuset cpu", "linux", "the memory controller is not enabled in"),
        ("memory", "darwin", "cgroups are Linux-only; this host is darwin"),
    ],
)
def test_probe_says_why_not(tmp_path: Path, enabled: str, platform: str, reason: str) -> None:
    root, proc = _v2_tree(tmp_path, enabled)
    found = probe(root, proc, platform=platform)
    assert isinstance(found, Unsupported) and reason in found.reason


def test_enforce_refuses_and_auto_falls_back_with_a_note() -> None:
    limits = TargetLimits(512, [0])
    missing = lambda: Unsupported("cgroup v1: /x is not writable (needs root)")  # noqa: E731
    with pytest.raises(cgroups.EmulationUnavailable, match="needs root"):
        resolve_emulation("enforce", limits, probe_fn=missing)
    auto = resolve_emulation("auto", limits, probe_fn=missing)
    assert not auto.enforced and auto.mode == "pin"
    assert auto.note == (
        "the target's limits were not enforced (cores pinned only):"
        " cgroup v1: /x is not writable (needs root)"
    )
    assert resolve_emulation("pin", limits, probe_fn=missing).note == ""
    assert resolve_emulation("auto", TargetLimits(None), probe_fn=missing).note == ""


MEMORY_TESTS = """
import pytest

@pytest.mark.memory_under(10000, repeat=1, timeout_s=120)
def test_big():
    block = bytearray(300_000_000)
    block[::4096] = b"1" * len(block[::4096])

@pytest.mark.memory_under(10000, repeat=1, timeout_s=120)
def test_small():
    block = bytearray(5_000_000)
"""
SMALL_DEVICE = {"name": "tiny", "memory_mb": 128, "cpus": 1}


def test_a_bad_emulate_value_is_one_line(deploy_project: DeployProject) -> None:
    project = deploy_project.replace(target="edge-a")
    project.make("def test_x():\n    pass\n")
    result = project.pytester.runpytest("--deploy-emulate=strict")
    result.stderr.fnmatch_lines(["ERROR: --deploy-emulate 'strict': expected 'auto'*or 'off'"])
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_enforce_where_cgroups_cannot_be_used_is_one_line(
    deploy_project: DeployProject, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    project = deploy_project.replace(target="edge-a")
    monkeypatch.setenv(cgroups.ROOT_ENV, str(tmp_path / "no-cgroups"))
    monkeypatch.setenv("DEPLOYCHECK_EMULATE", "enforce")
    project.make("def test_x():\n    pass\n")
    result = project.pytester.runpytest()
    result.stderr.fnmatch_lines(
        [
            "ERROR: --deploy-emulate=enforce: the target's limits cannot be enforced on this host:"
            " cgroup v1: no memory.limit_in_bytes in *; use --deploy-emulate=pin*"
            " (DEPLOYCHECK_EMULATE)"
        ]
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_auto_where_cgroups_cannot_be_used_notes_it_once(
    deploy_project: DeployProject, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    project = deploy_project.replace(target="edge-a")
    monkeypatch.setenv(cgroups.ROOT_ENV, str(tmp_path / "no-cgroups"))
    project.make(MEMORY_TESTS.replace("300_000_000", "1_000"))
    result = project.pytester.runpytest()
    result.assert_outcomes(passed=2)
    notes = {note for c in project.report()["checks"] for note in c["notes"]}
    said = [n for n in notes if "not enforced" in n]
    assert len(said) == 1, notes
    assert said[0].startswith("the target's limits were not enforced (cores pinned only): ")
    assert str(tmp_path / "no-cgroups") in said[0] or "Linux-only" in said[0]


def _real_support() -> CgroupSupport | Unsupported:
    found = probe()
    if isinstance(found, Unsupported):
        return found
    return cgroups._trial(found, TargetLimits(128))


REAL = _real_support()


@pytest.mark.skipif(
    isinstance(REAL, Unsupported),
    reason=f"this host allows no cgroup limits: {getattr(REAL, 'reason', '')}",
)
def test_the_target_limit_is_enforced_for_real(deploy_project: DeployProject) -> None:
    # A subprocess run: the measuring children are OOM-killed for real.
    project = deploy_project.replace(target="tiny", devices=[SMALL_DEVICE])
    project.make(MEMORY_TESTS)
    result = project.pytester.runpytest_subprocess(
        "--deploy-emulate=enforce", "-p", "no:randomly", timeout=300
    )
    result.assert_outcomes(passed=1, failed=1)
    checks = project.checks(metric="peak_memory")
    big, small = checks["test_big"], checks["test_small"]
    assert big["passed"] is False and big["extra"]["oom_killed"] is True
    assert big["details"].startswith(
        "killed by the OOM killer at the target's 128 MB limit (peak before the kill"
    )
    assert small["passed"] is True
    assert small["extra"]["cgroup_peak_mb"] is not None
    assert small["extra"]["enforced"].startswith(f"cgroup v{REAL.version}; memory limit 128 MB")  # type: ignore[union-attr]
    print(big["details"], "|", small["display"], "cgroup peak", small["extra"]["cgroup_peak_mb"])
    assert sys.platform.startswith("linux")
