"""``zooserve store build [NAMES... | --all] [--store DIR] [--weights NAME=FILE] [--pretrained | --fixed-seed]
[--runtime NAME | --measured-only NAMES]``: the archives, then the catalog snapshot beside them
(``catalog.json``); and [NAMES... | --all]``: measures each model's runtimes and rewrites its entry
of zooserve/zoo/data/runtimes.json. ``python -m zooserve.store ...`` is the same program.

By default (``ZOO_WEIGHTS=pretrained``) every entry a library publishes weights for gets them: from the
library's cache, or downloaded when its hub answers; where they cannot be had the archive falls back to
the fixed seed, and the run ends with one warning naming those archives. ``ZOO_WEIGHTS=fixed-seed`` (or
``--fixed-seed``) builds fixed-seed archives without trying.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from zooserve.handler.runtimes import RUNTIME_NAMES
from zooserve.handler.service import cpu_threads
from zooserve.snapshot import FILE_NAME
from zooserve.zoo import UnknownModelError, list_models, model_info
from zooserve.zoo.runtimes import RUNTIMES_FILE, load_choices, save_choices

from .build import DEFAULT_STORE, ArchiveOptions, build_archive, wants_rebuild
from .catalog import is_current, write_catalog
from .published import weights_mode
from .select import decision, select, select_side_by_side

log = logging.getLogger("zooserve.store")


def _weights_arg(text: str) -> tuple[str, Path]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=FILE, got {text!r}")
    return name, Path(path)


def _names_arg(text: str) -> frozenset[str] | None:
    if text == "all":
        return None
    names = frozenset(n for n in text.split(",") if n)
    for name in names:
        try:
            model_info(name)
        except UnknownModelError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
    return names


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zooserve store", description="Build TorchServe model archives.")
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="write model_store/<name>.mar")
    build.add_argument("names", nargs="*", help="registry names (default with --all: every entry)")
    build.add_argument("--all", action="store_true", help="every registry entry")
    build.add_argument("--store", type=Path, default=DEFAULT_STORE)
    build.add_argument("--seed", type=int, default=0, help="seed of the fixed initialization")
    build.add_argument("--weights", type=_weights_arg, action="append", default=[], metavar="NAME=FILE")
    source = build.add_mutually_exclusive_group()
    source.add_argument("--pretrained", action="store_true", default=None,
                        help="the libraries' published weights where they can be had (default, ZOO_WEIGHTS=pretrained)")
    source.add_argument("--fixed-seed", dest="pretrained", action="store_false",
                        help="fixed-seed weights only, nothing fetched (ZOO_WEIGHTS=fixed-seed)")
    build.add_argument("--batch-size", type=int, default=ArchiveOptions.batch_size)
    build.add_argument("--max-batch-delay", type=int, default=ArchiveOptions.max_batch_delay_ms, help="ms")
    build.add_argument("--workers", type=int, default=ArchiveOptions.workers)
    build.add_argument("--if-missing", action="store_true",
                       help="skip archives that exist (a fixed-seed one is rebuilt when its published weights "
                       "can be had), and a current catalog snapshot")
    runtime = build.add_mutually_exclusive_group()
    runtime.add_argument("--runtime", choices=RUNTIME_NAMES,
                       help=f"serve on this runtime (default: the one measured for the model, {RUNTIMES_FILE.name})")
    runtime.add_argument("--measured-only", type=_names_arg, metavar="NAMES",
                       help="only these models (comma-separated; all: every one, the default) on their measured "
                         "runtime, the others on eager")
    select = commands.add_parser("select", help=f"measure each model's runtimes, rewrite its entry of {RUNTIMES_FILE.name}")
    select.add_argument("names", nargs="*", help="registry names (default with --all: every entry)")
    select.add_argument("--all", action="store_true", help="every registry entry")
    select.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds")
    select.add_argument("--seconds", type=float, default=2.0, help="seconds per runtime per round")
    select.add_argument("--batch-size", type=int, default=ArchiveOptions.batch_size, help="the serving batch size")
    select.add_argument("--workers", type=int, default=ArchiveOptions.workers,
                        help="serving workers (each gets cores / workers threads)")
    select.add_argument("--runtimes", default=",".join(RUNTIME_NAMES), help="those to try (eager always)")
    select.add_argument("--device", default="cpu", help="cpu, or cuda (float16 and the CUDA providers tried too)")
    select.add_argument("--side-by-side", action="store_true",
                        help="measure as many models at once as there are workers, each process on its own cores")
    select.add_argument("--choose-only", action="store_true",
                        help="choose again from the figures already in the file, measuring nothing (after a change "
                        "to the rule)")
    select.add_argument("--output", type=Path, default=RUNTIMES_FILE)
    return parser


def _select(names: list[str], args) -> int:
    choices = load_choices(args.output)
    threads = cpu_threads(0, args.workers)
    options = {"batch_size": args.batch_size, "rounds": args.rounds, "seconds": args.seconds,
               "device": torch.device(args.device), "runtimes": tuple(args.runtimes.split(","))}
    if args.choose_only:
        for name in names:
            if name in choices:
                choices[name] |= decision(choices[name]["candidates"])
        save_choices(choices, args.output)
        return 0
    if args.side_by_side:
        measured = select_side_by_side(names, args.workers, threads, **options)
    else:
        measured = ((name, select(name, threads=threads, **options)) for name in names)
    for name, entry in tqdm(measured, total=len(names), desc="runtimes", unit="model"):
        choices[name] = entry
        save_choices(choices, args.output)  # after each model: a long run keeps what it measured
        print(f"{name}: {entry['reason']}")
    return 0


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
        if args.command == "build":
            pretrained = args.pretrained if args.pretrained is not None else weights_mode() == "pretrained"
    except (UnknownModelError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.command == "select":
        return _select(names, args)
    options = ArchiveOptions(
        seed=args.seed, weights=dict(args.weights), pretrained=pretrained, batch_size=args.batch_size,
        max_batch_delay_ms=args.max_batch_delay, workers=args.workers, runtime=args.runtime,
        measured_only=args.measured_only,
    )
    todo = [n for n in names if not args.if_missing or wants_rebuild(args.store / f"{n}.mar", n, options)]
    for name in tqdm(todo, desc="archives", unit="model", disable=not todo):
        build_archive(name, args.store, options)
    print(f"{len(todo)} archive(s) written to {args.store} ({len(names) - len(todo)} already there)")
    catalog = args.store / FILE_NAME
    if todo or not args.if_missing or not is_current(catalog):
        write_catalog(args.store)
        print(f"catalog snapshot written to {catalog}")
    if warning := options.published.warning():
        log.warning(warning)
    return 0


if __name__ == "__main__":
    sys.exit(main())
