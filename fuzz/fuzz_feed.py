"""Fuzz the Binance frame decoders, the REST decoders and the config loader (run by hand).

    python fuzz/fuzz_feed.py [-max_total_time=600] [atheris/libFuzzer options]
    python fuzz/fuzz_feed.py --hypothesis [--examples 100000]

With atheris (``pip install -e '.[fuzz]'``) this is a coverage-guided libFuzzer
target; without it, or with ``--hypothesis``, the same checks run as a long
hypothesis search. Each input becomes: raw bytes, a real frame (the captures
in ../shared/data, the simulator's encoders) with bytes spliced in, garbage
behind a valid stream prefix, a REST answer, or a config file. The checks
are those of tests/test_fuzz_decoders.py: nothing raises out of
``BinanceFeed.on_message``, each message has at most one outcome and none
only when it is Binance's forming kline, every rejection has a known reason,
REST decoders raise only RestError, the config loader only a one-line
ConfigError. A failure stops the run with the input that caused it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from tickhawk.config import ConfigError, load_config
from tickhawk.venues.binance.rest import (
    RestError,
    decode_agg_trades,
    decode_depth,
    decode_klines,
    decode_trades,
)

ROOT = Path(__file__).resolve().parent.parent

PREFIXES = [b'{"stream":"btcusdt@trade","data":', b'{"stream":"btcusdt@depth@100ms","data":',
            b'{"stream":"btcusdt@bookTicker","data":', b'{"stream":"btcusdt@kline_1m","data":',
            b'{"stream":"btcusdt@aggTrade","data":']  # fmt: skip


class Target:
    """One engine per market, fed input after input."""

    def __init__(self) -> None:
        sys.path.insert(0, str(ROOT / "tests"))  # the harness and the real frames of the tests
        from test_fuzz_decoders import FeedUnderTest, all_frames

        self.feeds = [FeedUnderTest("spot"), FeedUnderTest("usdm")]
        self.frames = all_frames()
        self.folder = Path(tempfile.mkdtemp(prefix="tickhawk-fuzz-"))
        self.inputs = 0

    def frame(self, choice: int, at: int, splice: bytes, cut: int) -> bytes:
        frame = self.frames[choice % len(self.frames)]
        at %= len(frame) + 1
        return frame[:at] + splice + frame[at + cut :]

    def one(self, mode: int, choice: int, at: int, cut: int, data: bytes) -> None:
        self.inputs += 1
        under = self.feeds[choice % 2]
        if mode == 0:
            under.feed_one(data)
        elif mode == 1:
            under.feed_one(self.frame(choice, at, data, cut % 8))
        elif mode == 2:
            under.feed_one(PREFIXES[choice % len(PREFIXES)] + data)
        elif mode == 3:
            for decode in (decode_depth, decode_trades, decode_agg_trades):
                try:
                    decode(data)
                except RestError:
                    pass
            try:
                decode_klines("BTCUSDT", "1m", data)
            except RestError:
                pass
        else:
            path = self.folder / ("c.yaml" if choice % 2 else "c.toml")
            path.write_bytes(data)
            try:
                load_config(path)
            except ConfigError as exc:
                assert "\n" not in str(exc), str(exc)
            except UnicodeDecodeError:
                pass  # not text: read_text's error, raised before the loader parses anything


def run_atheris(argv: list[str]) -> None:
    import atheris

    target = Target()

    def test_one_input(raw: bytes) -> None:
        provider = atheris.FuzzedDataProvider(raw)
        mode = provider.ConsumeIntInRange(0, 4)
        choice = provider.ConsumeIntInRange(0, 1 << 20)
        at = provider.ConsumeIntInRange(0, 1 << 12)
        cut = provider.ConsumeIntInRange(0, 255)
        target.one(mode, choice, at, cut, provider.ConsumeBytes(provider.remaining_bytes()))

    atheris.instrument_all()  # coverage of everything loaded: the feed, states, decoders
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()


def run_hypothesis(examples: int) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    target = Target()

    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        mode=st.integers(0, 4),
        choice=st.integers(0, 1 << 20),
        at=st.integers(0, 1 << 12),
        cut=st.integers(0, 255),
        data=st.binary(max_size=512),
    )
    def search(mode: int, choice: int, at: int, cut: int, data: bytes) -> None:
        target.one(mode, choice, at, cut, data)

    search()
    print(f"{target.inputs:,} inputs, no failure", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hypothesis", action="store_true", help="no atheris: a hypothesis run")
    parser.add_argument("--examples", type=int, default=100_000, help="hypothesis examples")
    args, rest = parser.parse_known_args()
    if not args.hypothesis:
        try:
            import atheris  # noqa: F401
        except ImportError:
            print("atheris is not installed: running the hypothesis search", file=sys.stderr)
            args.hypothesis = True
    if args.hypothesis:
        run_hypothesis(args.examples)
    else:
        run_atheris([sys.argv[0], *rest])


if __name__ == "__main__":
    main()
