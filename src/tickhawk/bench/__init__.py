"""Benchmark cases and the performance regression gate, shared by ``tickhawk bench``
and the scripts in the repository's ``benchmarks/``.

- :mod:`~tickhawk.bench.data`: the real captures and klines of ``../shared/data``
  and the message sets derived from them;
- :mod:`~tickhawk.bench.measure`: interleaved CPU-time measurement, medians and
  same-run ratios;
- :mod:`~tickhawk.bench.cases` (micro) and :mod:`~tickhawk.bench.pipeline`
  (replay of a capture, decode-only), :mod:`~tickhawk.bench.indicators`
  (tickhawk, raw TA-Lib, talipp), :mod:`~tickhawk.bench.loopback` (engine and
  simulator over loopback);
- :mod:`~tickhawk.bench.instructions`: instruction counts under callgrind;
- :mod:`~tickhawk.bench.baseline` and :mod:`~tickhawk.bench.gate`: the stored
  baseline and the comparison that fails on a regression.
"""
