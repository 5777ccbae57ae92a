"""The seed table: the 38 rows of the image-classification canon that zooserve serves.

The table is kept verbatim in ``data/seed_table.md`` (a copy of the project's seed file) and parsed
here, so the accuracy figures in every registry entry come from the table itself, never retyped.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

SEED_TABLE = Path(__file__).with_name("data") / "seed_table.md"


@dataclass(frozen=True)
class SeedRow:
    """One row of the seed table, as written there ("-" becomes None)."""

    name: str
    top1: float | None
    top5: float | None
    published_in: str


def _parse_accuracy(cell: str) -> float | None:
    cell = cell.strip()
    return None if cell in ("", "-") else float(cell)


@lru_cache(maxsize=1)
def seed_rows() -> dict[str, SeedRow]:
    """Rows of the performance table keyed by the exact ConvNet name of the first column."""
    rows: dict[str, SeedRow] = {}
    in_table = False
    for line in SEED_TABLE.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.lstrip().startswith("|") and cells[0] == "ConvNet":
            in_table = True
            continue
        if not in_table:
            continue
        if not line.lstrip().startswith("|"):
            break
        if set(cells[0]) <= set(":-"):  # the alignment row
            continue
        rows[cells[0]] = SeedRow(cells[0], _parse_accuracy(cells[1]), _parse_accuracy(cells[2]), cells[3])
    return rows
