"""The compiled scoring core: one pass per basket from encoded inputs to top-N.

:mod:`stream_app.model.features` defines every factor as whole-array numpy steps,
which the fit uses. Serving one basket that way costs a few hundred numpy calls,
each a microsecond or more of dispatch, so this module computes the same weighted
sum row by row with numba: the factor values of a basket's sparse entries are
added straight into its score row, then the row's top N are picked in one scan.
Tests hold both paths to the same logits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import chain
from typing import NamedTuple

import numba
import numpy as np

from stream_app.model.artifact import ModelTables
from stream_app.model.features import MAX_DISCOUNT, unknown_per_query
from stream_app.model.types import FACTORS, BasketQuery

SECONDS_PER_DAY = 86_400.0
#: Rows below which a batch is scored on the calling thread: starting the
#: parallel workers costs more than a few rows take. How many threads larger
#: batches use is set by :func:`set_threads`.
PARALLEL_MIN_ROWS = 8

#: The kernel's own order of the weights. Literal, not read from
#: ``types.FACTORS``: numba's cache freezes these indices and is invalidated
#: only when this file changes; :func:`kernel_model` maps the weights by name.
KERNEL_FACTORS = (
    "popularity",
    "history",
    "rules",
    "price",
    "discount",
    "recency",
    "similarity",
    "history_rules",
    "order_recency",
    "order_share",
)
W_POPULARITY, W_HISTORY, W_RULES, W_PRICE, W_DISCOUNT = 0, 1, 2, 3, 4
W_RECENCY, W_SIMILARITY, W_HISTORY_RULES, W_ORDER_RECENCY, W_ORDER_SHARE = 5, 6, 7, 8, 9
#: Threads a batch of at least PARALLEL_MIN_ROWS rows may use; see set_threads.
_threads = [numba.config.NUMBA_NUM_THREADS]  # type: ignore[attr-defined]


class KernelModel(NamedTuple):
    """The model's arrays in the flat form the kernel reads (built once per model).

    ``base`` holds the item-only terms per padded item, ``-inf`` on padding;
    ``price_sq`` is the item half of the price term, added back for rows without
    a budget. Rule and neighbour tables are CSR triples; ``pair_keys`` is sorted.
    """

    base: np.ndarray
    log_price: np.ndarray
    price_sq: np.ndarray
    weights: np.ndarray
    single_indptr: np.ndarray
    single_item: np.ndarray
    single_boost: np.ndarray
    pair_keys: np.ndarray
    pair_indptr: np.ndarray
    pair_item: np.ndarray
    pair_boost: np.ndarray
    neighbour_indptr: np.ndarray
    neighbour_item: np.ndarray
    neighbour_cosine: np.ndarray
    n_items: int
    max_pair_items: int
    max_basket_items: int
    max_history_items: int
    order_decay: float
    short_half_life_days: float
    long_half_life_days: float
    frequency_scale: float


class KernelBatch(NamedTuple):
    """Queries as CSR segments of item indices (``-1`` for unknown codes).

    Row ``b`` owns ``basket_item[basket_ptr[b]:basket_ptr[b+1]]`` (in basket
    order), the history entries ``history_*[history_ptr[b]:history_ptr[b+1]]``
    and the discount entries ``discount_*[discount_ptr[b]:discount_ptr[b+1]]``
    (value = requested fraction minus the item's default markdown).
    ``asked_log_budget`` is NaN where the query named no budget.
    """

    basket_ptr: np.ndarray
    basket_item: np.ndarray
    history_ptr: np.ndarray
    history_item: np.ndarray
    history_orders: np.ndarray
    history_quantity: np.ndarray
    history_last: np.ndarray
    now: np.ndarray
    asked_log_budget: np.ndarray
    discount_ptr: np.ndarray
    discount_item: np.ndarray
    discount_value: np.ndarray


def kernel_model(tables: ModelTables, weights: np.ndarray) -> KernelModel:
    """Collect a model's arrays for the kernel, with the dtypes it is compiled for.

    Args:
        tables: The trained model.
        weights: Factor weights, float32 (n_factors,), in FACTORS order.

    Raises:
        ValueError: The model has a factor the kernel does not compute.
    """
    missing = set(FACTORS) - set(KERNEL_FACTORS)
    if missing:
        raise ValueError(f"the scoring kernel lacks factors {sorted(missing)}")
    weights = np.array(
        [weights[FACTORS.index(name)] for name in KERNEL_FACTORS], dtype=np.float32
    )
    # Item-only terms fold into one padded base row: w_pop*pop + w_disc*markdown
    # - w_price*log(p)^2. The price factor -w (log p - log b)^2 expands to that
    # item part, a cross term 2 w log b log p added per row, and -w log b^2, a
    # constant per row that cancels in the softmax. Padding sits at -inf.
    width, n = tables.row_width, len(tables.catalogue)
    log_price = np.zeros(width, dtype=np.float32)
    log_price[:n] = tables.log_price
    price_sq = (weights[W_PRICE] * log_price**2).astype(np.float32)
    base = np.full(width, -np.inf, dtype=np.float32)
    base[:n] = (
        weights[W_POPULARITY] * tables.popularity
        + weights[W_DISCOUNT] * tables.markdown
    )
    base -= price_sq

    p = tables.params
    return KernelModel(
        base=base,
        log_price=log_price,
        price_sq=price_sq,
        weights=np.ascontiguousarray(weights, dtype=np.float32),
        single_indptr=tables.single_rules.indptr.astype(np.int64),
        single_item=tables.single_rules.indices.astype(np.int64),
        single_boost=tables.single_rules.values.astype(np.float32),
        pair_keys=tables.pair_keys.astype(np.int64),
        pair_indptr=tables.pair_rules.indptr.astype(np.int64),
        pair_item=tables.pair_rules.indices.astype(np.int64),
        pair_boost=tables.pair_rules.values.astype(np.float32),
        neighbour_indptr=tables.neighbours.indptr.astype(np.int64),
        neighbour_item=tables.neighbours.indices.astype(np.int64),
        neighbour_cosine=tables.neighbours.values.astype(np.float32),
        n_items=len(tables.catalogue),
        max_pair_items=int(p.max_pair_items),
        max_basket_items=int(p.max_basket_items),
        max_history_items=int(p.max_history_items),
        order_decay=float(p.order_decay),
        short_half_life_days=float(p.short_half_life_days),
        long_half_life_days=float(p.long_half_life_days),
        frequency_scale=float(p.frequency_scale),
    )


def pack_queries(
    tables: ModelTables, queries: Sequence[BasketQuery]
) -> tuple[KernelBatch, list[tuple[str, ...]]]:
    """Look up every code of a batch of queries; the unknown basket codes per query.

    Args:
        tables: The model whose catalogue indexes the codes.
        queries: The queries, B of them.

    Returns:
        The :class:`KernelBatch` and, per query, the basket codes not in the
        catalogue (ignored by the scorer).
    """
    n_queries = len(queries)
    catalogue = tables.catalogue
    if n_queries == 0:
        raise ValueError("pack_queries needs at least one query")

    sizes = np.fromiter((len(q.basket_codes) for q in queries), np.int64, n_queries)
    if n_queries == 1:
        codes = np.asarray(queries[0].basket_codes, dtype=str)
    elif isinstance(queries[0].basket_codes, np.ndarray):
        # The worker's baskets come as arrays: join them, never iterate them.
        codes = np.concatenate([np.asarray(q.basket_codes, dtype=str) for q in queries])
    else:
        codes = np.array(
            list(chain.from_iterable(q.basket_codes for q in queries)), dtype=str
        )
    basket_item = catalogue.index_of(codes)
    unknown = unknown_per_query(codes, basket_item, sizes)

    histories = [q.history for q in queries if q.history is not None]
    history_sizes = np.fromiter(
        (0 if q.history is None else len(q.history) for q in queries),
        np.int64,
        n_queries,
    )
    if len(histories) == 1:
        only = histories[0]
        history_codes, orders = only.codes, only.orders
        quantity, last = only.quantity, only.last_purchase
    elif histories:
        history_codes = np.concatenate([h.codes for h in histories])
        orders = np.concatenate([h.orders for h in histories])
        quantity = np.concatenate([h.quantity for h in histories])
        last = np.concatenate([h.last_purchase for h in histories])
    else:
        history_codes = np.zeros(0, dtype=str)
        orders = quantity = last = np.zeros(0, dtype=np.float64)

    asked = np.fromiter(
        (np.nan if q.budget is None or q.budget <= 0 else q.budget for q in queries),
        np.float64,
        n_queries,
    )
    discount_ptr, discount_item, discount_value = _pack_discounts(tables, queries)
    batch = KernelBatch(
        basket_ptr=_offsets(sizes),
        basket_item=basket_item,
        history_ptr=_offsets(history_sizes),
        history_item=catalogue.index_of(history_codes),
        history_orders=np.ascontiguousarray(orders, dtype=np.float64),
        history_quantity=np.ascontiguousarray(quantity, dtype=np.float64),
        history_last=np.ascontiguousarray(last, dtype=np.float64),
        now=np.fromiter((q.now for q in queries), np.float64, n_queries),
        asked_log_budget=np.log(asked),
        discount_ptr=discount_ptr,
        discount_item=discount_item,
        discount_value=discount_value,
    )
    return batch, unknown


def _offsets(sizes: np.ndarray) -> np.ndarray:
    offsets = np.zeros(sizes.shape[0] + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    return offsets


def _pack_discounts(
    tables: ModelTables, queries: Sequence[BasketQuery]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Requested discounts of known items, as the change from their markdown."""
    if not any(q.discounts for q in queries):
        nothing = np.zeros(len(queries), dtype=np.int64)
        return _offsets(nothing), np.zeros(0, np.int64), np.zeros(0, np.float32)
    rows = np.repeat(np.arange(len(queries)), [len(q.discounts) for q in queries])
    codes = list(chain.from_iterable(q.discounts for q in queries))
    percent = list(chain.from_iterable(q.discounts.values() for q in queries))
    item = tables.catalogue.index_of(np.array(codes, dtype=str))

    known = item >= 0
    item = item[known]
    fraction = np.clip(
        np.asarray(percent, dtype=np.float64)[known] / 100.0, 0.0, MAX_DISCOUNT
    )
    value = (fraction - tables.markdown[item]).astype(np.float32)
    sizes = np.bincount(rows[known], minlength=len(queries))
    return _offsets(sizes), item, value


def set_threads(threads: int) -> int:
    """Let every later batch of this process use up to ``threads`` cores.

    The default is every core numba found (training, evaluation, benchmarks);
    the worker sets its ``scoring_threads``. Returns the number granted.
    """
    cores: int = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]
    _threads[0] = max(1, min(threads, cores))
    return _threads[0]


