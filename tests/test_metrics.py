"""Metrics: histograms against numpy, sampled stage timings on the real capture, samplers, leaks."""

from __future__ import annotations

import asyncio
import gc
import math
import random
import statistics
import time
import tracemalloc
from pathlib import Path

import msgspec
import numpy as np
import psutil
import pytest

from polling import poll as _poll
from tickhawk.app.replay import market_of, streams_in
from tickhawk.capture import load_capture
from tickhawk.config import ConfigError, parse_config
from tickhawk.engine import Engine
from tickhawk.metrics.histogram import SlidingHistogram, bucket_bounds, bucket_index
from tickhawk.metrics.leak import LeakDetector, fit_trend, t_quantile
from tickhawk.metrics.registry import Metrics
from tickhawk.metrics.resources import (
    GcMonitor,
    LoopLag,
    ResourceSampler,
    start_tracemalloc,
    stop_tracemalloc,
    tracemalloc_top,
)
from tickhawk.metrics.settings import parse_listen
from tickhawk.metrics.snapshot import STAGES
from tickhawk.presets import fast_config, fast_config_data
from tickhawk.rejects import Rejects
from tickhawk.venues.binance.schema import DepthSnapshot

# -- histograms -------------------------------------------------------------------


def test_buckets_tile_the_range_and_are_at_most_a_sixteenth_wide() -> None:
    rng = random.Random(3)
    values = [0, 1, 31, 32, 33, 63, 64, 1000, 10**6, 10**9, 2**37 - 1]
    values += [rng.randrange(0, 2**37) for _ in range(20_000)]
    for value in values:
        index = bucket_index(value)
        low, width = bucket_bounds(index)
        assert low <= value < low + width
        assert width == 1 or width <= low / 16
        assert index == 0 or bucket_index(low - 1) == index - 1  # no hole below


@pytest.mark.parametrize("seed", [1, 2])
def test_window_percentiles_match_numpy_within_the_bucket_width(seed: int) -> None:
    rng = np.random.default_rng(seed)
    # latencies shaped like the engine's: a body of microseconds and a long tail
    values = np.concatenate(
        [rng.lognormal(math.log(3000), 0.5, 50_000), rng.lognormal(math.log(2e6), 1.0, 800)]
    ).astype(np.int64)
    histogram = SlidingHistogram(window_s=10)
    for i, value in enumerate(values.tolist()):
        histogram.record(value)
        if i % 10_000 == 9_999:
            histogram.rotate()  # spread over slots, all inside the window
    stats = histogram.stats()
    assert stats.count == stats.samples == len(values)
    expected = np.percentile(values, [50, 90, 99, 99.9], method="inverted_cdf") / 1000.0
    got = [stats.p50_us, stats.p90_us, stats.p99_us, stats.p999_us]
    for q, e, g in zip(("p50", "p90", "p99", "p99.9"), expected, got, strict=True):
        assert abs(g - e) <= e / 32 + 0.001, (q, g, e)
    assert stats.max_us == values.max() / 1000.0


def test_a_weighted_sample_counts_as_that_many_events() -> None:
    weighted, repeated = SlidingHistogram(5), SlidingHistogram(5)
    for value, weight in ((100, 3), (5000, 10), (70_000, 1)):
        weighted.record(value, weight)
        for _ in range(weight):
            repeated.record(value)
    a, b = weighted.stats(), repeated.stats()
    assert a.count == b.count == 14 and a.samples == 3 and b.samples == 14
    assert (a.p50_us, a.p90_us, a.p99_us) == (b.p50_us, b.p90_us, b.p99_us)


def test_a_batch_bins_exactly_like_one_by_one() -> None:
    rng = np.random.default_rng(5)
    values = np.concatenate([rng.integers(-50, 40, 500), rng.integers(0, 2**40, 5000)])
    weights = rng.integers(1, 300, len(values))
    batch, single = SlidingHistogram(5), SlidingHistogram(5)
    batch.record_many(values.astype(np.int64), weights.astype(np.int64))
    for value, weight in zip(values.tolist(), weights.tolist(), strict=True):
        single.record(value, weight)
    assert (batch.window_counts() == single.window_counts()).all()
    assert batch.stats() == single.stats() and batch.negative == single.negative > 0
    assert batch.total_sum_ns == single.total_sum_ns


