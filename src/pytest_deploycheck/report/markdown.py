"""The readiness report as GitHub-flavoured Markdown: ``summary.md`` and the CI step summary.

Everything is read from the report.json document, so the summary of an old run can be
rebuilt from its evidence.  The output depends on the document alone: the same report
gives the same text, byte for byte.  The helpers that turn one check into the words of
a table cell are shared with the HTML report, so both say the same thing.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..checks.fit import fit_legend
from ..checks.metrics import DEVICE_FIT
from ..config.escape import markdown_code, markdown_text
from ..config.units import format_value
from .tables import count_repeats

NO_FIGURE = "—"
STATUS_ICONS = {"PASS": "✅", "FAIL": "❌", "INCONCLUSIVE": "⚠️", "INFO": "ℹ️"}  # noqa: RUF001

Doc = Mapping[str, Any]


# -- reading the report (shared with htmlreport) ---------------------------------------


def checks_of(report: Doc) -> list[Doc]:
    """The report's checks, in the order they were recorded."""
    return [c for c in report.get("checks", []) if isinstance(c, Mapping)]


def extra_of(check: Doc) -> Doc:
    extra = check.get("extra")
    return extra if isinstance(extra, Mapping) else {}


def table_checks(report: Doc) -> list[Doc]:
    """The checks of the readiness table: all but the non-gating device fits.

    A device that is not the target is judged for information only; it appears in the
    device-fit table, where it can be compared with the other devices.
    """
    return [c for c in checks_of(report) if c.get("gating", True) or c.get("metric") != DEVICE_FIT]


def regressions_by_check(report: Doc) -> dict[str, Doc]:
    """Each regression check, keyed by the name of the check it compares with a baseline."""
    found: dict[str, Doc] = {}
    for check in checks_of(report):
        name = str(check.get("name", ""))
        if name.startswith("regression[") and name.endswith("]"):
            found[name[len("regression[") : -1]] = check
    return found


def table_rows(checks: Sequence[Doc], report: Doc) -> list[tuple[Doc, Doc | None]]:
    """Each of *checks* with the regression check that compares it with the baseline.

    A regression check is shown in the row of the check it compares, not in a row of its
    own; one whose check did not run this time (or a run-wide one) keeps its own row.
    """
    regressions = regressions_by_check(report)
    names = [str(c.get("name")) for c in checks]
    folded = {f"regression[{name}]" for name in names if name in regressions}
    rows = [(c, regressions.get(n)) for c, n in zip(checks, names, strict=True) if n not in folded]

    def same_passing_row(row: tuple[Doc, Doc | None]) -> tuple[str, ...] | None:
        check, regression = row
        if regression is not None or check.get("status") != "PASS":
            return None
        return (str(check.get("name")), figure_text(check), budget_text(check))

    # Identical passing rows once, named with their count, as in the terminal summary.
    return [
        (({**row[0], "name": f"{row[0].get('name')} ({n} tests)"}, None) if n > 1 else row)
        for row, n in count_repeats(rows, same_passing_row)
    ]


def figure_text(check: Doc) -> str:
    """The figure as the terminal summary shows it: the check's display, else its value."""
    display = check.get("display")
    return str(display or format_value(check.get("value"), check.get("unit", "")))


def measured_text(check: Doc) -> str:
    """The figure, labelled when it was not measured: ``700 MB (declared)``."""
    text = figure_text(check)
    provenance = str(check.get("provenance", "measured"))
    return text if provenance == "measured" else f"{text} ({provenance})"


def budget_text(check: Doc) -> str:
    budget = check.get("budget")
    return NO_FIGURE if budget is None else format_value(budget, check.get("unit", ""))


def baseline_text(regression: Doc | None, check: Doc) -> str:
    """The baseline's figure (``extra["old"]``), in the unit of the check it is compared with."""
    old = extra_of(regression).get("old") if regression is not None else None
    return NO_FIGURE if old is None else format_value(old, check.get("unit", ""))


