"""Online/offline parity: score the worker's published answers like the evaluation.

Protocol B asks for the rest of a basket once its first half is revealed. The
streaming worker answers every ``item_added`` event, so the answer to compare
is the one published for the event after which the stream's basket first holds
the revealed items: the line that adds the last of them. Both rankings then go
through the evaluation's own :func:`ranking_metrics`, on the same targets.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from stream_app.evaluation.interactions import UNKNOWN, TrainingData
from stream_app.evaluation.metrics import NO_ITEM, RankingMetrics, ranking_metrics
from stream_app.evaluation.protocols import EvaluationTask
from stream_app.evaluation.split import TemporalSplit
from stream_app.streaming.events import BasketEvent, EventType

logger = logging.getLogger(__name__)

#: List lengths compared, as in the evaluation report.
PARITY_CUTOFFS = (10, 20)


@dataclass(frozen=True)
class ParityResult:
    """The same protocol-B queries ranked offline and by the stream.

    Attributes:
        n_users: Protocol-B users compared.
        offline: Metrics of the offline ranking.
        streamed: Metrics of the published recommendations.
        differing_lists: Users whose top-K lists differ, per K in
            ``PARITY_CUTOFFS``.
    """

    n_users: int
    offline: RankingMetrics
    streamed: RankingMetrics
    differing_lists: dict[int, int]

    def figures(self) -> dict[str, dict[str, float]]:
        """Return Recall@K and NDCG@K of both sides and their absolute gaps."""
        rows: dict[str, dict[str, float]] = {}
        for k in PARITY_CUTOFFS:
            for metric in ("recall", "ndcg"):
                offline = float(self.offline.at(k)[metric])
                streamed = float(self.streamed.at(k)[metric])
                rows[f"{metric}@{k}"] = {
                    "offline": offline,
                    "streamed": streamed,
                    "abs_diff": abs(offline - streamed),
                }
        return rows


def completion_event_ids(
    split: TemporalSplit, task: EvaluationTask, events: Sequence[BasketEvent]
) -> list[str]:
    """Return, per protocol-B query, the event whose answer completes the reveal.

    Args:
        split: The split the task was built from (it names each target invoice).
        task: The protocol-B task.
        events: Replayed events in production order (see
            :func:`stream_app.streaming.replay.invoice_events`); they must cover
            every target basket.

    Returns:
        One ``event_id`` per query of ``task``, in its order.

    Raises:
        ValueError: A target basket is missing from ``events``, or the stream's
            basket does not hold exactly the revealed items in the same order.
    """
    invoice_of = dict(zip(split.users, split.target_invoices, strict=True))
    wanted = {
        invoice_of[str(customer)]: len(shown)
        for customer, shown in zip(task.customers, task.revealed, strict=True)
    }

    # Walk each target basket's adds in order, counting distinct stock codes.
    added: dict[str, list[str]] = {}
    found: dict[str, str] = {}
    for event in events:
        basket = event.basket_id
        if event.event_type is not EventType.ITEM_ADDED or basket not in wanted:
            continue
        if basket in found:
            continue
        codes = added.setdefault(basket, [])
        codes.extend(i.stock_code for i in event.items if i.stock_code not in codes)
        if len(codes) >= wanted[basket]:
            found[basket] = event.event_id

    ids = []
    for customer, shown in zip(task.customers, task.revealed, strict=True):
        invoice = invoice_of[str(customer)]
        if invoice not in found:
            raise ValueError(f"the events never reveal basket {invoice}")
        if added[invoice] != list(shown):
            raise ValueError(
                f"basket {invoice}: the stream reveals {added[invoice]}, "
                f"the evaluation {list(shown)}"
            )
        ids.append(found[invoice])
    return ids


def published_ranking(
    answers: Mapping[str, Sequence[str]],
    event_ids: Sequence[str],
    data: TrainingData,
    k: int,
) -> np.ndarray:
    """Return the published lists as the evaluation's ranking matrix.

    Args:
        answers: Recommended stock codes, best first, per answered ``event_id``.
        event_ids: The event of each query (see :func:`completion_event_ids`).
        data: Training data whose item indices the evaluation ranks.
        k: Columns kept; shorter lists are padded with ``NO_ITEM``.

    Returns:
        int64 array of shape (len(event_ids), k) of training-catalogue indices.

    Raises:
        KeyError: An event has no published answer.
        ValueError: A published code was never sold before the cutoff.
    """
    ranked = np.full((len(event_ids), k), NO_ITEM, dtype=np.int64)
    for row, event_id in enumerate(event_ids):
        codes = list(answers[event_id])[:k]
        columns = data.item_index(codes)
        if (columns == UNKNOWN).any():
            raise ValueError(f"event {event_id}: recommended an unsold item {codes}")
        ranked[row, : columns.shape[0]] = columns
    return ranked


def compare_rankings(
    offline: np.ndarray, streamed: np.ndarray, task: EvaluationTask
) -> ParityResult:
    """Compute both rankings' metrics on ``task`` and count differing lists.

    Args:
        offline: int64 (n, k) ranking from :func:`rank_task`.
        streamed: int64 (n, k) ranking from :func:`published_ranking`.
        task: The protocol-B task both rank.

    Returns:
        The :class:`ParityResult`.
    """
    if offline.shape != streamed.shape:
        raise ValueError(f"rankings differ in shape: {offline.shape}, {streamed.shape}")
    metrics = [
        ranking_metrics(ranked, task.targets, task.target_sizes, task.repeat)
        for ranked in (offline, streamed)
    ]
    differing = {
        k: int((offline[:, :k] != streamed[:, :k]).any(axis=1).sum())
        for k in PARITY_CUTOFFS
    }
    logger.info(
        "parity users=%d differing_top10=%d differing_top20=%d",
        len(task),
        differing[10],
        differing[20],
    )
    return ParityResult(
        n_users=len(task),
        offline=metrics[0],
        streamed=metrics[1],
        differing_lists=differing,
    )
