"""Encode basket queries into flat arrays, and compute each factor from them.

Factors (weights are fitted, see :mod:`stream_app.model.fitting`):

- popularity: log share of orders containing the item, each order weighted
  2^(-age / 7 days) at the end of training (what sells now);
- history: log(1 + orders of the item by this customer);
- rules: sum of confidence * log(1 + lift) over rules fired by the basket;
- price: -(log price - log budget)^2, budget from the query, else the basket's,
  else the customer's typical price;
- discount: discount as a fraction (request, else the item's current markdown);
- recency: 2^(-age / half_life), half-life between a long and a short one, shorter
  for items the customer buys often;
- similarity: mean TF-IDF cosine of the item to the basket's items;
- history_rules: one-item rules fired by the customer's most recent purchases,
  averaged with their recency as weights (what this customer's past baskets
  usually lead to);
- order_recency: decay^k, where k is how many of the customer's orders came
  after the last one that held the item (1 for items of the latest order): the
  basket-sequence recency that TIFU-KNN (Hu et al., SIGIR 2020,
  https://arxiv.org/abs/2006.00556) found to dominate repeat purchases;
- order_share: share of the customer's orders that held the item (an item in
  every one of 3 orders says more than one in 3 of 50).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import chain

import numpy as np

from stream_app.model.artifact import ModelTables
from stream_app.model.types import FACTORS, BasketQuery

SECONDS_PER_DAY = 86_400.0
#: Largest discount taken from a request, as a fraction: guards against '100 %'.
MAX_DISCOUNT = 0.95

_FACTOR = {name: k for k, name in enumerate(FACTORS)}
#: Factors with one value per (customer, history item), in EncodedBatch columns.
HISTORY_FACTORS = ("history", "recency", "order_recency", "order_share")


@dataclass(frozen=True)
class EncodedBatch:
    """A batch of queries as flat numpy arrays, ready for vectorized scoring.

    Row ``b`` is the ``b``-th query. ``*_row`` arrays say which row an entry
    belongs to; ``*_flat`` arrays index the flattened (B, row_width) score matrix.
    """

    n_queries: int
    n_items: int
    row_width: int
    basket_row: np.ndarray
    basket_item: np.ndarray
    history_row: np.ndarray
    history_item: np.ndarray
    history_values: np.ndarray
    rule_flat: np.ndarray
    rule_value: np.ndarray
    similarity_flat: np.ndarray
    similarity_value: np.ndarray
    history_rule_flat: np.ndarray
    history_rule_value: np.ndarray
    discount_flat: np.ndarray
    discount_value: np.ndarray
    log_budget: np.ndarray


def encode_queries(tables: ModelTables, queries: Sequence[BasketQuery]) -> EncodedBatch:
    """Turn queries into an :class:`EncodedBatch` without per-item Python loops.

    Unknown stock codes are dropped from the basket (the scorer reports them).
    """
    catalogue = tables.catalogue
    n_queries = len(queries)

    # Basket: one lookup for every code of every query.
    sizes = np.fromiter((len(q.basket_codes) for q in queries), np.int64, n_queries)
    codes = np.array(
        list(chain.from_iterable(q.basket_codes for q in queries)), dtype=str
    )
    item = catalogue.index_of(codes)
    row = np.repeat(np.arange(n_queries), sizes)
    basket_row, basket_item = _distinct_in_order(row[item >= 0], item[item >= 0])
    # Rules and similarity read the newest items only: a wholesale basket of a
    # thousand lines would otherwise re-fire every rule of every line per event.
    recent_row, recent_item = _newest(
        basket_row, basket_item, tables.params.max_basket_items
    )

    history_row, history_item, history_values, log_typical = _encode_history(
        tables, queries
    )
    rule_flat, rule_value = _fire_rules(tables, recent_row, recent_item)
    history_rule_flat, history_rule_value = _history_rules(
        tables,
        history_row,
        history_item,
        history_values[:, HISTORY_FACTORS.index("recency")],
        n_queries,
    )
    similarity_flat, similarity_value = _basket_similarity(
        tables, recent_row, recent_item, n_queries
    )
    discount_flat, discount_value = _encode_discounts(tables, queries)
    log_budget = _log_budgets(tables, queries, basket_row, basket_item, log_typical)
    return EncodedBatch(
        n_queries=n_queries,
        n_items=len(catalogue),
        row_width=tables.row_width,
        basket_row=basket_row,
        basket_item=basket_item,
        history_row=history_row,
        history_item=history_item,
        history_values=history_values,
        rule_flat=rule_flat,
        rule_value=rule_value,
        similarity_flat=similarity_flat,
        similarity_value=similarity_value,
        history_rule_flat=history_rule_flat,
        history_rule_value=history_rule_value,
        discount_flat=discount_flat,
        discount_value=discount_value,
        log_budget=log_budget,
    )


def dense_factors(tables: ModelTables, batch: EncodedBatch) -> Iterator[np.ndarray]:
    """Yield each factor's unweighted values, float32 (B, n_items), in FACTORS order."""
    shape = (batch.n_queries, batch.n_items)
    padded = (batch.n_queries, batch.row_width)
    history_flat = batch.history_row * batch.row_width + batch.history_item
    scattered_factors = {
        "rules": (batch.rule_flat, batch.rule_value),
        "similarity": (batch.similarity_flat, batch.similarity_value),
        "history_rules": (batch.history_rule_flat, batch.history_rule_value),
    }
    for column, name in enumerate(HISTORY_FACTORS):
        scattered_factors[name] = (history_flat, batch.history_values[:, column])

    for name in FACTORS:
        if name in scattered_factors:
            flat, value = scattered_factors[name]
            dense = np.bincount(flat, weights=value, minlength=padded[0] * padded[1])
            yield dense.astype(np.float32).reshape(padded)[:, : shape[1]]
        elif name == "popularity":
            yield np.broadcast_to(tables.popularity, shape).astype(np.float32)
        elif name == "price":
            price = np.zeros(shape, dtype=np.float32)
            rows = np.flatnonzero(np.isfinite(batch.log_budget))
            gap = tables.log_price[None, :] - batch.log_budget[rows, None]
            price[rows] = -np.square(gap)
            yield price
        elif name == "discount":
            discount = np.zeros(padded, dtype=np.float32)
            discount[:, : shape[1]] = tables.markdown
            np.add.at(discount.reshape(-1), batch.discount_flat, batch.discount_value)
            yield discount[:, : shape[1]]
        else:  # pragma: no cover - a factor added to FACTORS but not here
            raise NotImplementedError(f"no dense form for factor {name!r}")