def change_text(regression: Doc | None, check: Doc) -> str:
    """The regression check's kind and words: ``regression: +12.3% vs baseline (p=0.003)``."""
    if regression is None:
        return NO_FIGURE
    extra = extra_of(regression)
    text = str(regression.get("display") or _computed_change(extra, check))
    kind = extra.get("kind")
    return f"{kind}: {text}" if isinstance(kind, str) and text != NO_FIGURE else text


def _computed_change(extra: Doc, check: Doc) -> str:
    """Relative when the baseline is non-zero, else the difference; then the p-value."""
    old, new = _number(extra.get("old")), _number(extra.get("new"))
    if old is None or new is None:
        return NO_FIGURE
    unit = check.get("unit", "")
    text = f"{(new - old) / abs(old):+.1%}" if old else _signed(format_value(new - old, unit))
    p_value = _number(extra.get("p_value"))
    return text if p_value is None else f"{text} (p={p_value:.2g})"


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _signed(text: str) -> str:
    return text if text.startswith("-") else f"+{text}"


def status_text(check: Doc) -> str:
    status = str(check.get("status", ""))
    icon = STATUS_ICONS.get(status, "")
    return f"{icon} {status}".strip()


def regression_status(regression: Doc | None) -> str:
    """The status of a regression check worth showing beside its check's: not a pass."""
    status = "" if regression is None else str(regression.get("status"))
    return status if status in ("FAIL", "INCONCLUSIVE") else ""


def run_notes(report: Doc) -> list[str]:
    """Every check's notes, once each, in the order they first appear."""
    notes = (str(n) for c in checks_of(report) for n in c.get("notes") or [])
    return list(dict.fromkeys(notes))


def fit_rows(group: Doc) -> list[Doc]:
    """The devices of one fit group in devices-table order, each with its fit details."""
    devices = {
        str(d.get("device")): d for d in group.get("devices") or [] if isinstance(d, Mapping)
    }
    statuses = group.get("table") or {}
    order = dict.fromkeys([*statuses, *devices])
    return [
        {
            **devices.get(name, {}),
            "device": name,
            "status": statuses.get(name) or devices.get(name, {}).get("status", ""),
        }
        for name in order
    ]


def price_text(price: object) -> str:
    return "no price declared" if price is None else format_value(price, "USD")


def cheapest_text(group: Doc) -> str:
    cheapest = group.get("cheapest_fit")
    if not isinstance(cheapest, Mapping):
        return "No device in the table fits"
    price = price_text(cheapest.get("price_usd"))
    return f"Cheapest device that fits: {cheapest.get('device')} ({price})"


def command_text(report: Doc) -> str:
    return shlex.join(str(a) for a in report.get("command_line") or [])


def environment_line(report: Doc) -> str:
    """One line: where and when the figures were taken."""
    env = report.get("environment") or {}
    host = env.get("host") or {}
    packages = env.get("packages") or {}
    parts = [
        f"{host.get('cpu_model', 'unknown CPU')} ({host.get('usable_cpus', '?')} usable CPUs)",
        f"Python {env.get('python', '?')}",
        *(f"{name} {version}" for name, version in packages.items() if version),
    ]
    when = f" at {env['timestamp']}" if env.get("timestamp") else ""
    return f"Run on {', '.join(parts)}{when}"


# -- Markdown ------------------------------------------------------------------------


def cell(text: object) -> str:
    """Text safe inside a Markdown table cell (and anywhere else in the summary)."""
    return markdown_text(text)


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return lines


