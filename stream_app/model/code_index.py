"""Stock code to item index lookup: a vectorized open-addressing hash table.

Codes of up to eight ASCII characters pack into one uint64 key (characters as
big-endian bytes). Keys are placed in a power-of-two table by a multiplicative
hash (Knuth, TAOCP vol. 3, section 6.4) with linear probing, so a batch of codes
resolves in one compiled pass (pack, hash, probe per code) instead of a binary
search per code, whose branch mispredictions dominate ``np.searchsorted`` at this
size.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

KEY_BYTES = 8
#: Table slots per key: a sparse table makes almost every lookup a one-probe hit.
SLOTS_PER_KEY = 8
_FIBONACCI = np.uint64(0x9E3779B97F4A7C15)
_SHIFTS = np.arange(8 * (KEY_BYTES - 1), -1, -8, dtype=np.uint64)
_EMPTY = np.uint64(0)


def pack_codes(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pack stock codes into uint64 keys.

    Args:
        codes: str (``U``) or bytes (``S``) array of shape (m,); other dtypes are
            converted with ``astype(str)``.

    Returns:
        ``(keys, fits)``: uint64 keys of shape (m,) and a bool mask of the codes
        that are non-empty, pure ASCII and at most eight characters; the keys of
        the others are meaningless.
    """
    if codes.dtype.kind not in "US":
        codes = codes.astype(str)
    char_type = np.uint32 if codes.dtype.kind == "U" else np.uint8
    width = codes.dtype.itemsize // np.dtype(char_type).itemsize
    chars: np.ndarray = codes.view(char_type).reshape(codes.shape[0], width)
    fits = (chars < 128).all(axis=1) & (chars[:, 0] != 0)
    if width > KEY_BYTES:
        fits &= ~chars[:, KEY_BYTES:].any(axis=1)

    # ASCII characters are single bytes: lay them out big-endian, read as uint64.
    head = np.zeros((codes.shape[0], KEY_BYTES), dtype=np.uint8)
    head[:, : min(width, KEY_BYTES)] = chars[:, :KEY_BYTES]
    keys = head.view(">u8").reshape(-1).astype(np.uint64)
    return keys, fits


class KeyIndex:
    """Maps distinct non-zero uint64 keys to their positions, for whole arrays at once.

    Args:
        keys: Distinct keys, uint64 array of shape (n,), none equal to zero.

    Raises:
        ValueError: A key repeats or is zero.
    """

    def __init__(self, keys: np.ndarray) -> None:
        keys = np.asarray(keys, dtype=np.uint64)
        size = 1 << max(4, int(np.ceil(np.log2(max(keys.shape[0], 1) * SLOTS_PER_KEY))))
        self._mask = np.uint64(size - 1)
        self._shift = np.uint64(64 - int(np.log2(size)))
        self._keys = np.zeros(size, dtype=np.uint64)
        self._values = np.full(size, -1, dtype=np.int64)
        if (keys == _EMPTY).any():
            raise ValueError("key 0 marks empty slots and cannot be stored")
        self._insert(keys)

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        """Return int64 positions of shape (m,), ``-1`` for keys not stored."""
        keys = np.ascontiguousarray(keys, dtype=np.uint64)
        return _probe_keys(keys, self._keys, self._values, self._shift, self._mask)

    def lookup_codes(self, codes: np.ndarray) -> np.ndarray:
        """Pack and look up str (``U``) or bytes (``S``) codes in one compiled pass.

        Returns:
            int64 positions of shape (m,), ``-1`` for codes not stored and for
            codes that do not pack (see :func:`pack_codes`).
        """
        char_type = np.uint32 if codes.dtype.kind == "U" else np.uint8
        width = codes.dtype.itemsize // np.dtype(char_type).itemsize
        chars = np.ascontiguousarray(codes).view(char_type).reshape(-1, width)
        return _probe_chars(chars, self._keys, self._values, self._shift, self._mask)

    def _slot(self, keys: np.ndarray) -> np.ndarray:
        return (keys * _FIBONACCI) >> self._shift

    def _insert(self, keys: np.ndarray) -> None:
        # Build-time only, so a plain loop keeps the probing rule obvious.
        for position, slot in enumerate(self._slot(keys).tolist()):
            while self._keys[slot] != _EMPTY:
                if self._keys[slot] == keys[position]:
                    raise ValueError(f"duplicate key at position {position}")
                slot = (slot + 1) & int(self._mask)
            self._keys[slot] = keys[position]
            self._values[slot] = position


