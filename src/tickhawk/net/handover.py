"""Make-before-break: two connections with the same streams merged into one exact sequence.

Binance cuts a connection after 24 hours. Before that, the session opens a
second connection with the same streams; for a moment messages arrive on
both. This merge delivers each message once, in stream order, and loses none:

- Before the switch the old connection delivers; the key of each message
  (a :class:`SequenceKey`, the venue's: e.g.
  :class:`tickhawk.venues.binance.sequence.BinanceSequence`) becomes its
  stream's *high mark*. The new
  connection's messages at or below the mark are duplicates (dropped); the
  others are buffered.
- The switch is safe once, for every stream the new connection has spoken
  on, the high mark has reached the new connection's first message: the old
  connection delivered everything up to it, the new one holds everything
  from it, so together they cover the stream without a hole.
- At the switch the buffered messages above the mark are delivered in
  order; then the new connection's own messages go through the same filter
  for a moment (the old one may have been ahead), then straight through.

- A message without a place in a stream (a reply to the new connection's
  own ``SUBSCRIBE``, or bad input) is delivered from either connection: a
  reply exists only on the connection that asked, and a refused
  subscription must be seen.

Nothing here runs outside a rotation: the steady stream goes from the
socket to the feed untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

__all__ = ["Handover", "SequenceKey"]

MessageHandler = Callable[[bytes, int, int], None]


class SequenceKey(Protocol):
    """Place a message in its stream: ``(stream name, key)``, or None if it has no place.

    The key grows along the stream and is the same on every connection that
    carries the stream (a trade id, an update id). Each venue provides its own;
    it runs only on the messages of a rotation's overlap, never the steady stream.
    """

    def __call__(self, payload: bytes) -> tuple[bytes, int] | None: ...


class Handover:
    """Merge the old and the new connection of one rotation.

    ``deliver`` is the session's message handler; ``key`` keys a message by
    stream. Beyond ``max_buffer_bytes`` buffered, :attr:`overflowing` asks the
    session to switch now.
    """

    def __init__(
        self, deliver: MessageHandler, key: SequenceKey, *, max_buffer_bytes: int = 32 << 20
    ) -> None:
        self.deliver = deliver
        self.key = key
        self.max_buffer_bytes = max_buffer_bytes
        self.high: dict[bytes, int] = {}  # the highest key delivered, per stream
        self.first_new: dict[bytes, int] = {}  # the new connection's first key, per stream
        self._buffer: list[tuple[bytes, int, bytes, int, int]] = []
        self.buffered_bytes = 0
        self.duplicates = 0  # messages dropped because the other connection delivered them
        self.replayed = 0  # buffered messages delivered at the switch

    # -- before the switch ------------------------------------------------------------

    def pass_through(self, payload: bytes, t_recv: int, ts_recv: int) -> None:
        """Deliver a message of the leading connection unless it was delivered already."""
        keyed = self.key(payload)
        if keyed is not None:
            stream, seq = keyed
            high = self.high.get(stream)
            if high is not None and seq <= high:
                self.duplicates += 1
                return
            self.high[stream] = seq
        self.deliver(payload, t_recv, ts_recv)

    def from_new(self, payload: bytes, t_recv: int, ts_recv: int) -> None:
        """Take a message of the new connection before the switch: drop or buffer it."""
        keyed = self.key(payload)
        if keyed is None:
            self.deliver(payload, t_recv, ts_recv)  # a reply to this connection, or bad input
            return
        stream, seq = keyed
        if stream not in self.first_new:
            self.first_new[stream] = seq
        high = self.high.get(stream)
        if high is not None and seq <= high:
            self.duplicates += 1
            return
        self._buffer.append((stream, seq, payload, t_recv, ts_recv))
        self.buffered_bytes += len(payload)

    def lagging(self) -> list[str]:
        """Return the streams whose overlap is not proven yet (empty: the switch is safe)."""
        high = self.high
        return [
            stream.decode("utf-8", "replace")
            for stream, first in self.first_new.items()
            if high.get(stream, -1) < first
        ]

    @property
    def overflowing(self) -> bool:
        """Return whether the buffer grew past its bound."""
        return self.buffered_bytes > self.max_buffer_bytes

    # -- the switch -------------------------------------------------------------------

    def switch(self) -> int:
        """Deliver the buffered messages not delivered yet, in order; return how many."""
        buffer, self._buffer = self._buffer, []
        self.buffered_bytes = 0
        high = self.high
        deliver = self.deliver
        delivered = 0
        for stream, seq, payload, t_recv, ts_recv in buffer:
            mark = high.get(stream)
            if mark is not None and seq <= mark:
                self.duplicates += 1
                continue
            high[stream] = seq
            deliver(payload, t_recv, ts_recv)
            delivered += 1
        self.replayed += delivered
        return delivered