def test_samples_leave_the_window_but_stay_in_the_totals() -> None:
    histogram = SlidingHistogram(window_s=3)
    histogram.record(1_000_000)  # 1 ms, then only 10 µs ones
    histogram.rotate()
    for _ in range(3):
        histogram.record(10_000)
        histogram.rotate()
    stats = histogram.stats()
    assert stats.count == 3 and stats.max_us == pytest.approx(10.0)
    assert histogram.total_count == 4 and int(histogram.cumulative_counts().sum()) == 4
    histogram.record(-5)  # a negative reading (clock skew) is counted and kept as 0
    assert histogram.negative == 1 and histogram.stats().count == 4


def test_an_empty_window_reports_zeros() -> None:
    stats = SlidingHistogram(window_s=60).stats()
    assert stats.count == 0 and stats.p99_us == 0.0 and stats.window_s == 60.0


# -- stage timings on the real capture ----------------------------------------------


def _replay(path: Path, metrics: Metrics | None, *, shift_ns: int = 0) -> Engine:
    """Run the capture through an engine wired like the live app (probe + signal sink)."""
    messages = load_capture(path, Rejects())
    streams = streams_in(messages)
    symbols = sorted({s.split("@", 1)[0].upper() for s in streams})
    kinds = sorted({s.split("@", 1)[1] for s in streams})
    engine = Engine(fast_config(symbols, kinds, market=market_of(streams)))
    feed = engine.feed(streams, probe=metrics.probe if metrics is not None else None)
    if metrics is not None:
        engine.sinks.append(metrics.on_signal)
    decode = msgspec.json.Decoder(DepthSnapshot, strict=False).decode
    state = next(iter(engine.states.values()))
    for ts_recv, payload in messages:
        if payload.startswith(b'{"lastUpdateId"'):
            state.on_snapshot(decode(payload), ts_recv)
            continue
        feed.on_message(payload, time.perf_counter_ns(), ts_recv + shift_ns)
    return engine


def test_every_message_timed_when_the_gap_is_one(usdm_capture: Path) -> None:
    metrics = Metrics(seed=1, sample_every=1)
    engine = _replay(usdm_capture, metrics)
    messages = engine.trades + sum(s.quotes + s.book_updates for s in engine.states.values())
    stats = metrics.stage_stats()
    assert set(stats) == set(STAGES)
    for stage in ("recv_to_decoded", "decoded_to_state", "recv_to_handled", "event_to_recv"):
        assert stats[stage].count == stats[stage].samples == messages, stage
    for stage in ("state_to_strategy", "strategy_to_signal", "recv_to_signal"):
        assert stats[stage].count == engine.signals > 10, stage
    # the parts fit inside the whole
    assert 0 < stats["recv_to_decoded"].p50_us < stats["recv_to_handled"].p50_us
    assert stats["recv_to_signal"].p50_us >= stats["strategy_to_signal"].p50_us
    # the capture's receive clock runs ~1.25 s behind Binance's: negative, kept as 0
    assert stats["event_to_recv"].negative > messages * 0.9


def test_timed_messages_are_handled_exactly_like_the_others(usdm_capture: Path) -> None:
    plain = _replay(usdm_capture, None)
    timed = _replay(usdm_capture, Metrics(seed=3, sample_every=3))

    def outcome(engine: Engine) -> tuple[object, ...]:
        states = list(engine.states.values())
        return (
            engine.trades,
            engine.bars,
            engine.signals,
            dict(engine.rejects.counts),
            [
                (s.quotes, s.book_updates, s.last_price, s.book_sync and s.book_sync.state)
                for s in states
            ],
        )

    assert outcome(timed) == outcome(plain)
    assert plain.signals > 10 and plain.bars > 100