def factors_at(
    tables: ModelTables, batch: EncodedBatch, rows: np.ndarray, items: np.ndarray
) -> np.ndarray:
    """Unweighted factor values at chosen (row, item) cells only.

    Equals ``dense_factors`` at those cells, at a cost that grows with the sparse
    entries rather than with B x n_items, so explanations stay cheap per event.

    Args:
        tables: The model.
        batch: The encoded queries.
        rows: Row of each cell, int array of shape (m,).
        items: Item of each cell, int array of shape (m,).

    Returns:
        float32 array of shape (m, n_factors), columns in FACTORS order.
    """
    values = np.zeros((rows.shape[0], len(FACTORS)), dtype=np.float64)

    # A dense cell -> position map: one gather per sparse entry finds its cell,
    # cheaper than a search when entries outnumber the cells a hundredfold.
    position_of = np.full(batch.n_queries * batch.row_width, -1, dtype=np.int64)
    position_of[rows.astype(np.int64) * batch.row_width + items] = np.arange(
        rows.shape[0]
    )

    def accumulate(factor: str, flat: np.ndarray, value: np.ndarray) -> None:
        position = position_of[flat]
        hit = position >= 0
        np.add.at(values[:, _FACTOR[factor]], position[hit], value[hit])

    history_flat = batch.history_row * batch.row_width + batch.history_item
    for column, name in enumerate(HISTORY_FACTORS):
        accumulate(name, history_flat, batch.history_values[:, column])
    accumulate("rules", batch.rule_flat, batch.rule_value)
    accumulate("similarity", batch.similarity_flat, batch.similarity_value)
    accumulate("history_rules", batch.history_rule_flat, batch.history_rule_value)

    values[:, _FACTOR["popularity"]] = tables.popularity[items]
    values[:, _FACTOR["discount"]] = tables.markdown[items]
    accumulate("discount", batch.discount_flat, batch.discount_value)
    budget = batch.log_budget[rows]
    gap = tables.log_price[items] - budget
    values[:, _FACTOR["price"]] = np.where(np.isfinite(budget), -np.square(gap), 0.0)
    return values.astype(np.float32)


def unknown_per_query(
    codes: np.ndarray, item: np.ndarray, sizes: np.ndarray
) -> list[tuple[str, ...]]:
    """The codes whose lookup failed (``item < 0``), grouped by query, in order."""
    unknown: list[tuple[str, ...]] = [()] * sizes.shape[0]
    missing = np.flatnonzero(item < 0)
    if missing.size == 0:
        return unknown
    # A loop over the misses only: they are rare, the queries are not.
    rows = np.repeat(np.arange(sizes.shape[0]), sizes)[missing]
    for row, code in zip(rows.tolist(), codes[missing].tolist(), strict=True):
        unknown[row] += (str(code),)
    return unknown


