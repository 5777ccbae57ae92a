"""Registry names and the error for a name that is not one, with the closest names as a hint.

Torch-free: the gateway answers an unknown name from its catalog snapshot with the same message and close
matches as the registry (``zooserve.zoo.registry``) does.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UnknownModelError(KeyError):
    """Raised for a name that is not in the registry; carries the closest registered names."""

    def __init__(self, name: str, close_matches: list[str]):
        self.name = name
        self.close_matches = close_matches
        hint = f"; did you mean {', '.join(close_matches)}?" if close_matches else ""
        super().__init__(f"unknown model {name!r}{hint}")

    def __str__(self) -> str:  # KeyError would quote the whole message
        return self.args[0]


def unknown_model(name: str, names: Iterable[str]) -> UnknownModelError:
    """The error for ``name``, which is not among ``names``, with up to three close matches."""
    return UnknownModelError(name, difflib.get_close_matches(name, list(names), n=3, cutoff=0.5))