def test_spot_quotes_carry_no_event_time_and_are_left_out_of_event_to_recv(
    spot_capture: Path,
) -> None:
    metrics = Metrics(seed=1, sample_every=1)
    engine = _replay(spot_capture, metrics)
    quotes = sum(s.quotes for s in engine.states.values())
    books = sum(s.book_updates for s in engine.states.values())
    stats = metrics.stage_stats()
    assert quotes > 1000
    assert stats["event_to_recv"].count == engine.trades + books
    assert stats["recv_to_handled"].count == engine.trades + books + quotes


def test_sampled_percentiles_estimate_the_full_distribution(usdm_capture: Path) -> None:
    # event→receive comes from the capture's own timestamps: the same values every run,
    # so the sampled estimate can be compared with the exact distribution.
    shift = 1_272_520_000  # undo the capture's receive-clock lag: values 0.7 µs … 53 ms
    exact = Metrics(seed=1, sample_every=1)
    _replay(usdm_capture, exact, shift_ns=shift)
    assert exact.stages["event_to_recv"].negative == 0
    full = exact.stage_stats()["event_to_recv"]
    messages = full.count
    assert 2000 < full.p50_us < 4000 and 20_000 < full.p99_us < 40_000  # a wide spread
    names = ("p50_us", "p90_us", "p99_us", "p999_us")
    errors: dict[str, list[float]] = {name: [] for name in names}
    for seed in range(8):
        sampled = Metrics(seed=seed, sample_every=16)
        engine = _replay(usdm_capture, sampled, shift_ns=shift)
        assert engine.rejects.total == 0
        estimate = sampled.stage_stats()["event_to_recv"]
        # weights are the gaps: the estimate stands for every message up to the last timed one
        assert messages - 2 * 16 < estimate.count <= messages
        assert messages / 16 * 0.9 < estimate.samples < messages / 16 * 1.1
        for name in names:
            errors[name].append(getattr(estimate, name) / getattr(full, name) - 1)
    for name in names:
        # each estimate within two buckets, and the typical one within one (no bias)
        assert max(abs(e) for e in errors[name]) <= 1 / 8, (name, errors[name])
        assert abs(statistics.median(errors[name])) <= 1 / 16, (name, errors[name])


def test_rates_and_the_adaptive_gap_follow_the_message_rate() -> None:
    metrics = Metrics(samples_per_s=1000, max_gap=512)
    metrics.tick(100.0, 0, 0)
    metrics.tick(101.0, 200_000, 50_000)
    assert metrics.msgs_per_s == 200_000 and metrics.trades_per_s == 50_000
    assert metrics.probe.mean_gap == 200
    metrics.tick(103.0, 200_500, 50_100)  # over the last interval, not since start
    assert metrics.msgs_per_s == 250 and metrics.probe.mean_gap == 1
    metrics.tick(104.0, 5_200_500, 50_100)
    assert metrics.probe.mean_gap == 512
    metrics.tick(105.0, 10, 5)  # a counter went back (a new engine): no rate, no change
    assert metrics.msgs_per_s == 5_000_000 and metrics.probe.mean_gap == 512
    # a burst after a quiet second: the sample budget (2 × samples_per_s) doubles N at once
    metrics.tick(106.0, 10, 5)
    metrics.tick(107.0, 10, 5)
    assert metrics.probe.mean_gap == 1
    covered = [metrics.probe.next_gap() for _ in range(10_000)]
    assert metrics.probe.mean_gap == 32  # 2,000 samples per doubling: 1 → 2 → 4 → 8 → 16 → 32
    assert 60_000 < sum(covered) < 66_000  # 2,000 × (1 + 2 + 4 + 8 + 16) messages
    fixed = Metrics(sample_every=7)
    fixed.tick(1.0, 0, 0)
    fixed.tick(2.0, 100_000, 0)
    assert fixed.probe.mean_gap == 7
    for _ in range(10_000):
        fixed.probe.next_gap()
    assert fixed.probe.mean_gap == 7  # a fixed N is never changed


