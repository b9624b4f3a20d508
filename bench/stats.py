"""Small statistics and reporting shared by the benchmarks."""

from __future__ import annotations

import statistics
from collections.abc import Callable


def median(values: list[float]) -> float:
    """The median; robust against the odd slow run on a noisy machine."""
    return statistics.median(values)


def interleave(rounds: int, **runs: Callable[[], float]) -> dict[str, list[float]]:
    """Run each measurement once per round, alternating, so drift hits all of them alike."""
    results: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            results[name].append(run())
    return results


def report(name: str, ours: float, baseline_name: str, baseline: float, unit: str, goal: str = "") -> str:
    """One line: `name: ours unit = ratio x baseline (baseline unit) [goal]`, printed and returned."""
    ratio = ours / baseline if baseline else float("inf")
    line = f"{name}: {ours:.3f} {unit} = {ratio:.2f}x {baseline_name} ({baseline:.3f} {unit})"
    if goal:
        line += f"  [goal {goal}]"
    print(line, flush=True)
    return line
