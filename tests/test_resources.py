"""Resource control from ``[resources]``: cores, niceness, collector thresholds, freezing."""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest
import yaml

from tickhawk.app.live import LiveApp
from tickhawk.config import ConfigError, ResourcesConfig, parse_config
from tickhawk.presets import fast_config_data
from tickhawk.resources import ResourceControl, allowed_cores
from tickhawk.sim import SimConfig, Simulator

linux_only = pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity"), reason="CPU affinity is a Linux interface"
)


@linux_only
def test_affinity_pins_the_engine_thread_and_moves_the_others() -> None:
    allowed = allowed_cores()
    engine_core = max(allowed)
    others_expected = (allowed - {engine_core}) or {engine_core}
    started = threading.Event()
    finish = threading.Event()
    native: list[int] = []

    def helper() -> None:
        native.append(threading.get_native_id())
        started.set()
        finish.wait(30)

    thread = threading.Thread(target=helper)
    thread.start()
    started.wait(30)
    control = ResourceControl(ResourcesConfig(cpu_affinity=[engine_core]))
    try:
        control.apply()
        assert os.sched_getaffinity(0) == {engine_core}
        assert os.sched_getaffinity(native[0]) == others_expected
        assert control.other_cores == others_expected
        assert any(line.startswith("cpu_affinity: engine on ") for line in control.applied)
        # a thread started later inherits the engine's cores until it moves itself off them
        seen: list[set[int]] = []

        def later() -> None:
            seen.append(set(os.sched_getaffinity(0)))
            control.keep_off_engine()
            seen.append(set(os.sched_getaffinity(0)))

        late = threading.Thread(target=later)
        late.start()
        late.join(30)
        assert seen == [{engine_core}, others_expected]
    finally:
        control.restore()
        finish.set()
        thread.join(30)
    assert os.sched_getaffinity(0) == allowed


def test_gc_thresholds_applied_and_restored() -> None:
    before = gc.get_threshold()
    control = ResourceControl(ResourcesConfig(gc_thresholds=[50_000, 20]))
    control.apply()
    try:
        assert gc.get_threshold() == (50_000, 20, before[2])  # unnamed generations kept
    finally:
        control.restore()
    assert gc.get_threshold() == before


def test_nice_applied() -> None:
    now = os.getpriority(os.PRIO_PROCESS, 0)
    target = min(now + 1, 19)
    control = ResourceControl(ResourcesConfig(nice=target))
    control.apply()
    try:
        assert os.getpriority(os.PRIO_PROCESS, 0) == target
        assert f"nice: {target}" in control.applied
    finally:
        control.restore()
    if os.geteuid() == 0:  # lowering it back needs the privilege
        assert os.getpriority(os.PRIO_PROCESS, 0) == now


@linux_only
def test_unavailable_core_is_one_line_naming_the_key() -> None:
    missing = max(allowed_cores()) + 64
    control = ResourceControl(ResourcesConfig(cpu_affinity=[missing]))
    with pytest.raises(ConfigError) as caught:
        control.apply()
    text = str(caught.value)
    assert text.startswith(f"resources.cpu_affinity: core {missing} is not available")
    assert "use cores from" in text and "\n" not in text
    assert os.sched_getaffinity(0) == allowed_cores()  # nothing changed


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        ({"cpu_affinity": [-1]}, "resources.cpu_affinity: list distinct core numbers"),
        ({"cpu_affinity": [0, 0]}, "resources.cpu_affinity: list distinct core numbers"),
        ({"nice": 40}, "resources.nice: use a niceness from -20"),
        ({"gc_thresholds": [1, 2, 3, 4]}, "resources.gc_thresholds: up to three"),
        ({"gc_thresholds": [-5]}, "resources.gc_thresholds: up to three"),
        ({"memory_budget_mb": 0}, "resources.memory_budget_mb: must be a positive"),
        ({"cpu_affinity": "0"}, "Expected `array`, got `str` - at `$.resources.cpu_affinity`"),
        ({"pin": True}, "Object contains unknown field `pin`"),
    ],
)
def test_bad_resources_are_refused_at_parse(resources: dict[str, object], message: str) -> None:
    data = fast_config_data(["BTCUSDT"], ["trade"])
    data["resources"] = resources
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    assert message.replace(" - at `$.resources.cpu_affinity`", "") in str(caught.value)


@linux_only
def test_tickhawk_run_with_an_unavailable_core_ends_in_one_line(tmp_path: Path) -> None:
    data = fast_config_data(["BTCUSDT"], ["trade"], ws_url="ws://127.0.0.1:9")
    data["resources"] = {"cpu_affinity": [max(allowed_cores()) + 64]}
    path = tmp_path / "pinned.yaml"
    path.write_text(yaml.safe_dump(data))
    done = subprocess.run(
        [sys.executable, "-m", "tickhawk.cli", "run", str(path), "--duration", "3"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tickhawk run: resources.cpu_affinity: core ")


async def until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


def in_collector(target: object) -> bool:
    """Return whether the collector still walks ``target`` (frozen objects it never does)."""
    return any(o is target for o in gc.get_objects())


@pytest.mark.parametrize("freeze", [True, False])
def test_live_app_freezes_the_heap_after_warm_up(freeze: bool) -> None:
    async def scenario() -> None:
        async with Simulator(SimConfig(n_symbols=2, rate=1000.0, seed=3)) as sim:
            data = fast_config_data(
                list(sim.symbols), ["trade"], ws_url=sim.ws_url, rest_url=sim.rest_url
            )
            data["resources"] = {"gc_freeze_after_warmup": freeze, "gc_thresholds": [20_000]}
            app = LiveApp(parse_config(data))
            state = next(iter(app.engine.states.values()))
            assert gc.get_freeze_count() == 0 and in_collector(state)
            stop = asyncio.Event()
            run = asyncio.create_task(app.run(stop=stop))
            await app.wait_live(30)
            await until(lambda: app.engine.trades > 20, 30, "live trades")
            assert app.warmup is not None and not app.warmup.skipped  # warm-up came first
            assert gc.get_threshold()[0] == 20_000
            if freeze:
                assert app.resources.frozen > 1000 and gc.get_freeze_count() > 1000
                # built before and during warm-up: frozen, so collections never walk them
                assert not in_collector(state) and not in_collector(app.warmup.results)
            else:
                assert app.resources.frozen == 0 and gc.get_freeze_count() == 0
                assert in_collector(state)
            stop.set()
            await run
            assert gc.get_freeze_count() == 0 and in_collector(state)  # undone at the end
            assert gc.get_threshold()[0] != 20_000

    gc.unfreeze()
    asyncio.run(scenario())


def test_defaults_change_nothing_but_freezing() -> None:
    config = msgspec.convert({}, ResourcesConfig)
    assert config == ResourcesConfig()
    assert (config.cpu_affinity, config.nice, config.gc_thresholds) == ([], None, [])
    assert config.gc_freeze_after_warmup and config.memory_budget_mb == 512
    affinity = allowed_cores()
    threshold = gc.get_threshold()
    control = ResourceControl(config)
    control.apply()
    assert control.applied == [] and allowed_cores() == affinity
    assert gc.get_threshold() == threshold
    control.restore()
