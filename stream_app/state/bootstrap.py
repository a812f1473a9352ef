"""Load offline purchase history into the Redis state store, idempotently."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from stream_app.data.history import HISTORY_COLUMNS
from stream_app.errors import StateError
from stream_app.state.keys import KeyLayout

logger = logging.getLogger(__name__)

#: History rows written per pipeline round trip: large enough to amortise the
#: round trip, small enough to keep one request well under Redis' buffer limits.
ROWS_PER_ROUND_TRIP = 20_000

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class BootstrapReport:
    """What a bootstrap wrote."""

    customers: int
    rows: int
    round_trips: int


def history_values(history: pd.DataFrame) -> np.ndarray:
    """Return the stored value of each history row: ``"orders units last"``.

    Args:
        history: Frame with ``HISTORY_COLUMNS`` (from ``customer_history``).

    Returns:
        Object array of str, shape (n_rows,); ``last`` is unix seconds written
        with 17 significant digits (exact for float64).
    """
    last = [f"{value:.17g}" for value in history["last_purchase"].to_numpy(float)]
    return (
        history["orders"].astype("int64").astype(str).to_numpy(object)
        + " "
        + history["quantity"].astype("int64").astype(str).to_numpy(object)
        + " "
        + np.asarray(last, dtype=object)
    )


async def bootstrap_history(
    client: aioredis.Redis,
    layout: KeyLayout,
    history: pd.DataFrame,
    *,
    progress: Progress | None = None,
) -> BootstrapReport:
    """Write every (customer, item) row of ``history`` into the customers' hashes.

    Each row's field is set (not added to), so running it twice leaves the same
    state. Items a customer has only in the stream are kept. Run it before the
    worker consumes, or it overwrites items the stream has updated since. Each
    hash written gets a new token (one random token per run), so workers that
    hold the old content read the new one.

    Args:
        client: Asyncio Redis client.
        layout: Key names and prefix.
        history: Frame with ``HISTORY_COLUMNS`` from
            :func:`stream_app.data.history.customer_history`.
        progress: Called with (rows written, total rows) after each round trip.

    Returns:
        Counts of customers, rows and round trips.

    Raises:
        StateError: Redis failed (retriable for connection errors).
    """
    missing = set(HISTORY_COLUMNS) - set(history.columns)
    if missing:
        raise StateError(f"history lacks columns {sorted(missing)}", retriable=False)
    frame = history.sort_values(["customer_id", "stock_code"], kind="stable")
    customers = frame["customer_id"].astype(str).to_numpy(object)
    codes = frame["stock_code"].astype(str).to_numpy(object)
    values = history_values(frame)
    total = len(frame)
    if total == 0:
        return BootstrapReport(customers=0, rows=0, round_trips=0)

    # Row ranges of each customer, so a customer's fields go in one HSET.
    starts = np.flatnonzero(np.r_[True, customers[1:] != customers[:-1]])
    ends = np.r_[starts[1:], total]
    written, round_trips = 0, 0
    token = f"bootstrap:{uuid.uuid4().hex}"
    pipe = client.pipeline(transaction=False)
    for start, end in zip(starts, ends, strict=True):
        mapping = dict(zip(codes[start:end], values[start:end], strict=True))
        pipe.hset(layout.history(customers[start]), mapping=mapping)
        pipe.set(layout.history_token(customers[start]), token)
        written += int(end - start)
        if len(pipe) and (written // ROWS_PER_ROUND_TRIP) > round_trips:
            await _execute(pipe)
            round_trips += 1
            if progress is not None:
                progress(written, total)
    if len(pipe):
        await _execute(pipe)
        round_trips += 1
    if progress is not None:
        progress(written, total)
    logger.info(
        "bootstrap done customers=%d rows=%d round_trips=%d",
        len(starts),
        total,
        round_trips,
    )
    return BootstrapReport(customers=len(starts), rows=total, round_trips=round_trips)


async def _execute(pipe: aioredis.client.Pipeline) -> None:
    try:
        await pipe.execute()
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        raise StateError(f"redis unavailable: {exc}", retriable=True) from exc
    except RedisError as exc:
        raise StateError(f"redis failed: {exc}", retriable=False) from exc
