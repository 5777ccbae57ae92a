"""Simulated experiments, looked at after every batch of records: how often each test declares a difference.

    python -m loadtests.sequential [--experiments 1000] [--batch 100] [--records 10000] [--seed 1]

A/A experiments (both variants equal): an experiment counts as a false positive when the report would have
said "different" at any look. With the always-valid p-value of the mSPRT (zooserve/gateway/experiments/
sequential.py) that should happen in at most 5% of them; with the fixed-horizon z-test read at every look, in
many more. A/B experiments (a known difference): how often, and after how many records, the mSPRT detects
it, beside the per-variant sample size a fixed-horizon test planned for 80% power would need.

Each record goes to either variant with probability 1/2 and succeeds (a correct answer, or an error) with
its variant's probability; the statistics are the report's own functions. The output is the Markdown of
docs/experiments.md.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np

from zooserve.gateway.experiments import sequential, stats

ALPHA = 0.05


@dataclass(frozen=True)
class Scenario:
    metric: str
    p_control: float
    p_treatment: float
    share: float = 0.5  # of the records that go to the treatment (a canary gets few)


AA = [Scenario("accuracy", 0.75, 0.75), Scenario("accuracy", 0.5, 0.5), Scenario("error rate", 0.02, 0.02),
      Scenario("accuracy", 0.75, 0.75, share=0.05), Scenario("error rate", 0.01, 0.01, share=0.05),
      Scenario("error rate", 0.005, 0.005, share=0.05)]
AB = [Scenario("accuracy", 0.75, 0.72), Scenario("accuracy", 0.75, 0.70), Scenario("error rate", 0.02, 0.04),
      Scenario("error rate", 0.01, 0.05, share=0.05), Scenario("error rate", 0.01, 0.5, share=0.05)]


@dataclass(frozen=True)
class Outcome:
    """Per experiment: the first look (1-based) at which each test said "different" (0: never)."""

    sequential: np.ndarray
    fixed: np.ndarray
    fixed_at_end: np.ndarray  # the fixed-horizon test read once, at the last look
    sign_right: np.ndarray  # the mSPRT's estimate at its detection has the true difference's sign
    missed: np.ndarray  # the confidence sequence left out the true difference at some look


def simulate(scenario: Scenario, experiments: int, batch: int, looks: int, seed: int) -> Outcome:
    rng = np.random.default_rng(seed)
    n_t = rng.binomial(batch, scenario.share, size=(experiments, looks))
    s_t = rng.binomial(n_t, scenario.p_treatment)
    s_c = rng.binomial(batch - n_t, scenario.p_control)
    n_t, s_t, s_c = n_t.cumsum(axis=1), s_t.cumsum(axis=1), s_c.cumsum(axis=1)
    n_c = batch * np.arange(1, looks + 1) - n_t
    first_seq, first_fixed = np.zeros(experiments, int), np.zeros(experiments, int)
    at_end, sign_right, missed = (np.zeros(experiments, bool) for _ in range(3))
    truth = scenario.p_treatment - scenario.p_control
    for e in range(experiments):
        sequence = sequential.two_proportions(s_t[e], n_t[e], s_c[e], n_c[e], ALPHA)
        hits = np.flatnonzero(sequence.p_value < ALPHA)
        if hits.size:
            first_seq[e] = hits[0] + 1
            sign_right[e] = np.sign(sequence.difference[hits[0]]) == np.sign(truth)
        missed[e] = sequence.low[-1] > truth or sequence.high[-1] < truth  # (intersected over the looks)
        fixed = [stats.two_proportions(s_t[e, k], n_t[e, k], s_c[e, k], n_c[e, k]).p_value < ALPHA
                 for k in range(looks)]
        first_fixed[e] = fixed.index(True) + 1 if any(fixed) else 0
        at_end[e] = fixed[-1]
    return Outcome(first_seq, first_fixed, at_end, sign_right, missed)


def _share(hits: np.ndarray) -> str:
    return f"{np.mean(hits):.1%}"


def aa_table(experiments: int, batch: int, looks: int, seed: int) -> list[str]:
    lines = [f"| metric | rate in both | treatment's share | said different at some look: mSPRT (always-valid p) "
             "| fixed-horizon "
             f"z-test read at every look | fixed-horizon z-test read once, after {batch * looks} records |",
             "| --- | --- | --- | --- | --- | --- |"]
    for i, scenario in enumerate(AA):
        outcome = simulate(scenario, experiments, batch, looks, seed + i)
        lines.append(f"| {scenario.metric} | {scenario.p_control:.1%} | {scenario.share:.0%} | "
                     f"{_share(outcome.sequential > 0)} | "
                     f"{_share(outcome.fixed > 0)} | {_share(outcome.fixed_at_end)} |")
    return lines


def ab_table(experiments: int, batch: int, looks: int, seed: int) -> list[str]:
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    lines = ["| metric | control | treatment | treatment's share | detected by the mSPRT | records to detection: "
             "median (10th-90th percentile) | detections with the right sign | confidence sequence missed the true "
             "difference | fixed-horizon test for 80% power: records |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for i, scenario in enumerate(AB):
        outcome = simulate(scenario, experiments, batch, looks, seed + 100 + i)
        detected = outcome.sequential[outcome.sequential > 0] * batch
        low, median, high = np.percentile(detected, [10, 50, 90]) if detected.size else (0, 0, 0)
        effect = proportion_effectsize(scenario.p_treatment, scenario.p_control)
        ratio = (1 - scenario.share) / scenario.share  # control records per treatment record
        treatment_n = NormalIndPower().solve_power(abs(effect), alpha=ALPHA, power=0.8, ratio=ratio)
        right = outcome.sign_right[outcome.sequential > 0]
        lines.append(f"| {scenario.metric} | {scenario.p_control:.1%} | {scenario.p_treatment:.1%} | "
                     f"{scenario.share:.0%} | {_share(outcome.sequential > 0)} | {median:.0f} ({low:.0f}-{high:.0f}) "
                     f"| {_share(right) if right.size else '-'} | {_share(outcome.missed)} | "
                     f"{np.ceil(treatment_n * (1 + ratio)):.0f} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.sequential", description=__doc__.split("\n")[0])
    parser.add_argument("--experiments", type=int, default=1000, help="simulated experiments per scenario")
    parser.add_argument("--batch", type=int, default=100, help="records between two looks")
    parser.add_argument("--records", type=int, default=10_000, help="records per experiment")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    looks = args.records // args.batch
    print(f"{args.experiments} experiments per row, {args.records} records each, looked at after every "
          f"{args.batch} records ({looks} looks), alpha = {ALPHA}, mixture scale tau = {sequential.MIXTURE_SD}, "
          f"seed {args.seed}.\n")
    print("\n".join(aa_table(args.experiments, args.batch, looks, args.seed)))
    print()
    print("\n".join(ab_table(args.experiments, args.batch, looks, args.seed)))
    print(f"\n({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