def score_rows(
    model: KernelModel,
    batch: KernelBatch,
    logits: np.ndarray,
    top: np.ndarray,
    best: np.ndarray,
    mask_history: bool,
) -> None:
    """Fill each row's logits and its top items, in place.

    Args:
        model: From :func:`kernel_model`.
        batch: The encoded queries, B rows.
        logits: float32 (B, row_width), overwritten with the weighted factor sums;
            excluded items at ``-inf``.
        top: int64 (B, N), overwritten with the best items in rank order (ties to
            the lower index), ``-1`` where a row has fewer than N candidates.
        best: float32 (B, N), overwritten with their logits (``-inf`` if none).
        mask_history: Exclude the customer's past items too.
    """
    threads = _threads[0]
    if logits.shape[0] >= PARALLEL_MIN_ROWS and threads > 1:
        # numba's thread count is per calling thread: set it on this one.
        numba.set_num_threads(threads)
        _score_parallel(model, batch, logits, top, best, mask_history)
    else:
        _score_serial(model, batch, logits, top, best, mask_history)


@numba.njit(cache=True, nogil=True)
def _score_serial(
    model: KernelModel,
    batch: KernelBatch,
    logits: np.ndarray,
    top: np.ndarray,
    best: np.ndarray,
    mask_history: bool,
) -> None:
    for b in range(logits.shape[0]):
        _score_row(model, batch, b, logits[b], top[b], best[b], mask_history)


