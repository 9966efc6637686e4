"""Tables that fit the terminal (`genqueue ls`, `genqueue keys list`), plain columns in a pipe.

Laid out here rather than by rich's Table, whose width solver squeezes no-wrap columns to
nothing in an 80-column terminal. A column is never cut unless it says how far it may be
(``flex``); when the table is too wide, optional columns are hidden first (in the order
given), then columns with a shorter form use it, and the flexible ones share what is left.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from rich.cells import cell_len
from rich.text import Text

GAP = "  "
EMPTY = "-"
"""What a pipe gets for an empty value, so every line has as many fields as the header."""


@dataclass
class Column:
    header: str
    cells: list[Text]
    short: list[Text] | None = None
    """A shorter form of every cell (e.g. a time without the year), used before giving way."""
    flex: int = 0
    """0: never cut; otherwise the fewest cells it may be cut to (with an ellipsis)."""
    optional: bool = False
    """May be hidden when the terminal is too narrow."""
    align: Literal["left", "right"] = "left"
    plain: list[str] = field(default_factory=list)
    """What a pipe gets (default: the cells' text), never cut."""

    def natural(self, short: bool) -> int:
        cells = self.short if short and self.short is not None else self.cells
        return max([cell_len(self.header), *(c.cell_len for c in cells)])


@dataclass(frozen=True)
class Placed:
    column: Column
    width: int
    short: bool


def fit(columns: Sequence[Column], width: int) -> list[Placed]:
    """The columns to show and their widths: the first of the ever narrower layouts that fits
    in ``width`` (the narrowest one if none does)."""
    optional = [c for c in columns if c.optional]
    shortable = [c for c in columns if c.short is not None]
    stages: list[tuple[list[Column], list[Column]]] = [
        (optional[:n], []) for n in range(len(optional) + 1)
    ]
    stages += [(optional, shortable[: n + 1]) for n in range(len(shortable))]
    placed: list[Placed] = []
    for hidden, shortened in stages:
        shown = [c for c in columns if not any(c is h for h in hidden)]
        placed = _widths(shown, [any(c is s for s in shortened) for c in shown], width)
        if sum(p.width for p in placed) + len(GAP) * (len(placed) - 1) <= width:
            return placed
    return placed


def _widths(shown: list[Column], short: list[bool], width: int) -> list[Placed]:
    """Fixed columns at their natural width; flexible ones share the rest (each at least its
    ``flex``, none wider than it needs)."""
    natural = [c.natural(s) for c, s in zip(shown, short, strict=True)]
    room = width - len(GAP) * (len(shown) - 1)
    room -= sum(n for c, n in zip(shown, natural, strict=True) if not c.flex)
    flexible = sorted((n, i) for i, (c, n) in enumerate(zip(shown, natural, strict=True)) if c.flex)
    given = dict.fromkeys(range(len(shown)), 0)
    for rank, (wanted, i) in enumerate(flexible):  # narrowest first: what it leaves, others get
        share = room // (len(flexible) - rank)
        given[i] = max(shown[i].flex, min(wanted, share))
        room -= given[i]
    return [Placed(c, given[i] if c.flex else natural[i], short[i]) for i, c in enumerate(shown)]


def table_lines(columns: Sequence[Column], width: int) -> list[Text]:
    """A bold header and one line per row, fitted to ``width`` cells; columns with nothing
    in them are left out."""
    placed = fit([c for c in columns if any(cell.plain for cell in c.cells)], width)
    header = Text()
    for n, p in enumerate(placed):
        header.append(GAP if n else "")
        header.append_text(_cell(Text(p.column.header), p))
    header.rstrip()
    header.stylize("bold")
    lines = [header]
    rows = len(columns[0].cells) if columns else 0
    for row in range(rows):
        line = Text()
        for n, p in enumerate(placed):
            cells = p.column.short if p.short and p.column.short is not None else p.column.cells
            line.append(GAP if n else "")
            line.append_text(_cell(cells[row].copy(), p))
        line.rstrip()
        lines.append(line)
    return lines


def plain_lines(columns: Sequence[Column]) -> list[str]:
    """Tab-separated, a header first, nothing cut or coloured: for `cut`, `awk -F'\\t'`."""
    lines = ["\t".join(c.header for c in columns)]
    rows = len(columns[0].cells) if columns else 0
    for row in range(rows):
        values = [(c.plain[row] if c.plain else c.cells[row].plain) for c in columns]
        lines.append("\t".join(" ".join(v.split()) or EMPTY for v in values))
    return lines


def _cell(text: Text, placed: Placed) -> Text:
    text.truncate(placed.width, overflow="ellipsis")
    text.align(placed.column.align, placed.width)
    return text
