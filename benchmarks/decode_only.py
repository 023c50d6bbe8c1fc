"""Decode-only loop over a capture: the same decoders and routes, no engine state.

The reference the replay benchmark divides by: what the pipeline costs beyond
decoding the same messages. Prints one JSON object like ``tickhawk replay --json``.
The loop is :func:`tickhawk.bench.pipeline.decode_only`, which ``tickhawk bench``
and the regression gate use too.
"""

from __future__ import annotations

import json
import sys
import time
from time import perf_counter_ns

from tickhawk.app.replay import streams_in
from tickhawk.bench.data import NullSink
from tickhawk.bench.pipeline import decode_only
from tickhawk.capture import load_capture

__all__ = ["NullSink", "main"]


def main(path: str) -> None:
    messages = load_capture(path)
    run = decode_only(streams_in(messages))  # the same routes replay builds
    cpu0 = time.process_time()
    t0 = perf_counter_ns()
    run(messages)
    wall = (perf_counter_ns() - t0) / 1e9
    cpu = time.process_time() - cpu0
    print(
        json.dumps(
            {
                "messages": len(messages),
                "wall_s": wall,
                "cpu_s": cpu,
                "msgs_per_s": len(messages) / wall,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1])
