"""Table helpers shared by the terminal section and the Markdown and HTML reports."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

T = TypeVar("T")


def count_repeats(items: Sequence[T], key: Callable[[T], Hashable | None]) -> list[tuple[T, int]]:
    """Each item once, with how many items share its key, in the order first seen.

    Items whose key is None are never merged (a failed check stays on its own line).
    The reports use it to print ten identical passing rows as one with a count.
    """
    counts: dict[Hashable, int] = {}
    for item in items:
        found = key(item)
        if found is not None:
            counts[found] = counts.get(found, 0) + 1
    kept: list[tuple[T, int]] = []
    shown: set[Hashable] = set()
    for item in items:
        found = key(item)
        if found is None:
            kept.append((item, 1))
        elif found not in shown:
            shown.add(found)
            kept.append((item, counts[found]))
    return kept
