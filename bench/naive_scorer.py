"""A straightforward per-basket scorer, the baseline of the scoring benchmark.

It computes the same logits as :class:`stream_app.model.scorer.Scorer` but the way a
first implementation would: one basket at a time, a Python loop over every rule
antecedent, over the basket's description neighbours and over the customer's
history, then a full sort.
"""

from __future__ import annotations

import math

import numpy as np

from stream_app.model.artifact import ModelTables
from stream_app.model.features import MAX_DISCOUNT, SECONDS_PER_DAY
from stream_app.model.types import FACTORS, BasketQuery

_W = {name: k for k, name in enumerate(FACTORS)}


class NaiveScorer:
    """Loops in Python over all rules for every basket."""

    def __init__(self, tables: ModelTables, weights: np.ndarray) -> None:
        self.tables = tables
        self.w = weights.astype(np.float64)
        self.codes = tables.catalogue.codes.tolist()
        self.position = {code: i for i, code in enumerate(self.codes)}

        # Every rule as (antecedent set, consequent, boost), as mined.
        self.rules: list[tuple[frozenset[int], int, float]] = []
        single = tables.single_rules
        for a in range(single.n_rows):
            for k in range(single.indptr[a], single.indptr[a + 1]):
                self.rules.append(
                    (frozenset([a]), int(single.indices[k]), float(single.values[k]))
                )
        n = len(self.codes)
        pairs = tables.pair_rules
        for row, key in enumerate(tables.pair_keys.tolist()):
            antecedent = frozenset([key // n, key % n])
            for k in range(pairs.indptr[row], pairs.indptr[row + 1]):
                self.rules.append(
                    (antecedent, int(pairs.indices[k]), float(pairs.values[k]))
                )

    def rank(self, query: BasketQuery, top_n: int) -> list[int]:
        """Top-N item indices for one query, best first (ties to the lower index)."""
        t, w, n = self.tables, self.w, len(self.codes)
        basket = [
            self.position[c]
            for c in dict.fromkeys(query.basket_codes)
            if c in self.position
        ]
        logits = w[_W["popularity"]] * t.popularity.astype(np.float64)
        logits = logits + w[_W["discount"]] * t.markdown

        for code, pct in query.discounts.items():
            if code in self.position:
                i = self.position[code]
                fraction = min(max(pct / 100.0, 0.0), MAX_DISCOUNT)
                logits[i] += w[_W["discount"]] * (fraction - t.markdown[i])

        # Rules: test every antecedent against the basket's newest items; boosts
        # are averaged over the antecedents tried (items, then pairs).
        newest = basket[-t.params.max_basket_items :]
        newest_set = set(newest)
        pair_items = set(basket[-t.params.max_pair_items :])
        n_pairs = len(pair_items) * (len(pair_items) - 1) / 2
        for antecedent, consequent, boost in self.rules:
            if len(antecedent) == 1 and antecedent <= newest_set:
                logits[consequent] += w[_W["rules"]] * boost / len(newest)
            elif len(antecedent) == 2 and antecedent <= pair_items:
                logits[consequent] += w[_W["rules"]] * boost / n_pairs

        # Similarity: mean over the newest basket items of their neighbours.
        nb = t.neighbours
        for item in newest:
            for k in range(nb.indptr[item], nb.indptr[item + 1]):
                logits[nb.indices[k]] += (
                    w[_W["similarity"]] * nb.values[k] / len(newest)
                )

        # History, recency, order recency and share, and the history's rules.
        log_prices, quantities = [], []
        if query.history is not None:
            p = t.params
            times = sorted(set(query.history.last_purchase.tolist()), reverse=True)
            n_orders = len(times)
            recent: list[tuple[float, int]] = []
            for code, orders, qty, last in zip(
                query.history.codes.tolist(),
                query.history.orders.tolist(),
                query.history.quantity.tolist(),
                query.history.last_purchase.tolist(),
                strict=True,
            ):
                if code not in self.position:
                    continue
                i = self.position[code]
                half = p.long_half_life_days - (
                    p.long_half_life_days - p.short_half_life_days
                ) * (orders / (orders + p.frequency_scale))
                age = max(query.now - last, 0.0) / SECONDS_PER_DAY
                recency = 2.0 ** (-age / half)
                logits[i] += w[_W["history"]] * math.log1p(orders)
                logits[i] += w[_W["recency"]] * recency
                logits[i] += w[_W["order_recency"]] * p.order_decay ** times.index(last)
                logits[i] += w[_W["order_share"]] * min(orders / n_orders, 1.0)
                recent.append((recency, i))
                log_prices.append(float(t.log_price[i]))
                quantities.append(qty)

            # The most recent history items fire their one-item rules.
            recent = sorted(recent, key=lambda pair: -pair[0])[: p.max_history_items]
            total = sum(r for r, _ in recent)
            single = t.single_rules
            for weight, item in recent:
                for k in range(single.indptr[item], single.indptr[item + 1]):
                    share = weight / total
                    logits[single.indices[k]] += (
                        w[_W["history_rules"]] * single.values[k] * share
                    )

        # Price affinity to the budget.
        if query.budget is not None and query.budget > 0:
            log_budget = math.log(query.budget)
        elif basket:
            log_budget = float(np.mean(t.log_price[basket]))
        elif sum(quantities) > 0:
            log_budget = float(np.dot(log_prices, quantities) / sum(quantities))
        else:
            log_budget = None
        if log_budget is not None:
            logits -= (
                w[_W["price"]] * (t.log_price.astype(np.float64) - log_budget) ** 2
            )

        for item in basket:
            logits[item] = -np.inf
        order = sorted(range(n), key=lambda i: (-logits[i], i))
        return [i for i in order[:top_n] if np.isfinite(logits[i])]
