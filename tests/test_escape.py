"""Unit tests of config/escape.py: names are data in every output format."""

from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_deploycheck.config.escape import (
    csv_cell,
    log_text,
    markdown_code,
    markdown_text,
    xml_text,
)

FORGED_VERDICT = "ok\nrelease_candidate: True"
TERMINAL_TITLE = "\x1b]0;title\x07"
CLEAR_SCREEN = "\x1b[2J"
HOSTILE = (
    "<script>alert(1)</script>",
    '=HYPERLINK("http://evil/","click")',
    "[x](javascript:alert(1))",
    "![x](http://evil/x.png)",
    FORGED_VERDICT,
    TERMINAL_TITLE,
    CLEAR_SCREEN,
    "a\x00b",
)
# C0, DEL, C1 and the characters str.splitlines breaks a line at.
RAW_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


# --------------------------------------------------------------------------- log_text


def test_log_text_shows_a_newline_instead_of_starting_a_line() -> None:
    assert log_text(FORGED_VERDICT) == "ok\\nrelease_candidate: True"


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (TERMINAL_TITLE, "\\x1b]0;title\\x07"),
        (CLEAR_SCREEN, "\\x1b[2J"),
        ("a\x00b", "a\\x00b"),
        ("tab\there", "tab\\there"),
        ("cr\rhere", "cr\\rhere"),
        ("del\x7f", "del\\x7f"),
        ("c1\x9b31m", "c1\\x9b31m"),
        ("line\u2028separator", "line\\u2028separator"),
        ("bidi\u202eoverride", "bidi\\u202eoverride"),
    ],
)
def test_log_text_shows_every_control_character_as_an_escape(raw: str, shown: str) -> None:
    assert log_text(raw) == shown


def test_log_text_leaves_ordinary_text_alone() -> None:
    text = "latency_under_80: p95 61.2 ms (n=412, 95% CI 59.8–63.0) ✅ C:\\models"  # noqa: RUF001

    assert log_text(text) == text


@given(st.text())
def test_log_text_never_holds_a_raw_control_character(text: str) -> None:
    shown = log_text(text)

    assert not RAW_CONTROL.search(shown)
    assert len(shown.splitlines()) <= 1


# --------------------------------------------------------------------------- xml_text


@pytest.mark.parametrize("raw", [*HOSTILE, "\ud800lone surrogate", "\ufffe\uffff"])
def test_xml_text_can_always_be_parsed_back(raw: str) -> None:
    element = ET.Element("property", name=xml_text(raw), value=xml_text(raw))
    document = ET.tostring(element, encoding="unicode")

    parsed = ET.fromstring(document)

    assert parsed.get("name") == xml_text(raw)


@given(st.text())
def test_xml_text_is_always_well_formed_xml(text: str) -> None:
    element = ET.Element("property", name=xml_text(text))

    ET.fromstring(ET.tostring(element, encoding="unicode"))


# --------------------------------------------------------------------------- markdown


def test_markdown_text_kills_links_and_images() -> None:
    assert markdown_text("[x](javascript:alert(1))") == "\\[x\\](javascript:alert(1))"
    assert markdown_text("![x](http://evil/x.png)") == "\\!\\[x\\](http://evil/x.png)"


def test_markdown_text_writes_angle_brackets_as_entities() -> None:
    assert markdown_text("<script>alert(1)</script>") == "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert markdown_text("<http://evil>") == "&lt;http://evil&gt;"


def test_markdown_text_escapes_pipes_backticks_and_backslashes() -> None:
    assert markdown_text("a|b") == "a\\|b"
    assert markdown_text("`code`") == "\\`code\\`"
    # A backslash of the name's own cannot cancel the escape of the bracket after it.
    assert markdown_text("\\[x](y)") == "\\\\\\[x\\](y)"


def test_markdown_text_keeps_a_name_on_one_line() -> None:
    assert markdown_text(FORGED_VERDICT) == "ok release_candidate: True"
    assert markdown_text("ok\n\n# heading\n- item") == "ok # heading - item"


def test_markdown_text_shows_terminal_sequences_as_escapes() -> None:
    assert markdown_text(TERMINAL_TITLE) == "\\x1b\\]0;title\\x07"
    assert markdown_text("a\x00b") == "a\\x00b"


def unescaped(text: str, special: str) -> list[str]:
    """The characters of *special* in *text* that no backslash escapes."""
    found = []
    index = 0
    while index < len(text):
        if text[index] == "\\":
            index += 2
            continue
        if text[index] in special:
            found.append(text[index])
        index += 1
    return found


@given(st.text())
def test_markdown_text_never_holds_live_markup(text: str) -> None:
    shown = markdown_text(text)

    assert not RAW_CONTROL.search(shown)
    assert "\n" not in shown and "<" not in shown and ">" not in shown
    assert unescaped(shown, "|[]!`") == []


def test_markdown_code_cannot_be_closed_early() -> None:
    assert markdown_code("a`b") == "``a`b``"
    assert markdown_code("`x`") == "`` `x` ``"


def test_markdown_code_keeps_the_span_on_one_line() -> None:
    assert markdown_code("pytest 'a\n\n![x](http://evil/x.png)'") == (
        "`pytest 'a\\n\\n![x](http://evil/x.png)'`"
    )


# --------------------------------------------------------------------------- csv_cell


@pytest.mark.parametrize(
    "formula",
    ['=HYPERLINK("http://evil/","click")', "+1+cmd", "-2+3", "@SUM(A1)", "\tx", "\rx"],
)
def test_csv_cell_makes_a_formula_text(formula: str) -> None:
    assert csv_cell(formula) == "'" + formula


@pytest.mark.parametrize(
    ("number", "written"),
    [(-1.5, "-1.5"), (61.2, "61.2"), (-3, "-3"), (0, "0"), (1e-07, "1e-07")],
)
def test_csv_cell_writes_numbers_as_numbers_even_negative_ones(number: float, written: str) -> None:
    assert csv_cell(number) == written


def test_csv_cell_writes_numpy_scalars_as_plain_numbers() -> None:
    numpy = pytest.importorskip("numpy")

    assert csv_cell(numpy.float64(-2.5)) == "-2.5"
    assert csv_cell(numpy.int64(-4)) == "-4"


def test_csv_cell_leaves_other_text_and_empties_none() -> None:
    assert csv_cell("latency_under_80") == "latency_under_80"
    assert csv_cell(None) == ""
    assert csv_cell(True) == "True"


@given(st.text())
def test_csv_cell_text_never_starts_a_formula_and_reads_back(text: str) -> None:
    cell = csv_cell(text)
    buffer = io.StringIO()
    csv.writer(buffer).writerow([cell])

    [[read]] = list(csv.reader(io.StringIO(buffer.getvalue())))

    assert not read.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert read in (text, "'" + text)