# -- samplers ----------------------------------------------------------------------


def test_gc_monitor_times_a_forced_collection_per_generation() -> None:
    monitor = GcMonitor()
    monitor.install()
    try:
        junk: list[object] = []
        for _ in range(2000):
            cycle: list[object] = []
            cycle.append(cycle)
            junk.append(cycle)
        del junk
        gc.collect(2)
    finally:
        monitor.remove()
    assert monitor.collections[2] >= 1
    assert monitor.collected[2] >= 2000
    assert monitor.pause_total_ns[2] > 0
    worst = monitor.take_interval_max()
    assert 0 < worst[2] <= monitor.pause_total_ns[2]
    assert monitor.take_interval_max()[2] == 0  # a new interval
    before = list(monitor.collections)
    gc.collect()
    assert monitor.collections == before  # removed: no longer called


def test_loop_lag_sees_a_blocked_loop() -> None:
    async def scenario() -> float:
        lag = LoopLag(period_s=0.02)
        task = asyncio.create_task(lag.run())
        await _poll(lambda: lag.samples >= 3, 10, "first lag samples")
        assert lag.take_max() < 0.2
        time.sleep(0.3)  # block the loop, as a slow callback would
        seen = lag.samples
        await _poll(lambda: lag.samples > seen, 10, "a sample after the block")
        task.cancel()
        return lag.take_max()

    assert asyncio.run(scenario()) >= 0.25


def test_resource_sampler_reads_sane_values() -> None:
    sampler = ResourceSampler(uss_every_s=3600)
    first = sampler.sample()
    deadline = time.process_time() + 0.2
    while time.process_time() < deadline:  # burn CPU so the next reading shows it
        sum(range(1000))
    second = sampler.sample()
    cores = psutil.cpu_count() or 1
    assert 5 < second.cpu_pct <= 100 * cores + 10
    rss = psutil.Process().memory_info().rss / 2**20
    assert second.rss_mb > 10 and abs(second.rss_mb - rss) < 20
    assert 0 < first.uss_mb <= first.rss_mb and second.uss_mb == first.uss_mb  # cached
    assert len(second.cpu_per_core) == cores
    assert all(0 <= v <= 100 for v in second.cpu_per_core)
    assert second.heap_blocks > 1000 and second.threads >= 1 and second.open_fds > 0


def test_tracemalloc_on_demand() -> None:
    if tracemalloc.is_tracing():
        pytest.skip("tracemalloc was already started by the environment")
    sampler = ResourceSampler()
    assert sampler.sample().tracemalloc_mb is None and tracemalloc_top() == []
    assert start_tracemalloc() and not start_tracemalloc()
    try:
        hold = [bytes(1000) for _ in range(5000)]  # ~5 MB traced
        reading = sampler.sample()
        assert reading.tracemalloc_mb is not None and reading.tracemalloc_mb > 4
        top = tracemalloc_top(5)
        assert top and top[0]["file"].endswith("test_metrics.py") and top[0]["kb"] > 4000
        del hold
    finally:
        assert stop_tracemalloc()
    assert sampler.sample().tracemalloc_mb is None


# -- leak detection ----------------------------------------------------------------


def test_t_quantiles_match_the_tables() -> None:
    for p, dof, table in ((0.975, 10, 2.228), (0.975, 30, 2.042), (0.95, 5, 2.015)):
        assert t_quantile(p, dof) == pytest.approx(table, abs=0.01)


def test_a_straight_line_gives_its_slope() -> None:
    times = [float(t) for t in range(0, 3600, 10)]
    trend = fit_trend(times, [100 + 0.01 * t for t in times])  # 36 MB/h
    assert trend is not None and trend.slope_per_h == pytest.approx(36.0)
    assert trend.low_per_h == pytest.approx(36.0, abs=1e-6)


def _series(
    slope_mb_h: float, noise_mb: float, hours: float, seed: int
) -> list[tuple[float, float]]:
    rng = random.Random(seed)
    return [
        (t, 150 + slope_mb_h * t / 3600 + rng.gauss(0, noise_mb))
        for t in (float(s) for s in range(0, int(hours * 3600), 10))
    ]


