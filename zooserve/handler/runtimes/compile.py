"""torch.compile (inductor) over the eager model.

Compilation happens when the worker starts (``warm_up``: the batch dimension marked dynamic, so one graph
serves every batch size from 2 up, and one more serves single images). The archive carries the
compiler's cache from its build (``torch.compiler.save_cache_artifacts``), so a worker loads the
kernels generated then instead of generating them again; a cache that does not fit this machine or
this torch is ignored by torch, and the worker compiles from scratch.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.compiler._cache import CacheArtifactManager

from . import ModelSource, RuntimeOptions
from .eager import Eager

CACHE_FILE = "compile_cache.bin"


class Compiled(Eager):
    name = "compile"

    def __init__(self, model: torch.nn.Module, options: RuntimeOptions):
        super().__init__(model, options)
        self.model = torch.compile(self.model)

    @classmethod
    def export(cls, model: torch.nn.Module, example: torch.Tensor, directory: Path) -> list[Path]:
        # save_cache_artifacts returns everything compiled in this process: start afresh, so the archive
        # carries this model's kernels only
        with CacheArtifactManager.with_fresh_cache():
            torch._dynamo.reset()
            cls(model, RuntimeOptions(threads=torch.get_num_threads())).warm_up(example)
            saved = torch.compiler.save_cache_artifacts()
        if saved is None:
            return []
        path = directory / CACHE_FILE
        path.write_bytes(saved[0])
        return [path]

    @classmethod
    def load(cls, source: ModelSource, options: RuntimeOptions) -> Compiled:
        cache = source.directory / CACHE_FILE
        if cache.is_file():
            torch.compiler.load_cache_artifacts(cache.read_bytes())
        return super().load(source, options)

    def warm_up(self, example: torch.Tensor) -> None:
        example = example.clone()
        torch._dynamo.mark_dynamic(example, 0)
        super().warm_up(example)


RUNTIME = Compiled
