"""``python -m zooserve.zoo list [--json] [--seed-only]`` and ``python -m zooserve.zoo docs [--output PATH]``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .catalog import catalog, format_table, models_markdown

DEFAULT_DOCS = Path(__file__).resolve().parents[2] / "docs" / "models.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zooserve.zoo", description="The zooserve model catalog.")
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="print the catalog")
    listing.add_argument("--json", action="store_true", help="one JSON object per entry, in a JSON list")
    listing.add_argument("--seed-only", action="store_true", help="only the entries of the seed table")
    docs = commands.add_parser("docs", help="write docs/models.md")
    docs.add_argument("--output", type=Path, default=DEFAULT_DOCS)
    args = parser.parse_args(argv)

    if args.command == "list":
        entries = catalog(seed_only=args.seed_only)
        print(json.dumps(entries, indent=2) if args.json else format_table(entries))
    else:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(models_markdown(catalog()), encoding="utf-8")
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
