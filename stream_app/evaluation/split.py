"""Temporal split: history before a cutoff, each customer's next basket after it."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from stream_app.data.history import to_unix_seconds
from stream_app.errors import DataError

logger = logging.getLogger(__name__)

#: Fewest distinct items a target basket needs to take part in basket completion:
#: one to reveal and at least one to predict.
MIN_COMPLETION_ITEMS = 2


@dataclass(frozen=True)
class TemporalSplit:
    """Training lines and next-basket targets around one cutoff.

    Attributes:
        cutoff: Training lines are strictly before it; targets are at or after it.
        horizon_end: Targets are strictly before it (``None``: end of the data).
        train: Cleaned lines before ``cutoff`` (anonymous ones included).
        users: Evaluated customers, sorted, str array of shape (n_users,).
        target_invoices: Invoice of each user's target basket, str (n_users,).
        targets: Distinct stock codes of each target basket, in file order.
        target_times: Unix seconds of the line that first put each target item in
            its basket, float64 arrays aligned with ``targets``: when a live till
            would have sent that item (see :func:`stream_app.streaming.replay.
            invoice_events`).
        history: Distinct stock codes each user bought before the cutoff.
    """

    cutoff: pd.Timestamp
    horizon_end: pd.Timestamp | None
    train: pd.DataFrame
    users: np.ndarray
    target_invoices: np.ndarray
    targets: list[list[str]]
    target_times: list[np.ndarray]
    history: list[set[str]]


def temporal_split(
    clean: pd.DataFrame,
    cutoff: pd.Timestamp,
    horizon_end: pd.Timestamp | None = None,
) -> TemporalSplit:
    """Split cleaned lines at ``cutoff`` for next-basket evaluation.

    A customer is evaluated when they bought at least one basket before the
    cutoff and one in ``[cutoff, horizon_end)``; their target is the first such
    basket (by time, then invoice number), as its distinct items in file order.

    Args:
        clean: Frame from :func:`stream_app.data.clean_transactions`, whose rows
            are in file order within each invoice.
        cutoff: First instant that is not training data.
        horizon_end: Targets must start before it; ``None`` for no limit.

    Returns:
        The :class:`TemporalSplit`.

    Raises:
        DataError: No customer qualifies for evaluation.
    """
    before = clean["invoice_date"] < cutoff
    train = clean.loc[before]
    after = clean.loc[~before & clean["customer_id"].notna()]
    if horizon_end is not None:
        after = after.loc[after["invoice_date"] < horizon_end]

    # Customers known before the cutoff, with their items for the repeat split.
    known = train.loc[train["customer_id"].notna(), ["customer_id", "stock_code"]]
    history_sets = known.groupby("customer_id")["stock_code"].agg(set)
    after = after.loc[after["customer_id"].isin(history_sets.index)]
    if after.empty:
        end = (
            "the end of the data" if horizon_end is None else f"{horizon_end:%Y-%m-%d}"
        )
        raise DataError(
            f"no customer buys both before {cutoff:%Y-%m-%d} and before {end}"
        )

    # The first basket after the cutoff: baskets ordered by their first line, then
    # invoice number, as the replay sends them; a stable sort keeps file order
    # inside each basket even when its lines span several minutes.
    opened = after.groupby("invoice", sort=False)["invoice_date"].transform("min")
    after = after.assign(opened=opened).sort_values(
        ["opened", "invoice"], kind="stable"
    )
    first_invoice = after.groupby("customer_id", sort=True)["invoice"].first()
    target_lines = after.loc[
        after["invoice"].to_numpy()
        == first_invoice.reindex(after["customer_id"]).to_numpy()
    ]
    target_lines = target_lines.drop_duplicates(["customer_id", "stock_code"])
    target_lines = target_lines.assign(ts=to_unix_seconds(target_lines["invoice_date"]))
    by_user = target_lines.groupby("customer_id", sort=True)
    targets = by_user["stock_code"].agg(list)
    times = [ts.to_numpy(dtype=np.float64) for _, ts in by_user["ts"]]

    users = targets.index.astype(str).to_numpy()
    split = TemporalSplit(
        cutoff=cutoff,
        horizon_end=horizon_end,
        train=train,
        users=users,
        target_invoices=first_invoice.reindex(targets.index).astype(str).to_numpy(),
        targets=[[str(code) for code in codes] for codes in targets],
        target_times=times,
        history=[{str(code) for code in history_sets[u]} for u in targets.index],
    )
    logger.info(
        "split cutoff=%s train_lines=%d users=%d mean_target_items=%.1f",
        f"{cutoff:%Y-%m-%d}",
        len(train),
        len(users),
        float(np.mean([len(t) for t in split.targets])),
    )
    return split


def reveal_count(n_items: int) -> int:
    """Return how many of a target's ``n_items`` distinct items are revealed.

    Half, rounded down, and at least one: 2 -> 1, 3 -> 1, 4 -> 2, 5 -> 2.
    """
    return max(1, n_items // 2)


def reveal(target: list[str]) -> tuple[list[str], list[str]] | None:
    """Split a target basket into revealed and hidden items for basket completion.

    Args:
        target: Distinct stock codes of the basket, in file order.

    Returns:
        ``(revealed, hidden)``: the first :func:`reveal_count` items and the rest;
        ``None`` when the basket has fewer than ``MIN_COMPLETION_ITEMS`` items.
    """
    if len(target) < MIN_COMPLETION_ITEMS:
        return None
    shown = reveal_count(len(target))
    return target[:shown], target[shown:]
