"""Faults on streams: gaps, duplicates, reordering, stalls and bad frames, batch by batch.

The hub hands every published batch to :meth:`StreamFaults.filter` while a
stream fault is armed (and only then: the hot path checks one attribute).
Each armed fault is an *effect* that acts on the matching streams, every
subscriber alike; an effect acts on each matching stream that has
subscribers, and is done when all of them had their share. Messages are
``(stream id, payload, combined form or None)`` as in ``Hub.publish_bytes``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tickhawk.sim.faultspec import Duplicate, Gap, Malformed, Oversized, Reorder, Stale
from tickhawk.sim.streams import StreamKey

__all__ = ["Message", "StreamEffect", "StreamFaults"]

Message = tuple[int, bytes, bytes | None]
Count = Callable[[str], None]

StreamFault = Gap | Duplicate | Reorder | Stale | Malformed | Oversized

_SCHEMA = (
    b'{"e":"%s","E":"x","s":"%s","t":"x","a":"x","U":"x","u":"x","p":"x","q":"x",'
    b'"b":"x","B":"x","A":"x","T":"x","m":"x","k":"x"}'
)
_GARBAGE = b"<html><body><h1>502 Bad Gateway</h1></body></html>"


def _kind(key: StreamKey) -> str:
    """Return a key's base kind: ``depth`` for ``depth@100ms`` (replay keys carry it)."""
    return key.kind.partition("@")[0]


class StreamEffect:
    """One armed stream fault: which streams it hits and what it does to a message."""

    def __init__(self, fault: StreamFault, name: str, end_ms: int = 0) -> None:
        self.fault = fault
        self.name = name
        self.symbol = fault.symbol
        self.kind = "depth" if isinstance(fault, Gap) else fault.stream
        self.end_ms = end_ms  # stalls: when the stream resumes (simulated ms)
        self.quota = getattr(fault, "count", 1)
        self.used: dict[int, int] = {}  # stream id -> messages acted on
        self.held: list[Message] = []  # stalls in hold mode; reordering
        self.inserted = 0  # frames added that are no message of the stream
        self._wants: dict[int, bool] = {}

    def wants(self, stream: int, keys: list[StreamKey]) -> bool:
        """Return whether this effect acts on stream id ``stream``."""
        wanted = self._wants.get(stream)
        if wanted is None:
            key = keys[stream]
            wanted = _kind(key) == self.kind and self.symbol in (None, key.symbol)
            self._wants[stream] = wanted
        return wanted

    def done(self, keys: list[StreamKey], subscribers: Sequence[Sequence[object]]) -> bool:
        """Return whether every matching stream with subscribers had its share."""
        if isinstance(self.fault, Stale):
            return False  # ends by time: see StreamFaults.expire
        matched = False
        for stream in range(len(keys)):
            if subscribers[stream] and self.wants(stream, keys):
                matched = True
                if self.used.get(stream, 0) < self.quota:
                    return False
        return matched

    def take(self, message: Message, out: list[Message], count: Count) -> bool:
        """Act on ``message`` (appending what to send to ``out``); False to pass it on."""
        stream = message[0]
        used = self.used.get(stream, 0)
        fault = self.fault
        if isinstance(fault, Stale):
            if used == 0:
                count(self.name)
            self.used[stream] = used + 1
            if fault.mode == "hold":
                self.held.append(message)
            return True
        if used >= self.quota:
            return False
        if isinstance(fault, Reorder):
            if used == 0:
                held = [m for m in self.held if m[0] == stream]
                if not held:
                    self.held.append(message)  # wait for the next one to overtake it
                    return True
                self.held.remove(held[0])
                out.append(message)
                out.append(held[0])
                count(self.name)
                self.used[stream] = 1
                return True
            return False
        self.used[stream] = used + 1
        if isinstance(fault, Gap):
            if used == 0:
                count(self.name)
            count("gap_messages")
        elif isinstance(fault, Duplicate):
            out.append(message)
            out.append(message)
            count(self.name)
        elif isinstance(fault, Malformed):
            bad = self._malformed(fault.mode, message)
            out.append((stream, bad, bad if fault.mode == "garbage" else None))
            out.append(message)
            self.inserted += 1
            count(self.name)
        elif isinstance(fault, Oversized):
            out.append((stream, _oversized(fault.size), None))
            out.append(message)
            self.inserted += 1
            count(self.name)
        return True

    @staticmethod
    def _malformed(mode: str, message: Message) -> bytes:
        payload = message[1]
        if mode == "garbage":
            return _GARBAGE
        if mode == "not_json":
            return payload[: max(1, len(payload) // 2)]  # cut in the middle: truncated JSON
        head = payload[:64]
        event = b"?"
        if head.startswith(b'{"e":"'):
            event = head[6 : head.find(b'"', 6)]
        symbol = b"?"
        start = payload.find(b'"s":"')
        if start >= 0:
            symbol = payload[start + 5 : payload.find(b'"', start + 5)]
        return _SCHEMA % (event, symbol)


def _oversized(size: int) -> bytes:
    head = b'{"e":"oversized","pad":"'
    return head + b"x" * max(0, size - len(head) - 2) + b'"}'


class StreamFaults:
    """The armed stream effects; :meth:`filter` applies them to a batch."""

    def __init__(
        self, keys: list[StreamKey], subscribers: Sequence[Sequence[object]], count: Count
    ) -> None:
        self.keys = keys
        self.subscribers = subscribers
        self.count = count
        self.effects: list[StreamEffect] = []
        #: Per stream id: frames sent that were inserted by a fault (not market messages).
        self.inserted: dict[int, int] = {}

    def __bool__(self) -> bool:
        return bool(self.effects)

    def add(self, effect: StreamEffect) -> None:
        """Arm one effect."""
        self.effects.append(effect)

    def filter(self, messages: list[Message]) -> list[Message]:
        """Return the batch as the armed faults make it."""
        out: list[Message] = []
        keys = self.keys
        effects = self.effects
        count = self.count
        for message in messages:
            stream = message[0]
            for effect in effects:
                if effect.wants(stream, keys) and effect.take(message, out, count):
                    if effect.inserted:
                        inserted = self.inserted
                        extra = effect.inserted * len(self.subscribers[stream])
                        inserted[stream] = inserted.get(stream, 0) + extra
                        effect.inserted = 0
                    break
            else:
                out.append(message)
        self.effects = [
            effect for effect in effects if effect.held or not effect.done(keys, self.subscribers)
        ]
        return out

    def expire(self, now_ms: int) -> list[Message]:
        """End the stalls due by ``now_ms``; return their held messages, in order."""
        released: list[Message] = []
        keep: list[StreamEffect] = []
        for effect in self.effects:
            if isinstance(effect.fault, Stale) and effect.end_ms <= now_ms:
                released += effect.held
            else:
                keep.append(effect)
        self.effects = keep
        return released

    def next_end_ms(self) -> int | None:
        """Return when the next stall ends (simulated ms), or None."""
        ends = [e.end_ms for e in self.effects if isinstance(e.fault, Stale)]
        return min(ends) if ends else None