@numba.njit(cache=True, nogil=True, parallel=True)
def _score_parallel(
    model: KernelModel,
    batch: KernelBatch,
    logits: np.ndarray,
    top: np.ndarray,
    best: np.ndarray,
    mask_history: bool,
) -> None:
    for b in numba.prange(logits.shape[0]):
        _score_row(model, batch, b, logits[b], top[b], best[b], mask_history)


@numba.njit(cache=True, nogil=True)
def _score_row(
    model: KernelModel,
    batch: KernelBatch,
    b: int,
    row: np.ndarray,
    top: np.ndarray,
    best: np.ndarray,
    mask_history: bool,
) -> None:
    w = model.weights
    basket = _distinct_known(
        batch.basket_item[batch.basket_ptr[b] : batch.basket_ptr[b + 1]], model.n_items
    )
    # Rules and similarity read the newest items only (see features._newest).
    recent = basket[max(basket.shape[0] - model.max_basket_items, 0) :]

    h0, h1 = batch.history_ptr[b], batch.history_ptr[b + 1]
    history_item = batch.history_item[h0:h1]
    values, log_typical = _history_values(model, batch, b)

    # Dense part: item terms plus the budget's cross term of the price factor.
    log_budget = _log_budget(model, batch.asked_log_budget[b], basket, log_typical)
    if math.isfinite(log_budget):
        scale = np.float32(np.float32(2.0) * w[W_PRICE] * np.float32(log_budget))
        for j in range(row.shape[0]):
            row[j] = scale * model.log_price[j] + model.base[j]
    else:
        for j in range(row.shape[0]):
            row[j] = model.base[j] + model.price_sq[j]

    # Sparse parts, in the order features.EncodedBatch lists them.
    for e in range(history_item.shape[0]):
        item = history_item[e]
        if item >= 0:
            row[item] += (
                w[W_HISTORY] * values[e, 0]
                + w[W_RECENCY] * values[e, 1]
                + w[W_ORDER_RECENCY] * values[e, 2]
                + w[W_ORDER_SHARE] * values[e, 3]
            )
    _add_rules(model, recent, row)
    _add_similarity(model, recent, row)
    for e in range(batch.discount_ptr[b], batch.discount_ptr[b + 1]):
        row[batch.discount_item[e]] += w[W_DISCOUNT] * batch.discount_value[e]
    _add_history_rules(model, history_item, values[:, 1], row)

    for k in range(basket.shape[0]):
        row[basket[k]] = -np.inf
    if mask_history:
        for e in range(history_item.shape[0]):
            if history_item[e] >= 0:
                row[history_item[e]] = -np.inf
    _top_items(row, top, best)


