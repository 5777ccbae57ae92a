"""``zooserve store build [NAMES... | --all] [--store DIR] [--weights NAME=FILE] [--pretrained]`` (or
``python -m zooserve.store build ...``): the archives, then the catalog snapshot beside them (``catalog.json``)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from tqdm import tqdm

from zooserve.snapshot import FILE_NAME
from zooserve.zoo import UnknownModelError, list_models, model_info

from .build import DEFAULT_STORE, ArchiveOptions, build_archive
from .catalog import is_current, write_catalog


def _weights_arg(text: str) -> tuple[str, Path]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=FILE, got {text!r}")
    return name, Path(path)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zooserve store", description="Build TorchServe model archives.")
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="write model_store/<name>.mar")
    build.add_argument("names", nargs="*", help="registry names (default with --all: every entry)")
    build.add_argument("--all", action="store_true", help="every registry entry")
    build.add_argument("--store", type=Path, default=DEFAULT_STORE)
    build.add_argument("--seed", type=int, default=0, help="seed of the fixed initialization")
    build.add_argument("--weights", type=_weights_arg, action="append", default=[], metavar="NAME=FILE")
    build.add_argument("--pretrained", action="store_true", help="fetch the libraries' published weights")
    build.add_argument("--batch-size", type=int, default=ArchiveOptions.batch_size)
    build.add_argument("--max-batch-delay", type=int, default=ArchiveOptions.max_batch_delay_ms, help="ms")
    build.add_argument("--workers", type=int, default=ArchiveOptions.workers)
    build.add_argument("--if-missing", action="store_true",
                       help="skip archives that already exist (and a current catalog snapshot)")
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    args = _parser().parse_args(argv)
    names = list_models() if args.all else args.names
    if not names:
        print("name the models to build, or pass --all", file=sys.stderr)
        return 2
    try:
        for name in names:
            model_info(name)
    except UnknownModelError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    options = ArchiveOptions(
        seed=args.seed, weights=dict(args.weights), pretrained=args.pretrained, batch_size=args.batch_size,
        max_batch_delay_ms=args.max_batch_delay, workers=args.workers,
    )
    todo = [n for n in names if not (args.if_missing and (args.store / f"{n}.mar").exists())]
    for name in tqdm(todo, desc="archives", unit="model", disable=not todo):
        build_archive(name, args.store, options)
    print(f"{len(todo)} archive(s) written to {args.store} ({len(names) - len(todo)} already there)")
    catalog = args.store / FILE_NAME
    if todo or not args.if_missing or not is_current(catalog):
        write_catalog(args.store)
        print(f"catalog snapshot written to {catalog}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