def _detect(series: list[tuple[float, float]]) -> tuple[LeakDetector, bool]:
    detector = LeakDetector(
        threshold_mb_h=5.0, warmup_s=600, window_s=3600, sustain_s=900, every_s=10
    )
    ever = False
    for t, value in series:
        detector.add(t, value)
        ever = ever or detector.suspected
    return detector, ever


@pytest.mark.parametrize("seed", range(5))
def test_flat_memory_with_noise_is_not_a_leak(seed: int) -> None:
    detector, ever = _detect(_series(0.0, 3.0, 4, seed))
    assert not ever
    assert detector.trend is not None and abs(detector.trend.slope_per_h) < 5


@pytest.mark.parametrize("seed", range(5))
def test_steady_growth_is_a_suspected_leak(seed: int) -> None:
    detector, _ = _detect(_series(20.0, 3.0, 3, seed))
    assert detector.suspected
    assert detector.trend is not None and 15 < detector.trend.slope_per_h < 25


def test_growth_is_suspected_only_after_warm_up_and_sustain() -> None:
    series = _series(40.0, 1.0, 3, 9)
    detector = LeakDetector(
        threshold_mb_h=5.0, warmup_s=600, window_s=3600, sustain_s=900, every_s=10
    )
    first = None
    for t, value in series:
        detector.add(t, value)
        if detector.suspected and first is None:
            first = t
    assert first is not None and first >= 600 + 900  # never before warm-up + sustain


@pytest.mark.parametrize("step_mb", [10, 30, 100])
def test_a_single_step_is_never_a_leak(step_mb: int) -> None:
    # buffers filling once: a jump, then flat for hours
    rng = random.Random(4)
    series = [
        (float(t), 150 + (step_mb if t > 3600 else 0) + rng.gauss(0, 1))
        for t in range(0, 6 * 3600, 10)
    ]
    _, ever = _detect(series)
    assert not ever


def test_a_leak_that_starts_late_is_caught() -> None:
    rng = random.Random(5)
    series = [
        (float(t), 150 + max(0.0, t - 7200) * 20 / 3600 + rng.gauss(0, 2))
        for t in range(0, 5 * 3600, 10)
    ]
    detector, _ = _detect(series[: 7200 // 10])
    assert not detector.suspected  # flat for two hours
    detector, _ = _detect(series)
    assert detector.suspected


# -- configuration ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:9464", ("127.0.0.1", 9464)),
        (":9464", ("127.0.0.1", 9464)),
        ("9464", ("127.0.0.1", 9464)),
        ("0.0.0.0:0", ("0.0.0.0", 0)),
        ("[::1]:9000", ("::1", 9000)),
        ("localhost:80", ("localhost", 80)),
    ],
)
def test_listen_addresses(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["", "host:", "host:port", "1.2.3.4:70000", "::1:80", "a b:1"])
def test_bad_listen_addresses_say_what_is_allowed(text: str) -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_listen(text)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"metrics": {"listen": "x:y"}}, "metrics.listen: 'x:y' is not HOST:PORT"),
        ({"metrics": {"window_s": 0}}, "metrics.window_s: must be 1 to 3600"),
        ({"metrics": {"leak": {"every_s": 0}}}, "metrics.leak.every_s"),
        ({"alerts": {"rules": {"latency": {}}}}, "alerts.rules.latency: no such rule"),
        ({"alerts": {"webhook_url": "ftp://x"}}, "alerts.webhook_url"),
        ({"alerts": {"rules": {"cpu": {"for_s": -1}}}}, "alerts.rules.cpu.for_s"),
    ],
)
def test_bad_metrics_and_alerts_config_is_one_line(table: dict[str, object], message: str) -> None:
    data = fast_config_data(["BTCUSDT"], ["trade"])
    data.update(table)
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    assert message in str(caught.value) and "\n" not in str(caught.value)