@numba.njit(cache=True, nogil=True)
def _distinct_known(items: np.ndarray, n_items: int) -> np.ndarray:
    """Known items of a basket, first occurrence kept, in basket order."""
    seen = np.zeros(n_items, dtype=np.bool_)
    out = np.empty(items.shape[0], dtype=np.int64)
    count = 0
    for k in range(items.shape[0]):
        item = items[k]
        if item >= 0 and not seen[item]:
            seen[item] = True
            out[count] = item
            count += 1
    return out[:count]


@numba.njit(cache=True, nogil=True)
def _history_values(
    model: KernelModel, batch: KernelBatch, b: int
) -> tuple[np.ndarray, float]:
    """HISTORY_FACTORS values per history entry (float32) and the typical log price.

    Mirrors features._encode_history; unknown items count for the order sequence
    (orders_since) but get no values.
    """
    h0, h1 = batch.history_ptr[b], batch.history_ptr[b + 1]
    n = h1 - h0
    values = np.zeros((n, 4), dtype=np.float32)
    if n == 0:
        return values, np.nan

    # Distinct purchase times, ascending: an entry's orders_since is how many
    # of them come after its own last purchase.
    times = np.unique(batch.history_last[h0:h1])
    n_orders = times.shape[0]
    now = batch.now[b]
    span = model.long_half_life_days - model.short_half_life_days
    weight = 0.0
    total = 0.0
    for e in range(n):
        item = batch.history_item[h0 + e]
        if item < 0:
            continue
        orders = batch.history_orders[h0 + e]
        last = batch.history_last[h0 + e]
        since = n_orders - 1 - np.searchsorted(times, last)
        frequency = orders / (orders + model.frequency_scale)
        half_life = model.long_half_life_days - span * frequency
        age_days = max(now - last, 0.0) / SECONDS_PER_DAY
        values[e, 0] = math.log1p(orders)
        values[e, 1] = math.pow(2.0, -age_days / half_life)
        values[e, 2] = math.pow(model.order_decay, since)
        values[e, 3] = min(orders / n_orders, 1.0)
        quantity = batch.history_quantity[h0 + e]
        weight += quantity
        total += quantity * model.log_price[item]
    log_typical = total / weight if weight > 0 else np.nan
    return values, log_typical


