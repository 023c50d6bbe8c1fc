# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, auto_pickle=False, embedsignature=False
"""The compiled L2 book: :class:`tickhawk.book.l2.PythonL2Book`, level for level, in C.

:mod:`tickhawk.book.l2` describes the book; this is the same algorithm with
the same results (levels, near list, horizon, exhausted, crossed), with the
levels of a side in a C hash table instead of a ``dict`` of Python floats:

- entries ``(price, qty)`` are appended in insertion order; a deleted
  one becomes a hole (``qty == 0``: a kept level never has quantity 0) and
  holes are squeezed out when the array is full. So levels iterate in the
  order a ``dict`` would give them;
- an index of ``int32`` entry numbers, open addressing with linear probing,
  at most half full (``EMPTY`` -1, ``DELETED`` -2);
- the near list is a C array of keys ``sign × price``, ascending, best last.

``L2Book.bids`` / ``.asks`` are :class:`Levels`: live read-only mappings
``price → qty`` (registered as :class:`collections.abc.Mapping`).
"""

from collections.abc import ItemsView, KeysView, Mapping, ValuesView

from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from libc.math cimport INFINITY, NAN, nextafter
from libc.stdint cimport int32_t, uint64_t
from libc.stdlib cimport qsort
from libc.string cimport memcpy, memmove, memset

__all__ = ["L2Book", "Levels"]

cdef extern from *:
    """
    static inline uint64_t tickhawk_price_hash(double price) {
        uint64_t u;
        if (price == 0.0) return 0;  /* -0.0 == 0.0: one key */
        memcpy(&u, &price, sizeof u);
        u ^= u >> 33;
        u *= 0xff51afd7ed558ccdULL;
        u ^= u >> 33;
        u *= 0xc4ceb9fe1a85ec53ULL;
        u ^= u >> 33;
        return u;
    }
    """
    uint64_t tickhawk_price_hash(double price) nogil

cdef enum:
    EMPTY = -1
    DELETED = -2

cdef struct Pair:
    double key
    double qty


cdef struct Level:
    double price
    double qty  # 0: a hole (a kept level never has quantity 0)


cdef int _descending(const void *a, const void *b) noexcept nogil:
    cdef double x = (<const double *>a)[0]
    cdef double y = (<const double *>b)[0]
    return (x < y) - (x > y)


cdef int _pairs_descending(const void *a, const void *b) noexcept nogil:
    cdef double x = (<const Pair *>a).key
    cdef double y = (<const Pair *>b).key
    return (x < y) - (x > y)


cdef inline Py_ssize_t _bisect_left(const double *keys, Py_ssize_t n, double key) noexcept nogil:
    cdef Py_ssize_t low = 0, high = n, middle
    while low < high:
        middle = (low + high) >> 1
        if keys[middle] < key:
            low = middle + 1
        else:
            high = middle
    return low


cdef inline Py_ssize_t _bisect_right(const double *keys, Py_ssize_t n, double key) noexcept nogil:
    cdef Py_ssize_t low = 0, high = n, middle
    while low < high:
        middle = (low + high) >> 1
        if key < keys[middle]:
            high = middle
        else:
            low = middle + 1
    return low


