"""How sessions connect: timeouts, heartbeats, watchdog, rotation, circuit breaker.

One Struct, read from the configuration's ``[connection]`` table
(:class:`tickhawk.config.Config`) and handed to every session of a venue.
"""

from __future__ import annotations

import msgspec

__all__ = ["ConnectionOptions"]


class ConnectionOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Connection settings shared by a venue's sessions (``[connection]``)."""

    connect_timeout_s: float = 5.0  # TCP + TLS + WebSocket handshake
    backoff_cap_s: float = 5.0  # longest wait between attempts (full jitter below it)
    ping_interval_s: float = 5.0  # a ping this often, whatever the traffic
    pong_timeout_s: float = 5.0  # no pong by then: the connection is given up
    stale_floor_s: float = 5.0  # a stream is never stale before this much silence
    stale_factor: float = 10.0  # ... nor before this many times its usual gap
    rotate_after_s: float = 84_600.0  # 23.5 h: replace the connection before Binance's 24 h cut
    rotate_overlap_s: float = 0.5  # both connections deliver at least this long before the switch
    breaker_failures: int = 10  # connect failures in a row that open the venue's breaker
    breaker_cooldown_s: float = 30.0  # how long an open breaker holds attempts back
    max_frame_bytes: int = 4 * 1024 * 1024  # a larger frame is a protocol error: reconnect

    def problems(self) -> list[str]:
        """Return what is wrong, one line per key (``key: what to change``)."""
        out = []
        for name in (
            "connect_timeout_s",
            "backoff_cap_s",
            "ping_interval_s",
            "pong_timeout_s",
            "stale_floor_s",
            "stale_factor",
            "rotate_overlap_s",
            "breaker_cooldown_s",
        ):
            if not 0 < getattr(self, name) < 1e9:
                out.append(f"{name}: must be a positive number")
        if self.pong_timeout_s > self.ping_interval_s:
            out.append("pong_timeout_s: must not exceed ping_interval_s (one ping at a time)")
        if self.rotate_after_s < 0:
            out.append("rotate_after_s: must be >= 0 seconds (0: never rotate)")
        elif 0 < self.rotate_after_s <= self.rotate_overlap_s:
            out.append("rotate_after_s: must exceed rotate_overlap_s (or be 0: never rotate)")
        if self.breaker_failures < 1:
            out.append("breaker_failures: must be at least 1")
        if self.max_frame_bytes < 64 * 1024:
            out.append("max_frame_bytes: must be at least 65536 (depth frames reach tens of KB)")
        return out
