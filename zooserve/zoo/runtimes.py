"""Which runtime serves each model, as measured by ``zooserve store select`` (zooserve/store/select.py).

The measurements live in a committed, generated file (data/runtimes.json: the machine, the date and every
runtime's figures per model), so building an archive needs no measurement: it exports only the chosen
runtime's artefact. A model the file does not name is served on eager PyTorch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RUNTIMES_FILE = Path(__file__).parent / "data" / "runtimes.json"
DEFAULT_RUNTIME = "eager"


def load_choices(path: Path | None = None) -> dict[str, dict[str, Any]]:
    """Model name -> its measured choice ({"runtime", "reason", "candidates", ...}); empty without a file."""
    path = path or RUNTIMES_FILE
    if not path.is_file():
        return {}
    return json.loads(path.read_text())["models"]


def save_choices(choices: dict[str, dict[str, Any]], path: Path | None = None) -> None:
    document = {"generated_by": "zooserve store select (zooserve/store/select.py); do not edit by hand",
                "models": dict(sorted(choices.items()))}
    (path or RUNTIMES_FILE).write_text(json.dumps(document, indent=1) + "\n")


def chosen_runtime(name: str, choices: dict[str, dict[str, Any]] | None = None) -> str:
    entry = (load_choices() if choices is None else choices).get(name)
    return entry["runtime"] if entry else DEFAULT_RUNTIME
