"""Replay throughput of the full pipeline against a decode-only loop, same messages, same run.

    python benchmarks/replay_throughput.py [CAPTURE] [--runs 5]

Runs ``tickhawk replay CAPTURE --speed max --json`` and the decode-only loop
alternately, each in a fresh process, and prints the medians and the ratio
pipeline ÷ decode-only (of wall time per message): the share of the budget the
engine adds beyond decoding. The machine is shared and noisy; the ratio is the
figure to compare across machines.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT.parent / "shared" / "data" / "binance" / "usdm_btcusdt_20240808.gz"


def run_json(cmd: list[str]) -> dict[str, float]:
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("capture", nargs="?", default=str(DEFAULT))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--config", help="replay configuration (default: the 1 s preset)")
    args = parser.parse_args()
    config = ["--config", args.config] if args.config else []
    pipeline, decode = [], []
    for _ in range(args.runs):
        pipeline.append(
            run_json(
                [
                    sys.executable,
                    "-m",
                    "tickhawk.cli",
                    "replay",
                    args.capture,
                    "--speed",
                    "max",
                    "--json",
                    *config,
                ]
            )
        )
        decode.append(
            run_json([sys.executable, str(ROOT / "benchmarks" / "decode_only.py"), args.capture])
        )
    p_rate = statistics.median(r["msgs_per_s"] for r in pipeline)
    d_rate = statistics.median(r["msgs_per_s"] for r in decode)
    result = {
        "capture": Path(args.capture).name,
        "runs": args.runs,
        "messages": pipeline[0]["messages"],
        "pipeline_msgs_per_s_median": round(p_rate),
        "pipeline_msgs_per_s_all": [round(r["msgs_per_s"]) for r in pipeline],
        "decode_only_msgs_per_s_median": round(d_rate),
        "pipeline_cost_ratio": round(d_rate / p_rate, 3),
        "pipeline_us_per_msg": round(1e6 / p_rate, 3),
        "decode_us_per_msg": round(1e6 / d_rate, 3),
        "signals": pipeline[0]["signals"],
        "bars": pipeline[0]["bars"],
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"capture            {result['capture']} ({result['messages']:,} messages)")
    print(
        f"pipeline           {p_rate:>12,.0f} msg/s median of {args.runs}"
        f"  ({result['pipeline_us_per_msg']} µs/msg)  runs: {result['pipeline_msgs_per_s_all']}"
    )
    print(
        f"decode only        {d_rate:>12,.0f} msg/s median  ({result['decode_us_per_msg']} µs/msg)"
    )
    print(f"pipeline ÷ decode  {result['pipeline_cost_ratio']:>12} × the cost per message")


if __name__ == "__main__":
    main()
