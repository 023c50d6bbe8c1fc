"""Interleaved CPU-time measurement: medians per operation and same-run ratios.

A :class:`Case` times a subject and, where it has one, a reference that does
the comparable floor work on the same input (a bare ``dict``, raw TA-Lib
streams, a typed decode, a no-op). The input is cut into ``parts``; each
repetition runs part 1 of the subject, part 1 of the reference, part 2 of the
reference, part 2 of the subject … so the two sides of every few milliseconds
see the same machine: a burst of load from another process slows both, and
their ratio stays. A repetition's ratio is Σ subject ÷ Σ reference over its
parts; the median over repetitions is reported. Time is the process's CPU
time, so time the scheduler gives other processes is not counted either.
"""

from __future__ import annotations

import gc
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from time import process_time_ns
from typing import TypeVar

import msgspec

__all__ = ["Case", "Part", "Result", "measure", "parts_over"]

T = TypeVar("T")

#: Run part ``index`` of ``parts`` of a workload, part 0 from a fresh state; return its CPU ns.
Part = Callable[[int, int], int]


def parts_over(items: Sequence[T], start: Callable[[], Callable[[Sequence[T]], None]]) -> Part:
    """Return a :data:`Part` running ``items`` in order, one slice per part.

    ``start()`` is called at part 0 and returns the loop for the slices: the
    state it closes over (a book, an engine, bars) carries from part to part.
    """
    loop: list[Callable[[Sequence[T]], None]] = []

    def part(index: int, parts: int) -> int:
        if index == 0 or not loop:
            loop[:] = [start()]
        n = len(items)
        chunk = items[n * index // parts : n * (index + 1) // parts]
        run = loop[0]
        begin = process_time_ns()
        run(chunk)
        return process_time_ns() - begin

    return part


@dataclass(frozen=True)
class Case:
    """One benchmark: ``ops`` operations of ``unit`` done by ``subject`` (and ``reference``)."""

    name: str
    unit: str
    ops: int
    subject: Part
    reference: Part | None = None
    reference_name: str = ""

    def slowed(self, factor: int) -> Case:
        """Return this case with its subject doing each part ``factor`` times.

        A real slowdown of the measured code, to prove that the gate fails.
        """
        subject = self.subject

        def repeated(index: int, parts: int) -> int:
            return sum(subject(index, parts) for _ in range(factor))

        return replace(self, subject=repeated)


class Result(msgspec.Struct):
    """Medians of one case over the repetitions; ``ratio`` is subject ÷ reference."""

    name: str
    unit: str
    ops: int
    ns_per_op: float
    reference_name: str = ""
    reference_ns_per_op: float | None = None
    ratio: float | None = None
    samples: list[float] = []
    ratios: list[float] = []

    @property
    def per_second(self) -> float:
        """Return operations per CPU second."""
        return 1e9 / self.ns_per_op if self.ns_per_op > 0 else 0.0


def measure(
    cases: list[Case],
    reps: int,
    *,
    parts: int = 10,
    warmup: bool = True,
    progress: Callable[[str], None] | None = None,
) -> list[Result]:
    """Run every case ``reps`` times, sides interleaved part by part; return medians and ratios.

    ``warmup`` runs every case once first, untimed (lazy compilation, caches).
    """
    subject: dict[str, list[float]] = {case.name: [] for case in cases}
    reference: dict[str, list[float]] = {case.name: [] for case in cases}
    for rep in range(-1 if warmup else 0, reps):
        if progress is not None:
            progress("warm-up" if rep < 0 else f"repetition {rep + 1}/{reps}")
        for case in cases:
            gc.collect()  # not on the clock of whichever case runs next
            total = [0, 0]
            for index in range(parts):
                sides = [(0, case.subject), (1, case.reference)]
                if index % 2:
                    sides.reverse()  # neither side always runs first
                for side, run in sides:
                    if run is not None:
                        total[side] += run(index, parts)
            if rep >= 0:
                subject[case.name].append(total[0] / case.ops)
                if case.reference is not None:
                    reference[case.name].append(total[1] / case.ops)
    return [_result(case, subject[case.name], reference[case.name]) for case in cases]


def _result(case: Case, subject: list[float], reference: list[float]) -> Result:
    result = Result(
        case.name,
        case.unit,
        case.ops,
        round(statistics.median(subject), 2),
        case.reference_name,
        samples=[round(x, 2) for x in subject],
    )
    if reference:
        ratios = [s / r for s, r in zip(subject, reference, strict=True)]
        result.reference_ns_per_op = round(statistics.median(reference), 2)
        result.ratio = round(statistics.median(ratios), 4)
        result.ratios = [round(x, 4) for x in ratios]
    return result
