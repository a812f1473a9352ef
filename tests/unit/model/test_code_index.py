"""Stock code lookups: hash path, text fallback and edge cases."""

from __future__ import annotations

import numpy as np

from stream_app.model.code_index import CodeIndex, KeyIndex, pack_codes


def test_lookup_finds_known_codes_and_flags_unknown() -> None:
    index = CodeIndex(np.array(["10002", "22423", "85123A"]))
    got = index.lookup(np.array(["85123A", "X", "10002", "85123AB", "", "22423"]))
    assert got.tolist() == [2, -1, 0, -1, -1, 1]


def test_lookup_accepts_bytes_and_objects() -> None:
    index = CodeIndex(np.array(["10002", "22423"]))
    assert index.lookup(np.array([b"22423", b"1000"])).tolist() == [1, -1]
    assert index.lookup(np.array(["22423", "10002"], dtype=object)).tolist() == [1, 0]


def test_non_ascii_and_long_codes_are_unknown_not_errors() -> None:
    index = CodeIndex(np.array(["10002", "22423"]))
    assert index.lookup(np.array(["£1", "10002000000", "22423"])).tolist() == [
        -1,
        -1,
        1,
    ]


def test_catalogue_with_long_codes_uses_text_fallback() -> None:
    index = CodeIndex(np.array(["DCGSSGIRL", "10002"]))
    assert not index.packable
    assert index.lookup(np.array(["10002", "DCGSSGIRL", "DCGS"])).tolist() == [1, 0, -1]


def test_packed_keys_keep_text_order() -> None:
    codes = np.array(["10002", "10002A", "2", "85123A", "A"])
    keys, fits = pack_codes(codes)
    assert fits.all()
    assert np.argsort(keys).tolist() == np.argsort(codes).tolist()


def test_key_index_survives_collisions() -> None:
    keys = np.arange(1, 5000, dtype=np.uint64) * np.uint64(1 << 20)
    index = KeyIndex(keys)
    probe = np.concatenate([keys[::-1], keys + np.uint64(1)])
    expected = np.concatenate([np.arange(keys.size)[::-1], np.full(keys.size, -1)])
    assert (index.lookup(probe) == expected).all()


def test_compiled_lookup_matches_packing_then_probing() -> None:
    rng = np.random.default_rng(3)
    alphabet = np.array(list("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ£é"))
    codes = np.array(
        ["".join(rng.choice(alphabet, size=rng.integers(0, 11))) for _ in range(3000)]
    )
    _, fits = pack_codes(codes)
    catalogue = np.unique(codes[fits][::2])  # half the packable codes are known
    index = CodeIndex(catalogue)
    position = {code: k for k, code in enumerate(catalogue.tolist())}

    got = index.lookup(codes)

    assert got.tolist() == [position.get(code, -1) for code in codes.tolist()]
    assert (got >= 0).sum() > 1000 and (got < 0).sum() > 100