@numba.njit(cache=True, nogil=True)
def _log_budget(
    model: KernelModel, asked: float, basket: np.ndarray, log_typical: float
) -> np.float32:
    """The query's budget, else the basket's mean log price, else the typical."""
    if math.isfinite(asked):
        return np.float32(asked)
    if basket.shape[0] > 0:
        total = 0.0
        for k in range(basket.shape[0]):
            total += model.log_price[basket[k]]
        return np.float32(total / basket.shape[0])
    return np.float32(log_typical)


@numba.njit(cache=True, nogil=True)
def _add_rules(model: KernelModel, recent: np.ndarray, row: np.ndarray) -> None:
    """One-item rules of the newest items, then two-item rules of their pairs."""
    size = recent.shape[0]
    if size == 0:
        return
    w = model.weights[W_RULES]
    for k in range(size):
        a = recent[k]
        for e in range(model.single_indptr[a], model.single_indptr[a + 1]):
            share = model.single_boost[e] / np.float32(size)
            row[model.single_item[e]] += w * share

    paired = recent[max(size - model.max_pair_items, 0) :]
    m = paired.shape[0]
    n_pairs = m * (m - 1) // 2
    if n_pairs == 0 or model.pair_keys.shape[0] == 0:
        return
    for i in range(m):
        for j in range(i + 1, m):
            low, high = min(paired[i], paired[j]), max(paired[i], paired[j])
            key = low * model.n_items + high
            position = np.searchsorted(model.pair_keys, key)
            if position == model.pair_keys.shape[0] or model.pair_keys[position] != key:
                continue
            for e in range(
                model.pair_indptr[position], model.pair_indptr[position + 1]
            ):
                share = model.pair_boost[e] / np.float32(n_pairs)
                row[model.pair_item[e]] += w * share


@numba.njit(cache=True, nogil=True)
def _add_similarity(model: KernelModel, recent: np.ndarray, row: np.ndarray) -> None:
    size = recent.shape[0]
    w = model.weights[W_SIMILARITY]
    for k in range(size):
        a = recent[k]
        for e in range(model.neighbour_indptr[a], model.neighbour_indptr[a + 1]):
            share = model.neighbour_cosine[e] / np.float32(size)
            row[model.neighbour_item[e]] += w * share


@numba.njit(cache=True, nogil=True)
def _add_history_rules(
    model: KernelModel, history_item: np.ndarray, recency: np.ndarray, row: np.ndarray
) -> None:
    """One-item rules of the most recent history items, recency-weighted."""
    known = np.flatnonzero(history_item >= 0)
    if known.shape[0] == 0:
        return
    # Stable sort: equal recencies keep history order, as features' lexsort does.
    order = known[np.argsort(-recency[known], kind="mergesort")]
    chosen = order[: model.max_history_items]
    total = 0.0
    for k in range(chosen.shape[0]):
        total += recency[chosen[k]]
    if total <= 0.0:
        return
    w = model.weights[W_HISTORY_RULES]
    for k in range(chosen.shape[0]):
        e = chosen[k]
        share = recency[e] / total
        a = history_item[e]
        for r in range(model.single_indptr[a], model.single_indptr[a + 1]):
            value = np.float32(model.single_boost[r] * share)
            row[model.single_item[r]] += w * value


@numba.njit(cache=True, nogil=True)
def _top_items(row: np.ndarray, top: np.ndarray, best: np.ndarray) -> None:
    """Best finite entries of ``row`` by value, ties to the lower index."""
    n = top.shape[0]
    if n == 0:
        return
    count = 0
    for j in range(row.shape[0]):
        value = row[j]
        if not math.isfinite(value):
            continue
        if count == n and value <= best[n - 1]:
            continue
        # Insert after every kept entry of equal or higher value.
        k = min(count, n - 1)
        while k > 0 and best[k - 1] < value:
            best[k] = best[k - 1]
            top[k] = top[k - 1]
            k -= 1
        best[k] = value
        top[k] = j
        count = min(count + 1, n)
    for k in range(count, n):
        top[k] = -1
        best[k] = -np.inf
