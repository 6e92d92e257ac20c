"""run.log: the run told as plain text, for whoever troubleshoots the device remotely.

report.json is for tools; this is what a person reads in a CI artifact or a log
shipped off the device: when and how the run was started, on what (versions, host,
target), what every check found and why each failure failed -- in one file that
needs no viewer.  Every control character a name or a detail holds is written as a
visible escape (``\\n``, ``\\x1b``), so no line can be forged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from ..config.escape import log_text
from ..config.units import format_value


def run_log(
    report: Mapping[str, Any],
    *,
    started: float,
    failure_reasons: Mapping[str, str],
    evidence_files: Sequence[str] = (),
) -> str:
    """The text of run.log from the report.json document and the failed tests' reasons."""
    environment = report.get("environment") or {}
    host = environment.get("host") or {}
    verdict = report.get("verdict") or {}
    lines = [
        "pytest-deploycheck run log",
        f"started:  {_iso(started)}",
        f"finished: {environment.get('timestamp') or _iso(None)}",
        f"command:  {' '.join(report.get('command_line') or [])}",
        f"config:   {(report.get('configuration') or {}).get('source')}",
        f"target:   {_device(report.get('target_device'))}",
        f"python:   {environment.get('python')} ({environment.get('python_implementation')})",
        "packages: "
        + ", ".join(
            f"{k} {v or 'not installed'}" for k, v in (environment.get("packages") or {}).items()
        ),
        f"host:     {host.get('platform')}; {host.get('cpu_model')};"
        f" {host.get('usable_cpus')} of {host.get('logical_cpus')} CPUs usable;"
        f" {host.get('memory_total_mb')} MB memory",
        "",
        f"release_candidate: {verdict.get('release_candidate')}",
        *(f"  - {reason}" for reason in verdict.get("reasons") or []),
        *(f"  ! {caveat}" for caveat in verdict.get("caveats") or []),
        "",
        "checks:",
    ]
    checks = report.get("checks") or []
    if not checks:
        lines.append("  (none)")
    for check in checks:
        lines += _check_lines(check)
    lines += ["", "failed tests:"]
    failed = report.get("failed_tests") or []
    lines += [f"  {nodeid}: {failure_reasons.get(nodeid) or 'failed'}" for nodeid in failed]
    if not failed:
        lines.append("  (none)")
    if evidence_files:
        lines += ["", f"evidence files: {', '.join(evidence_files)}"]
    # One line is one line: a newline or an ESC in a name is shown, never obeyed.
    return "\n".join(log_text(line) for line in lines) + "\n"


def _check_lines(check: Mapping[str, Any]) -> list[str]:
    extra = check.get("extra") or {}
    figure = check.get("display") or format_value(check.get("value"), check.get("unit") or "")
    budget = check.get("budget")
    budget_text = (
        "" if budget is None else f" (budget {format_value(budget, check.get('unit') or '')})"
    )
    where = f" [{check['nodeid']}]" if check.get("nodeid") else ""
    lines = [
        f"  {check.get('status', '?'):<12} {check.get('name')}: {figure}{budget_text},"
        f" {check.get('provenance')}{where}"
    ]
    if check.get("details"):
        lines.append(f"      why: {check['details']}")
    lines += [f"      error: {example}" for example in extra.get("error_examples") or []]
    lines += [f"      note: {note}" for note in check.get("notes") or []]
    return lines


def _device(device: Mapping[str, Any] | None) -> str:
    if not device:
        return "none selected"
    figures = ", ".join(
        f"{key}={device[key]}"
        for key in ("memory_mb", "power_w", "offline", "cpus", "latency_factor")
        if device.get(key) is not None
    )
    return f"{device.get('name')} ({figures})" if figures else str(device.get("name"))


def _iso(timestamp: float | None) -> str:
    moment = (
        datetime.now(timezone.utc)
        if timestamp is None
        else datetime.fromtimestamp(timestamp, timezone.utc)
    )
    return moment.isoformat(timespec="seconds")