def _distinct_in_order(
    row: np.ndarray, item: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Drop repeated (row, item) pairs, keeping the first, rows in ascending order."""
    key = row * (int(item.max(initial=0)) + 1) + item
    _, first = np.unique(key, return_index=True)
    first.sort()
    return row[first].astype(np.int64), item[first].astype(np.int64)


def _encode_history(
    tables: ModelTables, queries: Sequence[BasketQuery]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Customer history entries: row, item, HISTORY_FACTORS values, typical price."""
    histories = [q.history for q in queries]
    sizes = np.fromiter(
        (0 if h is None else len(h) for h in histories), np.int64, len(queries)
    )
    present = [h for h in histories if h is not None and len(h)]
    if not present:
        nothing = np.zeros(0, dtype=np.int64)
        empty = np.zeros((0, len(HISTORY_FACTORS)), dtype=np.float32)
        return nothing, nothing, empty, np.full(len(queries), np.nan, np.float32)

    codes = np.concatenate([h.codes for h in present])
    orders = np.concatenate([h.orders for h in present]).astype(np.float64)
    quantity = np.concatenate([h.quantity for h in present]).astype(np.float64)
    last = np.concatenate([h.last_purchase for h in present]).astype(np.float64)
    now = np.fromiter((q.now for q in queries), np.float64, len(queries))
    all_rows = np.repeat(np.arange(len(queries)), sizes)
    orders_since = _orders_since(all_rows, last)
    all_items = tables.catalogue.index_of(codes)
    known = all_items >= 0
    row, item = all_rows[known], all_items[known]
    orders, quantity, last = orders[known], quantity[known], last[known]
    order_recency = np.power(tables.params.order_decay, orders_since[known])
    n_orders = np.zeros(len(queries), dtype=np.float64)
    np.maximum.at(n_orders, all_rows, orders_since + 1.0)
    order_share = np.minimum(orders / n_orders[row], 1.0)

    # Half-life slides from long to short as the customer's frequency grows.
    p = tables.params
    frequency = orders / (orders + p.frequency_scale)
    half_life = (
        p.long_half_life_days
        - (p.long_half_life_days - p.short_half_life_days) * frequency
    )
    age_days = np.maximum(now[row] - last, 0.0) / SECONDS_PER_DAY
    recency = np.exp2(-age_days / half_life)

    # The customer's typical price: quantity-weighted mean log price.
    weight = np.bincount(row, weights=quantity, minlength=len(queries))
    total = np.bincount(
        row, weights=quantity * tables.log_price[item], minlength=len(queries)
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        log_typical = np.where(weight > 0, total / weight, np.nan)
    values = {
        "history": np.log1p(orders),
        "recency": recency,
        "order_recency": order_recency,
        "order_share": order_share,
    }
    history_values = np.stack([values[name] for name in HISTORY_FACTORS], axis=1)
    return (
        row.astype(np.int64),
        item.astype(np.int64),
        history_values.astype(np.float32),
        log_typical.astype(np.float32),
    )


def _orders_since(row: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Per history entry, how many distinct later purchase times its customer has.

    Every item of one order shares that order's time, so this counts the orders
    after the item's latest one (0 for the items of the latest order).
    """
    order = np.lexsort((-last, row))
    row_sorted, last_sorted = row[order], last[order]
    new_row = np.ones(row.shape[0], dtype=bool)
    new_row[1:] = row_sorted[1:] != row_sorted[:-1]
    new_time = new_row.copy()
    new_time[1:] |= last_sorted[1:] != last_sorted[:-1]
    distinct_seen = np.cumsum(new_time)
    row_start = np.maximum.accumulate(np.where(new_row, distinct_seen, 0))
    since = np.empty(row.shape[0], dtype=np.float64)
    since[order] = distinct_seen - row_start
    return since


def _fire_rules(
    tables: ModelTables, basket_row: np.ndarray, basket_item: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    n_items = len(tables.catalogue)
    width = tables.row_width

    # One-item antecedents: every basket item fires its row of rules. Boosts are
    # averaged over the antecedents tried, so big baskets do not swamp the sum.
    size = np.bincount(basket_row).astype(np.float32)
    owner, consequent, boost = tables.single_rules.gather(basket_item)
    row = basket_row[owner]
    flats = [row * width + consequent]
    values = [boost / size[row]]

    # Two-item antecedents: pairs among the newest items of each basket.
    first, second, pair_row = _basket_pairs(
        basket_row, basket_item, tables.params.max_pair_items
    )
    if first.size and tables.pair_keys.size:
        key = np.minimum(first, second) * n_items + np.maximum(first, second)
        position = tables.pair_index.lookup(key.astype(np.uint64) + 1)
        fired = position >= 0
        owner, consequent, boost = tables.pair_rules.gather(position[fired])
        row = pair_row[fired][owner]
        n_pairs = np.bincount(pair_row).astype(np.float32)
        flats.append(row * width + consequent)
        values.append(boost / n_pairs[row])
    return np.concatenate(flats).astype(np.int64), np.concatenate(values)


def _history_rules(
    tables: ModelTables,
    history_row: np.ndarray,
    history_item: np.ndarray,
    recency: np.ndarray,
    n_queries: int,
) -> tuple[np.ndarray, np.ndarray]:
    # Keep each customer's most recent items: bounds the work for big histories.
    limit = tables.params.max_history_items
    order = np.lexsort((-recency, history_row))
    row, item, weight = history_row[order], history_item[order], recency[order]
    counts = np.bincount(row, minlength=n_queries)
    position = np.arange(row.shape[0]) - (np.cumsum(counts) - counts)[row]
    recent = position < limit
    row, item, weight = row[recent], item[recent], weight[recent]

    total = np.bincount(row, weights=weight, minlength=n_queries)
    owner, consequent, boost = tables.single_rules.gather(item)
    # A long-gone customer's recencies can all underflow to 0: share 0, not NaN.
    denominator = total[row[owner]]
    share = np.divide(
        weight[owner],
        denominator,
        out=np.zeros(owner.shape[0], dtype=np.float64),
        where=denominator > 0,
    )
    flat = row[owner] * tables.row_width + consequent
    return flat.astype(np.int64), (boost * share).astype(np.float32)


def _newest(
    row: np.ndarray, item: np.ndarray, limit: int
) -> tuple[np.ndarray, np.ndarray]:
    """Keep the last ``limit`` entries of each row (entries grouped by row)."""
    if row.size == 0:
        return row, item
    counts = np.bincount(row)
    position = np.arange(row.size) - (np.cumsum(counts) - counts)[row]
    newest = position >= counts[row] - limit
    return row[newest], item[newest]


def _basket_pairs(
    row: np.ndarray, item: np.ndarray, max_items: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All unordered pairs among the last ``max_items`` items of each basket."""
    if row.size < 2:
        nothing = np.zeros(0, dtype=np.int64)
        return nothing, nothing, nothing
    row, item = _newest(row, item, max_items)
    counts = np.bincount(row)
    starts = np.cumsum(counts) - counts
    position = np.arange(row.size) - starts[row]

    # Entry e pairs with the entries after it in its basket.
    partners = counts[row] - position - 1
    first = np.repeat(np.arange(row.size), partners)
    group_start = np.cumsum(partners) - partners
    second = first + 1 + (np.arange(first.size) - np.repeat(group_start, partners))
    return item[first], item[second], row[first]


def _basket_similarity(
    tables: ModelTables, basket_row: np.ndarray, basket_item: np.ndarray, n_queries: int
) -> tuple[np.ndarray, np.ndarray]:
    owner, neighbour, cosine = tables.neighbours.gather(basket_item)
    size = np.bincount(basket_row, minlength=n_queries).astype(np.float32)
    row = basket_row[owner]
    flat = row * tables.row_width + neighbour
    return flat.astype(np.int64), cosine / size[row]


def _encode_discounts(
    tables: ModelTables, queries: Sequence[BasketQuery]
) -> tuple[np.ndarray, np.ndarray]:
    if not any(q.discounts for q in queries):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    rows, codes, percent = [], [], []
    for b, query in enumerate(queries):
        for code, pct in query.discounts.items():
            rows.append(b)
            codes.append(code)
            percent.append(pct)
    item = tables.catalogue.index_of(np.array(codes, dtype=str))
    known = item >= 0
    row = np.asarray(rows, dtype=np.int64)[known]
    item = item[known]
    fraction = np.clip(
        np.asarray(percent, dtype=np.float64)[known] / 100.0, 0.0, MAX_DISCOUNT
    )
    # Stored as the change from the item's default markdown, so both paths add up.
    value = (fraction - tables.markdown[item]).astype(np.float32)
    return row * tables.row_width + item, value


def _log_budgets(
    tables: ModelTables,
    queries: Sequence[BasketQuery],
    basket_row: np.ndarray,
    basket_item: np.ndarray,
    log_typical: np.ndarray,
) -> np.ndarray:
    n_queries = len(queries)
    asked = np.fromiter(
        (np.nan if q.budget is None or q.budget <= 0 else q.budget for q in queries),
        np.float64,
        n_queries,
    )
    count = np.bincount(basket_row, minlength=n_queries)
    total = np.bincount(
        basket_row, weights=tables.log_price[basket_item], minlength=n_queries
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        basket_mean = np.where(count > 0, total / count, np.nan)
    log_budget = np.where(np.isfinite(asked), np.log(asked), basket_mean)
    log_budget = np.where(np.isfinite(log_budget), log_budget, log_typical)
    return log_budget.astype(np.float32)
