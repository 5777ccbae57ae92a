"""Whose CPU a load run used: every process on the machine, summed per group, per correct answer.

The groups: the gateway (the ``zooserve.serve`` process, which serves it), TorchServe's Java frontend, its
Python workers, the load generator (locust), peers left idle beside our stack (TorchServe or LitServe
processes outside our stack's tree), anything else; and the machine's busy and idle time. Our stack's
own time per answer, against the limit's (the cores' time per image of the bare loop), says where the
served throughput goes.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import psutil

from .runner import LoadResult

GROUPS = ("gateway", "torchserve frontend", "torchserve workers", "load generator", "idle peers", "other",
          "machine busy", "machine idle")


def group_of(cmdline: list[str], ours: set[int], pid: int) -> str:
    """Which group a process's CPU counts to; ``ours``: our stack's process tree."""
    text = " ".join(cmdline)
    if "locust" in text:
        return "load generator"
    if pid not in ours:
        peer = any(mark in text for mark in ("org.pytorch.serve", "model_service_worker", "litserve"))
        return "idle peers" if peer else "other"
    if "zooserve.serve" in text:
        return "gateway"
    if "org.pytorch.serve.ModelServer" in text:
        return "torchserve frontend"
    return "torchserve workers" if "model_service_worker" in text else "other"


def cpu_by_group(stack_pid: int) -> dict[str, float]:
    """CPU seconds (user + system) every live process has used, summed per group, and the machine's
    busy and idle seconds."""
    root = psutil.Process(stack_pid)
    ours = {root.pid, *(child.pid for child in root.children(recursive=True))}
    totals = dict.fromkeys(GROUPS, 0.0)
    for process in psutil.process_iter(["cmdline", "cpu_times"]):
        times = process.info["cpu_times"]
        if times is None:  # exited, or not ours to read
            continue
        totals[group_of(process.info["cmdline"] or [], ours, process.pid)] += times.user + times.system
    machine = psutil.cpu_times()
    totals["machine busy"] = sum(machine) - machine.idle - getattr(machine, "iowait", 0.0)
    totals["machine idle"] = machine.idle
    return totals


def accounted(stack_pid: int, run: Callable[[], LoadResult]) -> dict:
    """``run()`` (one locust run) as a dict, with the CPU milliseconds each group spent per
    correct answer while it ran."""
    before, started = cpu_by_group(stack_pid), time.perf_counter()
    result = run()
    after, wall = cpu_by_group(stack_pid), time.perf_counter() - started
    spent = {group: after[group] - before[group] for group in GROUPS}
    # locust has exited by the second reading: its time is the runner's own measurement
    spent["load generator"] = result.loadgen_cpu_share * wall * psutil.cpu_count()
    # answers over the whole wall time at the counted rate: the time around the counted interval (locust
    # starting its users, stopping them) served requests too
    answers = max(result.rps * wall, 1e-9)
    return result.as_dict() | {"cpu_ms_per_answer": {group: round(1000 * spent[group] / answers, 3)
                                                     for group in GROUPS}}