def _verdict_section(report: Doc) -> list[str]:
    verdict = report.get("verdict") or {}
    candidate = verdict.get("release_candidate") is True
    icon = STATUS_ICONS["PASS" if candidate else "FAIL"]
    lines = [
        f"## Deploy readiness: {cell(report.get('target') or 'no target')}",
        "",
        f"{icon} **release_candidate: {candidate}**",
    ]
    counts = verdict.get("counts") or {}
    if counts:
        lines += ["", " · ".join(f"{v} {cell(k)}" for k, v in counts.items())]
    if not candidate:
        lines += ["", *(f"- {cell(reason)}" for reason in verdict.get("reasons") or [])]
    caveats = verdict.get("caveats") or []
    if caveats:
        lines += ["", *(f"- ⚠️ {cell(caveat)}" for caveat in caveats)]
    return lines


def _checks_section(report: Doc) -> list[str]:
    checks = table_checks(report)
    if not checks:
        return ["No readiness check ran."]
    rows = []
    for check, regression in table_rows(checks, report):
        verdict = status_text(check)
        if status := regression_status(regression):
            verdict += f" · regression {STATUS_ICONS[status]} {status}"
        rows.append(
            (
                str(check.get("name")),
                budget_text(check),
                measured_text(check),
                baseline_text(regression, check),
                change_text(regression, check),
                verdict,
            )
        )
    header = ("check", "budget", "measured", "baseline", "change", "verdict")
    return _table(header, rows)


def _fit_section(group: Doc) -> list[str]:
    models = " + ".join(str(m) for m in group.get("models") or [])
    rows = []
    statuses: list[str] = []
    for row in fit_rows(group):
        statuses.append(str(row.get("status") or ""))
        device = str(row["device"]) + (" (target)" if row.get("is_target") else "")
        status = str(row.get("status") or "")
        details = "; ".join(str(d) for d in row.get("details") or [])
        status = f"{status} — {details}" if details else status
        rows.append((device, status, price_text(row.get("price_usd"))))
    return [
        f"### Device fit: {cell(models)}",
        "",
        f"Needs {cell(group.get('needs', ''))}.",
        "",
        *_table(("device", "status", "price"), rows),
        "",
        *([f"{cell(legend)}.", ""] if (legend := fit_legend(statuses)) else []),
        cell(cheapest_text(group)) + ".",
    ]


def _notes_section(report: Doc) -> list[str]:
    notes = run_notes(report)
    return ["### Notes", "", *(f"- {cell(note)}" for note in notes)] if notes else []


def _evidence_section(report: Doc) -> list[str]:
    lines = ["### Evidence", ""]
    if report.get("evidence_dir"):
        lines += [f"In {markdown_code(str(report['evidence_dir']))}:", ""]
    files = report.get("evidence_files") or []
    lines += [f"- {cell(name)}" for name in files]
    lines += [""] if files else []
    if report.get("command_line"):
        lines += [f"Reproduce: {markdown_code(command_text(report))}", ""]
    lines.append(cell(environment_line(report)) + ".")
    return lines


def readiness_markdown(report: Mapping[str, Any]) -> str:
    """The run's readiness as Markdown: verdict, checks, device fit, notes and evidence.

    *report* is the report.json document.  The text is meant for ``summary.md`` and for
    ``$GITHUB_STEP_SUMMARY``; every cell is escaped, so a check name or a note can hold
    ``|`` or ``<`` without breaking the table or injecting markup.
    """
    sections = [
        _verdict_section(report),
        _checks_section(report),
        *(_fit_section(g) for g in report.get("device_fit") or [] if isinstance(g, Mapping)),
        _notes_section(report),
        _evidence_section(report),
    ]
    return "\n\n".join("\n".join(s) for s in sections if s) + "\n"


def append_step_summary(path: Path, text: str) -> str | None:
    """Append *text* (with a trailing newline) to a CI step summary file.

    Returns None on success and a one-line reason on failure: a summary that cannot be
    written must not fail the run.
    """
    ending = "" if text.endswith("\n") else "\n"
    try:
        with open(path, "a", encoding="utf-8", errors="replace") as handle:
            handle.write(text + ending)
    except OSError as exc:
        return f"{path}: {exc.strerror or exc}"
    return None
