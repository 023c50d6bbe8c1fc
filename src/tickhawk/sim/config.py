"""Simulator configuration, validated when built (errors say what to change)."""

from __future__ import annotations

import math
from typing import Literal

import msgspec

from tickhawk.sim.faultspec import ScheduledFault, parse_schedule

__all__ = ["SimConfig"]


class SimConfig(msgspec.Struct, kw_only=True, frozen=True):
    """How to run the simulator.

    Synthetic mode (``replay`` is None): ``symbols`` names the instruments, or
    ``n_symbols`` asks for that many (BTCUSDT, ETHUSDT, ... then SYM0001USDT
    ...); ``rate`` is the target of trade + aggTrade + bookTicker messages per
    second over all symbols; ``seed`` (and ``start_time_ms``) fix the market.

    Replay mode: ``replay`` is a capture file; ``speed`` None or 1.0 paces it
    as recorded, N plays N times faster, ``"max"`` (or ``math.inf``) as fast
    as the clients read. Replay starts once ``replay_wait_clients`` clients
    have subscribed to something (0: at once).

    Ports 0 pick free ports. ``max_send_buffer`` is the unsent bytes per
    client beyond which it is closed as a slow consumer.

    ``faults`` are fault lines (``"at=5s gap symbol=BTCUSDT"``, see
    :mod:`tickhawk.sim.faultspec`) fired on simulated time. ``keep_snapshots``
    keeps a few seconds of book snapshots of the symbols with a depth stream
    (synthetic mode), to serve an old snapshot on command.

    ``answer_pings`` False leaves clients' pings unanswered (their heartbeat
    must notice). ``max_connection_age_s`` closes every connection that old
    (code 1001), as Binance does after 24 hours.
    """

    symbols: list[str] | None = None
    n_symbols: int | None = None
    rate: float = 10_000.0
    seed: int = 7
    host: str = "127.0.0.1"
    ws_port: int = 0
    rest_port: int = 0
    replay: str | None = None
    speed: float | Literal["max"] | None = None
    start_time_ms: int | None = None
    ping_interval_s: float = 20.0
    pong_timeout_s: float = 60.0
    step_ms: int = 1
    batch_ms: float = 2.0
    max_send_buffer: int = 8 * 1024 * 1024
    book_levels: int = 200
    history_trades: int = 100_000
    history_budget: int = 1_000_000
    bar_budget: int = 400_000
    rest_weight_limit: int | None = None
    replay_wait_clients: int = 1
    close_on_replay_end: bool = False
    faults: list[str] = []
    keep_snapshots: bool = True
    answer_pings: bool = True
    max_connection_age_s: float | None = None

    def __post_init__(self) -> None:
        """Check the values; raise ``ValueError`` saying what to change."""
        if self.replay is None:
            self._check_synthetic()
        elif self.symbols is not None or self.n_symbols is not None:
            raise ValueError("replay serves the capture's symbols: drop symbols/n_symbols")
        speed = self.speed
        if (
            speed is not None
            and speed != "max"
            and not (isinstance(speed, float | int) and speed > 0)
        ):
            raise ValueError("speed must be a positive number or 'max'")
        for name in ("ws_port", "rest_port"):
            port = getattr(self, name)
            if not 0 <= port <= 65_535:
                raise ValueError(f"{name} must be between 0 and 65535, not {port}")
        if self.ping_interval_s < 0 or self.pong_timeout_s <= 0:
            raise ValueError("ping_interval_s must be >= 0 and pong_timeout_s > 0")
        if self.max_connection_age_s is not None and not self.max_connection_age_s > 0:
            raise ValueError("max_connection_age_s must be a positive number of seconds or None")
        if self.step_ms < 1 or self.batch_ms <= 0:
            raise ValueError("step_ms must be >= 1 and batch_ms > 0")
        if self.max_send_buffer < 64 * 1024:
            raise ValueError("max_send_buffer must be at least 65536 bytes")
        if self.book_levels < 10:
            raise ValueError("book_levels must be at least 10")
        self.fault_schedule()  # raises ValueError for a bad line

    def fault_schedule(self) -> list[ScheduledFault]:
        """Return the parsed ``faults``."""
        return parse_schedule(self.faults)

    def _check_synthetic(self) -> None:
        if self.symbols is not None and self.n_symbols is not None:
            raise ValueError("give either symbols or n_symbols, not both")
        count = len(self.symbols) if self.symbols is not None else self.n_symbols
        if count is not None and not 1 <= count <= 2_000:
            raise ValueError(f"the simulator serves 1 to 2000 symbols, not {count}")
        if self.symbols is not None and len(set(self.symbols)) != len(self.symbols):
            raise ValueError("symbols must not repeat")
        if not (math.isfinite(self.rate) and self.rate > 0):
            raise ValueError(
                f"rate must be a positive number of messages per second, not {self.rate}"
            )

    @property
    def symbol_count(self) -> int:
        """Return how many synthetic symbols this configuration asks for."""
        if self.symbols is not None:
            return len(self.symbols)
        return self.n_symbols if self.n_symbols is not None else 2

    @property
    def replay_speed(self) -> float:
        """Return the replay speed factor (``math.inf`` for as fast as possible)."""
        if self.speed is None:
            return 1.0
        if self.speed == "max":
            return math.inf
        return float(self.speed)
