"""Keys seen earlier in a customers or products file, kept compactly to catch repeats across chunks.

Each distinct key is kept as a 128-bit fingerprint (two independent 64-bit hashes) and the data
row of its first occurrence: 24 bytes a key in sorted numpy arrays, instead of about 150 bytes
for a Python dict of strings. Two different keys collide only if both 64-bit hashes agree
(probability about n² / 2¹²⁹, below 10⁻²⁴ for ten million keys).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# pandas' hash_array takes a 16-character key; two keys give two independent hashes.
_HASH_KEYS = ("finrec-import-k1", "finrec-import-k2")


def _fingerprints(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    first, second = (
        pd.util.hash_array(keys, hash_key=key, categorize=False).astype(np.uint64)
        for key in _HASH_KEYS
    )
    return first, second


class SeenKeys:
    """Data row of the first occurrence of every key added so far."""

    def __init__(self) -> None:
        self._high = np.zeros(0, dtype=np.uint64)  # sorted; ties broken by nothing in particular
        self._low = np.zeros(0, dtype=np.uint64)
        self._rows = np.zeros(0, dtype=np.int64)

    def __len__(self) -> int:
        return len(self._high)

    def first_rows(self, keys: np.ndarray) -> np.ndarray:
        """For each key (an object array of strings), the row it was first added at, or 0."""
        found = np.zeros(len(keys), dtype=np.int64)
        if not len(keys) or not len(self._high):
            return found
        high, low = _fingerprints(keys)
        left = np.searchsorted(self._high, high, side="left")
        right = np.searchsorted(self._high, high, side="right")
        single = right - left == 1
        at = np.minimum(left, len(self._high) - 1)
        hit = single & (self._low[at] == low)
        found[hit] = self._rows[at[hit]]
        # Several stored keys share the first hash (vanishingly rare): compare them one by one.
        for pos in np.flatnonzero(right - left > 1):
            span = slice(left[pos], right[pos])
            match = np.flatnonzero(self._low[span] == low[pos])
            if len(match):
                found[pos] = self._rows[span][match[0]]
        return found

    def add(self, keys: np.ndarray, rows: np.ndarray) -> None:
        """Remember ``keys`` (distinct strings, none already added) first seen at ``rows``."""
        if not len(keys):
            return
        high, low = _fingerprints(keys)
        order = np.argsort(high, kind="stable")
        high, low, rows = high[order], low[order], rows[order].astype(np.int64)
        at = np.searchsorted(self._high, high)
        self._high = np.insert(self._high, at, high)
        self._low = np.insert(self._low, at, low)
        self._rows = np.insert(self._rows, at, rows)