cdef class _Side:
    """One side: ``sign`` +1 for bids, -1 for asks; key = sign × price, best = max key."""

    cdef double sign
    cdef Py_ssize_t near
    cdef double horizon_key    # levels are exact, and kept, only above it
    # levels: entries in insertion order (holes: qty 0) and their hash index
    cdef Level *entries
    cdef Py_ssize_t count      # live levels
    cdef Py_ssize_t used       # entries appended (live + holes)
    cdef Py_ssize_t capacity   # entries allocated
    cdef int32_t *index
    cdef Py_ssize_t mask       # index slots - 1 (slots = 2 × capacity)
    # the near levels' keys, ascending, best last (room for 2 × near + 1)
    cdef double *keys
    cdef Py_ssize_t n_keys

    def __cinit__(self, double sign, Py_ssize_t near):
        self.sign = sign
        self.near = near
        self.horizon_key = -INFINITY
        self.keys = <double *>PyMem_Malloc((2 * near + 1) * sizeof(double))
        if self.keys == NULL:
            raise MemoryError()
        self._allocate(8)

    def __dealloc__(self):
        PyMem_Free(self.entries)
        PyMem_Free(self.index)
        PyMem_Free(self.keys)

    # -- the hash table ---------------------------------------------------------------

    cdef int _allocate(self, Py_ssize_t capacity) except -1:
        """Make room for ``capacity`` entries, keeping the live ones in order."""
        cdef Level *entries = <Level *>PyMem_Malloc(capacity * sizeof(Level))
        cdef int32_t *index = <int32_t *>PyMem_Malloc(2 * capacity * sizeof(int32_t))
        if entries == NULL or index == NULL:
            PyMem_Free(entries)
            PyMem_Free(index)
            raise MemoryError()
        cdef Py_ssize_t i, n = 0
        for i in range(self.used):
            if self.entries[i].qty != 0.0:
                entries[n] = self.entries[i]
                n += 1
        PyMem_Free(self.entries)
        PyMem_Free(self.index)
        self.entries = entries
        self.index = index
        self.capacity = capacity
        self.used = n
        self.count = n
        self.mask = 2 * capacity - 1
        self._reindex()
        return 0

    cdef Py_ssize_t nbytes(self) noexcept nogil:
        """Return the bytes this side's tables take (entries, hash index, near keys)."""
        return (
            self.capacity * sizeof(Level)
            + (self.mask + 1) * sizeof(int32_t)
            + (2 * self.near + 1) * sizeof(double)
        )

    cdef int _reserve(self, Py_ssize_t levels) except -1:
        """Make room for ``levels`` live levels at once, so the table does not grow later.

        A table grows only when it is full of entries and more than three quarters
        are live, so ``levels`` fit without growing in a capacity of at least 4/3 of it.
        """
        cdef Py_ssize_t capacity = self.capacity
        while 3 * capacity < 4 * levels:
            capacity *= 2
        if capacity > self.capacity:
            self._allocate(capacity)
        return 0

    cdef void _reindex(self) noexcept nogil:
        cdef Py_ssize_t i, slot, mask = self.mask
        memset(self.index, 0xFF, (mask + 1) * sizeof(int32_t))  # all EMPTY (-1)
        for i in range(self.used):
            slot = <Py_ssize_t>(tickhawk_price_hash(self.entries[i].price) & <uint64_t>mask)
            while self.index[slot] != EMPTY:
                slot = (slot + 1) & mask
            self.index[slot] = <int32_t>i

    cdef inline Py_ssize_t _find(self, double price) noexcept nogil:
        """Return the entry of ``price``, -1 if there is none."""
        cdef Py_ssize_t mask = self.mask
        cdef Py_ssize_t slot = <Py_ssize_t>(tickhawk_price_hash(price) & <uint64_t>mask)
        cdef int32_t entry
        while True:
            entry = self.index[slot]
            if entry == EMPTY:
                return -1
            if entry >= 0 and self.entries[entry].price == price:
                return entry
            slot = (slot + 1) & mask

    cdef inline int _set(self, double price, double qty) except -1:
        """Store a level (``qty`` not 0); return 1 if it is new, 0 if it was there."""
        cdef Py_ssize_t mask = self.mask
        cdef Py_ssize_t slot = <Py_ssize_t>(tickhawk_price_hash(price) & <uint64_t>mask)
        cdef Py_ssize_t free = -1
        cdef int32_t entry
        while True:
            entry = self.index[slot]
            if entry == EMPTY:
                break
            if entry >= 0:
                if self.entries[entry].price == price:
                    self.entries[entry].qty = qty
                    return 0
            elif free < 0:
                free = slot
            slot = (slot + 1) & mask
        if self.used == self.capacity:
            # Full: squeeze out the holes, and grow if they were less than a quarter
            # (so a side of L levels never takes more than the next power of two ≥ 4L/3).
            self._allocate(
                self.capacity * 2 if 4 * self.count > 3 * self.capacity else self.capacity
            )
            mask = self.mask
            slot = <Py_ssize_t>(tickhawk_price_hash(price) & <uint64_t>mask)
            while self.index[slot] != EMPTY:
                slot = (slot + 1) & mask
        elif free >= 0:
            slot = free
        self.entries[self.used].price = price
        self.entries[self.used].qty = qty
        self.index[slot] = <int32_t>self.used
        self.used += 1
        self.count += 1
        return 1

    cdef inline bint _delete(self, double price) noexcept nogil:
        """Remove a level; return whether it was there."""
        cdef Py_ssize_t mask = self.mask
        cdef Py_ssize_t slot = <Py_ssize_t>(tickhawk_price_hash(price) & <uint64_t>mask)
        cdef int32_t entry
        while True:
            entry = self.index[slot]
            if entry == EMPTY:
                return False
            if entry >= 0 and self.entries[entry].price == price:
                self.index[slot] = DELETED
                self.entries[entry].qty = 0.0
                self.count -= 1
                if self.count == 0:  # an empty side starts afresh: no holes, no tombstones
                    self.used = 0
                    memset(self.index, 0xFF, (mask + 1) * sizeof(int32_t))
                return True
            slot = (slot + 1) & mask

    cdef double *_sorted_keys(self) except NULL:
        """Return every level's key, best first (the caller frees it)."""
        cdef double *out = <double *>PyMem_Malloc((self.count + 1) * sizeof(double))
        if out == NULL:
            raise MemoryError()
        cdef Py_ssize_t i, n = 0
        cdef double sign = self.sign
        for i in range(self.used):
            if self.entries[i].qty != 0.0:
                out[n] = sign * self.entries[i].price
                n += 1
        qsort(out, n, sizeof(double), _descending)
        return out

    # -- the side ---------------------------------------------------------------------

    cdef void clear(self) noexcept nogil:
        self.used = 0
        self.count = 0
        memset(self.index, 0xFF, (self.mask + 1) * sizeof(int32_t))
        self.n_keys = 0
        self.horizon_key = -INFINITY

    cdef int load(self, object levels, Py_ssize_t cap, Py_ssize_t limit) except -1:
        """Load a snapshot side; ``limit`` < 0: not cut by the venue."""
        cdef double price, qty
        cdef Py_ssize_t i, n = 0, given = 0
        self.clear()
        for item in levels:  # a price given twice: the last one counts, as in apply
            price, qty = item
            given += 1
            if qty > 0.0:
                self._set(price, qty)
            else:
                self._delete(price)
        # Room for half as many levels again as the snapshot holds (at most the trim
        # point): the table takes its working size now, not in steps while it runs.
        self._reserve(min(self.count + self.count // 2, cap + cap // 10))
        cdef Pair *ordered = <Pair *>PyMem_Malloc((self.count + 1) * sizeof(Pair))
        if ordered == NULL:
            raise MemoryError()
        for i in range(self.used):
            if self.entries[i].qty != 0.0:
                ordered[n].key = self.sign * self.entries[i].price
                ordered[n].qty = self.entries[i].qty
                n += 1
        qsort(ordered, n, sizeof(Pair), _pairs_descending)
        self.clear()  # and store them again best first, as the pure-Python book does
        if n > cap:
            self.horizon_key = ordered[cap].key
            n = cap
        elif n and 0 <= limit <= given:
            # Cut by the venue: its worst level is exact, anything strictly worse is not.
            self.horizon_key = nextafter(ordered[n - 1].key, -INFINITY)
        try:
            for i in range(n):
                self._set(self.sign * ordered[i].key, ordered[i].qty)
        finally:
            PyMem_Free(ordered)
        self.n_keys = min(n, self.near)
        for i in range(self.n_keys):
            self.keys[i] = self.sign * self.entries[self.n_keys - 1 - i].price
        return 0

    cdef int apply(self, list changes, Py_ssize_t cap) except -1:
        cdef double *keys = self.keys
        cdef double sign = self.sign
        cdef Py_ssize_t near = self.near, i
        cdef double price, qty, key, worst
        if self.n_keys == 0 and self.count:
            self._refill()  # far levels only: the near list must hold the best first
        # far levels are below the worst near key; nothing at or below the horizon is kept
        worst = keys[0] if self.n_keys else self.horizon_key
        for item in changes:
            price, qty = item
            if qty != 0.0:
                key = sign * price
                if key > worst:
                    if self._set(price, qty):
                        i = _bisect_right(keys, self.n_keys, key)
                        memmove(keys + i + 1, keys + i, (self.n_keys - i) * sizeof(double))
                        keys[i] = key
                        self.n_keys += 1
                        if self.n_keys > 2 * near:
                            # the worst half becomes far
                            self.n_keys -= near
                            memmove(keys, keys + near, self.n_keys * sizeof(double))
                            worst = keys[0]
                elif key > self.horizon_key:  # else beyond the horizon: not kept
                    self._set(price, qty)
            elif self._delete(price):
                key = sign * price
                if key >= worst:
                    i = _bisect_left(keys, self.n_keys, key)
                    if i < self.n_keys and keys[i] == key:
                        self.n_keys -= 1
                        memmove(keys + i, keys + i + 1, (self.n_keys - i) * sizeof(double))
                    if self.n_keys == 0 and self.count:
                        self._refill()
                    worst = keys[0] if self.n_keys else self.horizon_key
        if self.count > cap + cap // 10:
            self._trim(cap)
        return 0

    cdef int _refill(self) except -1:
        cdef double *ordered = self._sorted_keys()
        cdef Py_ssize_t i, n = min(self.count, self.near)
        for i in range(n):
            self.keys[i] = ordered[n - 1 - i]
        self.n_keys = n
        PyMem_Free(ordered)
        return 0

    cdef int _trim(self, Py_ssize_t cap) except -1:
        cdef double *ordered = self._sorted_keys()
        cdef Py_ssize_t i, n = self.count, cut
        if n > cap and ordered[cap] > self.horizon_key:
            self.horizon_key = ordered[cap]
        for i in range(cap, n):
            self._delete(self.sign * ordered[i])
        PyMem_Free(ordered)
        if self.n_keys and self.keys[0] <= self.horizon_key:
            cut = _bisect_right(self.keys, self.n_keys, self.horizon_key)
            self.n_keys -= cut
            memmove(self.keys, self.keys + cut, self.n_keys * sizeof(double))
        return 0

    cdef inline double best_key(self) noexcept nogil:
        return self.keys[self.n_keys - 1] if self.n_keys else -INFINITY

    cdef list levels(self, Py_ssize_t n):
        """Return the best ``n`` levels ``(price, qty)``, best first."""
        cdef list out = []
        cdef Py_ssize_t i
        cdef double price = 0.0
        cdef double *ordered
        if n <= 0:
            return out
        if n <= self.n_keys or self.n_keys == self.count:
            for i in range(min(n, self.n_keys)):
                price = self.sign * self.keys[self.n_keys - 1 - i]
                out.append((price, self.entries[self._find(price)].qty))
            return out
        ordered = self._sorted_keys()
        try:
            for i in range(min(n, self.count)):
                price = self.sign * ordered[i]
                out.append((price, self.entries[self._find(price)].qty))
        finally:
            PyMem_Free(ordered)
        return out

    cdef double total_from(self, double limit) noexcept nogil:
        """Return the quantity of every level whose key is at least ``limit``, dict order."""
        cdef double total = 0.0, sign = self.sign
        cdef Py_ssize_t i
        for i in range(self.used):
            if self.entries[i].qty != 0.0 and sign * self.entries[i].price >= limit:
                total += self.entries[i].qty
        return total


cdef inline bint _to_price(object key, double *out):
    """Convert a mapping key to a price; False if it is not a number."""
    try:
        out[0] = key
    except (TypeError, ValueError, OverflowError):
        return False
    return True


cdef class Levels:
    """One side's levels as a live read-only mapping ``price → qty`` (dict order)."""

    cdef _Side side

    def __cinit__(self):
        self.side = _Side(1.0, 1)  # never None; a book's view gets the book's side

    def __len__(self):
        return self.side.count

    def __getitem__(self, key):
        cdef double price = 0.0
        cdef Py_ssize_t entry
        if _to_price(key, &price):
            entry = self.side._find(price)
            if entry >= 0:
                return self.side.entries[entry].qty
        raise KeyError(key)

    def __contains__(self, key):
        cdef double price = 0.0
        return _to_price(key, &price) and self.side._find(price) >= 0

    def get(self, key, default=None):
        """Return the quantity at ``key``, ``default`` if there is no such level."""
        cdef double price = 0.0
        cdef Py_ssize_t entry
        if _to_price(key, &price):
            entry = self.side._find(price)
            if entry >= 0:
                return self.side.entries[entry].qty
        return default

    def __iter__(self):
        return iter(self._prices())

    cdef list _prices(self):
        cdef _Side side = self.side
        cdef list out = []
        cdef Py_ssize_t i
        for i in range(side.used):
            if side.entries[i].qty != 0.0:
                out.append(side.entries[i].price)
        return out

    def to_dict(self):
        """Return the levels as a new ``dict``."""
        cdef _Side side = self.side
        cdef dict out = {}
        cdef Py_ssize_t i
        for i in range(side.used):
            if side.entries[i].qty != 0.0:
                out[side.entries[i].price] = side.entries[i].qty
        return out

    def keys(self):
        """Return a live view of the prices."""
        return KeysView(self)

    def items(self):
        """Return a live view of the ``(price, qty)`` pairs."""
        return ItemsView(self)

    def values(self):
        """Return a live view of the quantities."""
        return ValuesView(self)

    def __eq__(self, other):
        if isinstance(other, Levels):
            return self.to_dict() == (<Levels>other).to_dict()
        if isinstance(other, Mapping):
            return self.to_dict() == dict(other.items())
        return NotImplemented

    def __ne__(self, other):
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def __repr__(self):
        return f"Levels({self.to_dict()!r})"


Mapping.register(Levels)


cdef inline object _side_levels(_Side side):
    cdef Levels view = Levels.__new__(Levels)
    view.side = side
    return view


cdef class L2Book:
    """One symbol's aggregated price levels (compiled; see :mod:`tickhawk.book.l2`).

    ``bids`` and ``asks`` map price to quantity: every level strictly better
    than the side's horizon, exact, and no other. ``max_levels`` bounds each
    side; ``near`` is how many top levels are kept in order for O(1) reads.
    """

    cdef public Py_ssize_t max_levels
    cdef _Side _bids
    cdef _Side _asks
    cdef readonly object bids
    cdef readonly object asks

    def __cinit__(self, Py_ssize_t max_levels=5000, *, Py_ssize_t near=256):
        # __cinit__, not __init__: a book is never without its sides
        if max_levels <= 0 or near <= 0:
            raise ValueError("max_levels and near must be positive")
        self.max_levels = max_levels
        self._bids = _Side(1.0, near)
        self._asks = _Side(-1.0, near)
        self.bids = _side_levels(self._bids)
        self.asks = _side_levels(self._asks)

    # -- changes ----------------------------------------------------------------------

    def clear(self):
        """Remove every level."""
        self._bids.clear()
        self._asks.clear()

    def load(self, bids, asks, *, limit=None):
        """Replace the whole book with a snapshot (cut to the best ``max_levels`` per side).

        ``limit`` is the ``limit`` the snapshot was requested with: a side that
        holds that many levels (or more) was cut by the venue, so its horizon
        is set just beyond its worst level (exact itself). None: not cut.
        """
        cdef Py_ssize_t cut = -1 if limit is None else max(<Py_ssize_t>limit, 0)
        self._bids.load(bids, self.max_levels, cut)
        self._asks.load(asks, self.max_levels, cut)

    def apply(self, bids, asks):
        """Apply level changes: ``qty`` is the new total at ``price``; 0 removes the level.

        Return why the book can no longer be trusted, ``"crossed"`` or
        ``"depth_exhausted"`` (see :attr:`crossed`, :attr:`exhausted`), else None.
        """
        if bids:
            self._bids.apply(bids if type(bids) is list else list(bids), self.max_levels)
        if asks:
            self._asks.apply(asks if type(asks) is list else list(asks), self.max_levels)
        if self._crossed():
            return "crossed"
        if self._exhausted():
            return "depth_exhausted"
        return None

    # -- reads ------------------------------------------------------------------------

    @property
    def best_bid(self):
        """Return the highest bid price, NaN if there is none."""
        return self._bids.keys[self._bids.n_keys - 1] if self._bids.n_keys else NAN

    @property
    def best_ask(self):
        """Return the lowest ask price, NaN if there is none."""
        return -self._asks.keys[self._asks.n_keys - 1] if self._asks.n_keys else NAN

    def top(self):
        """Return ``(bid, bid_qty, ask, ask_qty)``; NaN for an empty side."""
        cdef double bid = NAN, bid_qty = NAN, ask = NAN, ask_qty = NAN
        if self._bids.n_keys:
            bid = self._bids.keys[self._bids.n_keys - 1]
            bid_qty = self._bids.entries[self._bids._find(bid)].qty
        if self._asks.n_keys:
            ask = -self._asks.keys[self._asks.n_keys - 1]
            ask_qty = self._asks.entries[self._asks._find(ask)].qty
        return (bid, bid_qty, ask, ask_qty)

    @property
    def nbytes(self):
        """Return the bytes the book's level tables take now (both sides, without the object)."""
        return self._bids.nbytes() + self._asks.nbytes()

    @property
    def bid_horizon(self):
        """Return the bid horizon: bids strictly above it are exact, no others are kept.

        ``-inf``: none. After a cut snapshot it is the float just below the
        snapshot's worst bid; after a trim, the best bid dropped.
        """
        return self._bids.horizon_key

    @property
    def ask_horizon(self):
        """Return the ask horizon: asks strictly below it are exact, no others are kept.

        ``inf``: none. After a cut snapshot it is the float just above the
        snapshot's worst ask; after a trim, the best ask dropped.
        """
        return -self._asks.horizon_key

    cdef inline bint _crossed(self) noexcept:
        return (
            self._bids.n_keys > 0
            and self._asks.n_keys > 0
            and self._bids.keys[self._bids.n_keys - 1] >= -self._asks.keys[self._asks.n_keys - 1]
        )

    cdef inline bint _exhausted(self) noexcept:
        cdef _Side bids = self._bids, asks = self._asks
        return (
            bids.horizon_key > -INFINITY and bids.best_key() <= bids.horizon_key
        ) or (asks.horizon_key > -INFINITY and asks.best_key() <= asks.horizon_key)

    @property
    def crossed(self):
        """Return whether the best bid is at or above the best ask (a broken book)."""
        return self._crossed()

    @property
    def exhausted(self):
        """Return whether a side's best level is unknown (it was emptied to its horizon)."""
        return self._exhausted()

    def __len__(self):
        return self._bids.count + self._asks.count

    def levels(self, Py_ssize_t n):
        """Return the top ``n`` bid and ask levels, best first.

        Only exact levels (strictly better than the horizon): fewer than ``n``
        when that is all the book knows.
        """
        return self._bids.levels(n), self._asks.levels(n)

    def depth_within(self, double bps):
        """Return total bid and ask quantity within ``bps`` basis points of the mid.

        A side whose band reaches its horizon is NaN: the book does not know
        every level in it (a sum of the known ones would read as the depth).
        """
        if not (self._bids.n_keys and self._asks.n_keys):
            return 0.0, 0.0
        cdef double bid = self._bids.keys[self._bids.n_keys - 1]
        cdef double ask = -self._asks.keys[self._asks.n_keys - 1]
        cdef double mid = 0.5 * (bid + ask)
        cdef double low = mid * (1.0 - bps / 10_000.0)
        cdef double high = mid * (1.0 + bps / 10_000.0)
        return (
            self._bids.total_from(low) if low > self._bids.horizon_key else NAN,
            self._asks.total_from(-high) if -high > self._asks.horizon_key else NAN,
        )

    def cumulative(self, Py_ssize_t n):
        """Return cumulative quantity over the top ``n`` levels of each side, best first.

        Over exact levels only, as :meth:`levels`: fewer than ``n`` if need be.
        """
        bids, asks = self.levels(n)
        cdef list out_bids = [], out_asks = []
        cdef double total = 0.0
        for _, qty in bids:
            total += <double>qty
            out_bids.append(total)
        total = 0.0
        for _, qty in asks:
            total += <double>qty
            out_asks.append(total)
        return out_bids, out_asks
