"""Names are data: every text a user chose, escaped for the format it is written in.

Check names, details, units, notes, device and model names come from the user's tests
and configuration.  Each output format has its own escaper here, so that a name can
never become markup (Markdown), a formula (CSV), a forged line (run.log), a terminal
control sequence, or a character XML cannot hold (JUnit).  It lives at the bottom
layer because the checks (failure_cases.md sections), the reports and the terminal
all write such text.
"""

from __future__ import annotations

import numbers
import re

# C0, DEL and C1 controls, the line and paragraph separators (str.splitlines breaks on
# them) and the bidirectional overrides that reorder what a reader sees.
_CONTROL = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)
# What XML 1.0 cannot hold besides the controls: lone surrogates and two non-characters.
_XML_INVALID = re.compile("[\ud800-\udfff\ufffe\uffff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_MARKDOWN_PUNCTUATION = re.compile(r"[\\|\[\]!`]")
_MARKDOWN_ENTITIES = {"<": "&lt;", ">": "&gt;"}
# A spreadsheet evaluates a cell that starts with one of these as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _visible(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def log_text(value: object) -> str:
    """*value* on one line with every control character shown as an escape (``\\x1b``).

    For run.log and the terminal: a newline in a check name cannot forge a
    ``release_candidate: True`` line, and an ESC cannot reach the terminal.
    """
    return _CONTROL.sub(_visible, str(value))


def xml_text(value: object) -> str:
    """*value* as :func:`log_text` shows it, with nothing XML 1.0 cannot hold.

    pytest escapes ``&<>`` in JUnit properties itself, but not NUL or ESC, nor a
    property's name at all.
    """
    return _XML_INVALID.sub(_visible, log_text(value))


def markdown_text(value: object) -> str:
    """*value* as literal text in Markdown, on one line: safe in a table cell too.

    Whitespace runs (newlines included) become one space; ``\\ | [ ] ! ` `` are
    backslash-escaped and ``< >`` written as entities, so no link, image, HTML tag,
    code span or table cell can start; control characters are shown as escapes.
    """
    text = " ".join(str(value).split())
    text = _MARKDOWN_PUNCTUATION.sub(lambda match: "\\" + match.group(), text)
    for char, entity in _MARKDOWN_ENTITIES.items():
        text = text.replace(char, entity)
    return log_text(text)


def markdown_code(value: object) -> str:
    """*value* as an inline code span (outside tables): literal, on one line.

    The fence is longer than any run of backticks inside, so the span cannot be
    closed early; control characters, newlines included, are shown as escapes.
    """
    text = log_text(value)
    runs = "".join(ch if ch == "`" else " " for ch in text).split()
    fence = "`" * (max((len(run) for run in runs), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def csv_cell(value: object) -> str:
    """*value* as a CSV cell a spreadsheet shows as text, never runs as a formula.

    Numbers stay numbers (a negative one too); text that starts with ``= + - @``, a
    tab or a carriage return gets a ``'`` in front, as OWASP advises.  None is empty.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):  # numpy scalars too, written as plain numbers
        return repr(float(value))
    text = str(value)
    return f"'{text}" if text.startswith(_FORMULA_START) else text