class CodeIndex:
    """Maps stock codes to their positions in a fixed array of distinct codes.

    Args:
        codes: The catalogue's codes, shape (n,).
    """

    def __init__(self, codes: np.ndarray) -> None:
        self.codes = np.asarray(codes).astype(str)
        keys, fits = pack_codes(self.codes)
        self.packable = bool(fits.all())
        self._keys = KeyIndex(keys if self.packable else np.zeros(0, np.uint64))
        self._order = np.argsort(self.codes)

    def lookup(self, codes: np.ndarray) -> np.ndarray:
        """Return int64 positions of shape (m,), ``-1`` for unknown codes."""
        codes = np.asarray(codes)
        if codes.shape[0] == 0:
            return np.zeros(0, dtype=np.int64)
        if not self.packable:
            return self._lookup_text(codes.astype(str))
        if codes.dtype.kind not in "US" or codes.dtype.itemsize == 0:
            codes = codes.astype(str)
            if codes.dtype.itemsize == 0:
                return np.full(codes.shape[0], -1, dtype=np.int64)
        return self._keys.lookup_codes(codes)

    def _lookup_text(self, codes: np.ndarray) -> np.ndarray:
        # Fallback for catalogues with long or non-ASCII codes: binary search.
        sorted_codes = self.codes[self._order]
        position = np.minimum(
            np.searchsorted(sorted_codes, codes), len(self._order) - 1
        )
        found = sorted_codes[position] == codes
        return np.where(found, self._order[position], -1).astype(np.int64)


@numba.njit(cache=True, nogil=True)
def _probe_keys(
    keys: np.ndarray, table: np.ndarray, values: np.ndarray, shift: Any, mask: Any
) -> np.ndarray:
    result = np.empty(keys.shape[0], dtype=np.int64)
    for k in range(keys.shape[0]):
        result[k] = _probe_one(keys[k], table, values, shift, mask)
    return result


@numba.njit(cache=True, nogil=True)
def _probe_chars(
    chars: np.ndarray, table: np.ndarray, values: np.ndarray, shift: Any, mask: Any
) -> np.ndarray:
    """Pack each row of character codes as :func:`pack_codes` does, then probe."""
    result = np.full(chars.shape[0], -1, dtype=np.int64)
    width = chars.shape[1]
    for k in range(chars.shape[0]):
        fits = width > 0 and chars[k, 0] != 0
        key = np.uint64(0)
        for c in range(KEY_BYTES):
            char = np.uint64(chars[k, c]) if c < width else np.uint64(0)
            fits = fits and char < 128
            key = (key << np.uint64(8)) | char
        for c in range(KEY_BYTES, width):
            fits = fits and chars[k, c] == 0
        if fits:
            result[k] = _probe_one(key, table, values, shift, mask)
    return result


@numba.njit(cache=True, nogil=True, inline="always")
def _probe_one(
    key: Any, table: np.ndarray, values: np.ndarray, shift: Any, mask: Any
) -> int:
    # Linear probing: walk from the hashed slot to the key (hit) or a hole (miss).
    slot = (key * _FIBONACCI) >> shift
    while True:
        stored = table[slot]
        if stored == key:
            return values[slot]
        if stored == _EMPTY:
            return -1
        slot = (slot + np.uint64(1)) & mask
