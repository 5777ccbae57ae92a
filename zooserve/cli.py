"""The ``zooserve`` command: one entry point over the package's own ``python -m`` tools.

``zooserve serve``, ``zooserve gateway``, ``zooserve zoo list``, ``zooserve store build resnet50``, ... Each
subcommand hands the rest of the command line to that module's ``main``, so ``zooserve store build -h`` and
``python -m zooserve.store build -h`` are the same program.
"""

from __future__ import annotations

import importlib
import sys

# subcommand -> (module whose main(argv) runs it, what it does); modules are imported only when chosen, so the
# gateway's command never imports torch
COMMANDS = {
    "serve": ("zooserve.serve", "TorchServe and the gateway together (what `make serve` runs)"),
    "gateway": ("zooserve.gateway.__main__", "the gateway alone; its backends come from ZOO_BACKENDS/ZOO_ROUTES"),
    "zoo": ("zooserve.zoo.__main__", "the model catalog: list, docs"),
    "store": ("zooserve.store.__main__", "build TorchServe model archives and the catalog snapshot the gateway reads; "
              "select each model's runtime by measurement"),
    "profile": ("zooserve.store.profile", "load each archive in TorchServe and measure it"),
    "demo-ab": ("zooserve.demo.ab", "the A/B demonstration on handwritten digits"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items()]
    return "usage: zooserve COMMAND [ARGS...]\n\ncommands:\n" + "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        sys.stdout.write(usage())
        return 0
    if args[0] not in COMMANDS:
        sys.stderr.write(f"zooserve: unknown command {args[0]!r}\n\n{usage()}")
        return 2
    module = importlib.import_module(COMMANDS[args[0]][0])
    return module.main(args[1:]) or 0


if __name__ == "__main__":
    sys.exit(main())
