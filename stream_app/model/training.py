"""Training: cleaned transactions in, a scoring model with fitted weights out."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from stream_app.data.history import customer_history, to_unix_seconds
from stream_app.model.artifact import HistoryTable, ModelTables, ScoringParams
from stream_app.model.catalogue import build_catalogue
from stream_app.model.fitting import (
    FitResult,
    RankingFit,
    fit_conditional_logit,
    refine_for_top_k,
)
from stream_app.model.rules import basket_matrix, mine_rules, strongest_per_antecedent
from stream_app.model.sparse_rows import SparseRows
from stream_app.model.text import description_neighbours
from stream_app.model.types import FACTORS, BasketQuery, CustomerHistory

logger = logging.getLogger(__name__)

SECONDS_PER_DAY = 86_400.0

Progress = Callable[[str], None]


@dataclass(frozen=True)
class TrainingParams:
    """Knobs of training; every one is recorded in the manifest.

    Attributes:
        min_orders: Items in fewer orders are not recommended.
        min_customers: Items bought by fewer known customers are not recommended.
        min_support: Minimum support of one-item-antecedent rules, share of baskets.
        min_pair_support: Minimum support of two-item-antecedent rules.
        min_confidence: Minimum rule confidence.
        max_rules_per_antecedent: Strongest rules kept per antecedent (by boost):
            bounds the entries one basket item fires at scoring time.
        neighbours: Description neighbours kept per item.
        validation_days: Days before the end whose baskets fit the weights.
        max_fit_examples: Cap on fitting examples (memory: each is n_items x 7 floats).
        seed: Seed of the example sample.
        popularity_half_life_days: Age at which an order counts half in the
            popularity factor, days; ``None`` counts every order alike.
        ranking_k: List length the likelihood weights are then refined for.
        ranking_rounds: Rounds of that refinement (0 keeps the likelihood ones).
        scoring: Recency and pair parameters used at scoring time.
    """

    min_orders: int = 5
    min_customers: int = 3
    min_support: float = 0.001
    min_pair_support: float = 0.003
    min_confidence: float = 0.1
    max_rules_per_antecedent: int = 50
    neighbours: int = 30
    validation_days: int = 28
    max_fit_examples: int = 3000
    seed: int = 0
    popularity_half_life_days: float | None = 7.0
    ranking_k: int = 10
    ranking_rounds: int = 3
    scoring: ScoringParams = field(default_factory=ScoringParams)


@dataclass(frozen=True)
class TrainedModel:
    """What training hands to the artifact writer."""

    tables: ModelTables
    history: HistoryTable
    manifest: dict[str, Any]
    fit: FitResult | None
    ranking: RankingFit | None = None


def build_tables(
    clean: pd.DataFrame,
    params: TrainingParams,
    *,
    version: str,
    weights: np.ndarray | None = None,
) -> ModelTables:
    """Compute every factor table from cleaned lines (all before the scoring time).

    Args:
        clean: Cleaned purchase lines.
        params: Training parameters.
        version: Version string recorded in the tables.
        weights: Factor weights (default: all 1.0, the unfitted seed model).

    Returns:
        The tables the scorer runs on.
    """
    catalogue = build_catalogue(
        clean, min_orders=params.min_orders, min_customers=params.min_customers
    )
    item = catalogue.index_of(clean["stock_code"].to_numpy(dtype=str))
    baskets = basket_matrix(clean["invoice"].to_numpy(dtype=str), item)
    n_items = len(catalogue)
    if baskets.shape[1] < n_items:
        baskets.resize((baskets.shape[0], n_items))
    rules = strongest_per_antecedent(
        mine_rules(
            baskets,
            min_support=params.min_support,
            min_confidence=params.min_confidence,
            min_pair_support=params.min_pair_support,
        ),
        params.max_rules_per_antecedent,
    )
    single = rules.second < 0

    # Pair antecedents are keyed first * n + second (first < second) and sorted.
    pair_key = rules.first[~single].astype(np.int64) * n_items + rules.second[~single]
    pair_keys, pair_row = np.unique(pair_key, return_inverse=True)
    pair_rules = SparseRows.from_scipy(
        _coo(
            pair_row,
            rules.consequent[~single],
            rules.boost[~single],
            (pair_keys.size, n_items),
        )
    )
    single_rules = SparseRows.from_scipy(
        _coo(
            rules.first[single],
            rules.consequent[single],
            rules.boost[single],
            (n_items, n_items),
        )
    )

    popularity = _popularity(clean, item, baskets, params.popularity_half_life_days)
    markdown = np.clip(1.0 - catalogue.prices / catalogue.reference_prices, 0.0, None)
    return ModelTables(
        version=version,
        catalogue=catalogue,
        popularity=popularity.astype(np.float32),
        markdown=markdown.astype(np.float32),
        log_price=np.log(catalogue.prices).astype(np.float32),
        single_rules=single_rules,
        pair_keys=pair_keys.astype(np.int64),
        pair_rules=pair_rules,
        neighbours=SparseRows.from_scipy(
            description_neighbours(catalogue.descriptions, top_k=params.neighbours)
        ),
        weights=np.ones(len(FACTORS), np.float32) if weights is None else weights,
        params=params.scoring,
        manifest={
            "n_rules_one_item": int(single.sum()),
            "n_rules_two_item": int((~single).sum()),
        },
    )


def _popularity(
    clean: pd.DataFrame,
    item: np.ndarray,
    baskets: Any,
    half_life_days: float | None,
) -> np.ndarray:
    """Log share of orders holding each item, recent orders counting more.

    Args:
        clean: Cleaned lines, aligned with ``item``.
        item: Catalogue index of each line, -1 outside the catalogue.
        baskets: Binary CSR (n_baskets, n_items), rows in sorted invoice order as
            :func:`basket_matrix` builds them.
        half_life_days: Order age at which its weight halves, measured from the
            newest order in ``clean`` (the end of the training data); ``None``:
            every order counts 1.

    Returns:
        float64 (n_items,): log((weighted orders + 1) / (weighted baskets + n_items)).
    """
    n_baskets, n_items = baskets.shape
    weight = np.ones(n_baskets, dtype=np.float64)
    if half_life_days is not None and n_baskets:
        # Each basket's time, in the row order of basket_matrix (sorted invoices).
        known = item >= 0
        invoices = clean["invoice"].to_numpy(dtype=str)[known]
        seconds = to_unix_seconds(clean["invoice_date"])[known]
        _, row = np.unique(invoices, return_inverse=True)
        opened = np.full(n_baskets, np.inf)
        np.minimum.at(opened, row.reshape(-1), seconds)
        age_days = (opened.max() - opened) / SECONDS_PER_DAY
        weight = np.exp2(-age_days / half_life_days)
    orders = baskets.T @ weight
    return np.log((orders + 1.0) / (weight.sum() + n_items))


def _coo(
    rows: np.ndarray, cols: np.ndarray, values: np.ndarray, shape: tuple[int, int]
) -> Any:
    import scipy.sparse as sp

    return sp.coo_matrix((values, (rows, cols)), shape=shape)


def history_table(clean: pd.DataFrame) -> HistoryTable:
    """The customers' purchase history as flat arrays, sorted by customer."""
    history = customer_history(clean)
    return HistoryTable(
        customer_ids=history["customer_id"].to_numpy(dtype=str),
        codes=history["stock_code"].to_numpy(dtype=str),
        orders=history["orders"].to_numpy(dtype=np.float64),
        quantity=history["quantity"].to_numpy(dtype=np.float64),
        last_purchase=history["last_purchase"].to_numpy(dtype=np.float64),
    )


def histories_by_customer(table: HistoryTable) -> dict[str, CustomerHistory]:
    """Split a history table into one :class:`CustomerHistory` per customer."""
    ids, starts = np.unique(table.customer_ids, return_index=True)
    bounds = np.append(starts, table.customer_ids.shape[0])
    return {
        str(customer): CustomerHistory(
            codes=table.codes[a:b],
            orders=table.orders[a:b],
            quantity=table.quantity[a:b],
            last_purchase=table.last_purchase[a:b],
        )
        for customer, a, b in zip(ids, bounds[:-1], bounds[1:], strict=True)
    }


@dataclass(frozen=True)
class Example:
    """One held-out choice: the query as the scorer sees it, and what was bought."""

    query: BasketQuery
    target_codes: tuple[str, ...]
    customer_id: str = ""


def next_basket_examples(
    clean: pd.DataFrame, split: pd.Timestamp, end: pd.Timestamp, *, reveal_half: bool
) -> list[Example]:
    """Each known customer's first basket in ``[split, end)``, given history before.

    Args:
        clean: Cleaned lines (any span).
        split: History ends here; targets start here.
        end: Targets end here (exclusive).
        reveal_half: Put the first half of the basket's items (file order) in the
            query and keep the rest as targets (basket completion); else predict
            the whole basket from history alone (next basket).

    Returns:
        Examples for customers with history before ``split`` (others are skipped).
    """
    before = clean.loc[clean["invoice_date"] < split]
    histories = histories_by_customer(history_table(before))
    window = clean.loc[
        (clean["invoice_date"] >= split)
        & (clean["invoice_date"] < end)
        & clean["customer_id"].notna()
    ]
    window = window.loc[window["customer_id"].isin(list(histories))]
    first_invoice = window.groupby("customer_id", observed=True)["invoice"].first()
    lines = window.loc[window["invoice"].isin(first_invoice.to_numpy())]

    examples = []
    for (customer, _invoice), group in lines.groupby(
        ["customer_id", "invoice"], sort=True, observed=True
    ):
        codes = list(dict.fromkeys(group["stock_code"].tolist()))
        now = float(to_unix_seconds(group["invoice_date"]).min())
        reveal = len(codes) // 2 if reveal_half else 0
        if reveal_half and reveal == 0:
            continue
        query = BasketQuery(
            basket_codes=codes[:reveal], history=histories[str(customer)], now=now
        )
        examples.append(
            Example(
                query=query,
                target_codes=tuple(codes[reveal:]),
                customer_id=str(customer),
            )
        )
    return examples


def train_model(
    clean: pd.DataFrame,
    params: TrainingParams,
    *,
    data_checksum: str,
    end: pd.Timestamp | None = None,
    fit_weights: bool = True,
    progress: Progress | None = None,
) -> TrainedModel:
    """Fit the weights on the last ``validation_days``, then rebuild on everything.

    Args:
        clean: Cleaned lines; those on or after ``end`` are ignored.
        params: Training parameters.
        data_checksum: sha256 of the input file, recorded in the manifest.
        end: Training end (exclusive); default the day after the last invoice.
        fit_weights: False keeps all weights at 1.0 (the seed model).
        progress: Called with a short line at each stage.

    Returns:
        The final tables (fitted weights), the history table and manifest fields.
    """
    say = progress or (lambda message: logger.info("train %s", message))
    if end is None:
        end = clean["invoice_date"].max().normalize() + pd.Timedelta(days=1)
    clean = clean.loc[clean["invoice_date"] < end]
    version = _version(data_checksum, params, end)

    fit: FitResult | None = None
    ranking: RankingFit | None = None
    weights = np.ones(len(FACTORS), dtype=np.float32)
    if fit_weights:
        split = end - pd.Timedelta(days=params.validation_days)
        say(f"fitting weights on baskets from {split.date()} to {end.date()}")
        fit, ranking = _fit_on_split(clean, params, split, end)
        weights = fit.weights if ranking is None else ranking.weights

    say(f"building the model on {len(clean):,} lines up to {end.date()}")
    tables = build_tables(clean, params, version=version, weights=weights)
    manifest = {
        "data_sha256": data_checksum,
        "training_span": [
            str(clean["invoice_date"].min()),
            str(clean["invoice_date"].max()),
        ],
        "training_end": str(end.date()),
        "n_items": len(tables.catalogue),
        "n_pair_antecedents": int(tables.pair_keys.size),
        **tables.manifest,
        "params": {k: v for k, v in asdict(params).items() if k != "scoring"},
        "validation": None
        if fit is None
        else {
            "log_likelihood_fitted": fit.log_likelihood,
            "log_likelihood_unit_weights": fit.baseline_log_likelihood,
            "iterations": fit.iterations,
            "converged": fit.converged,
            **_ranking_manifest(ranking, params.ranking_k),
        },
    }
    return TrainedModel(
        tables=tables,
        history=history_table(clean),
        manifest=manifest,
        fit=fit,
        ranking=ranking,
    )


def _ranking_manifest(ranking: RankingFit | None, k: int) -> dict[str, Any]:
    """Manifest fields of the top-K refinement (none when it was not run)."""
    if ranking is None:
        return {}
    return {
        f"recall_plus_ndcg_at_{k}_likelihood_weights": ranking.start_objective,
        f"recall_plus_ndcg_at_{k}_refined": ranking.objective,
        "ranking_rounds": ranking.rounds,
    }


def _fit_on_split(
    clean: pd.DataFrame, params: TrainingParams, split: pd.Timestamp, end: pd.Timestamp
) -> tuple[FitResult, RankingFit | None]:
    """Fit the weights on the baskets of ``[split, end)``, tables built before it.

    Returns:
        The likelihood fit, and its top-K refinement (``None`` with 0 rounds).
    """
    from stream_app.model.features import encode_queries
    from stream_app.model.scorer import Scorer

    tables = build_tables(
        clean.loc[clean["invoice_date"] < split], params, version="fit"
    )
    examples = next_basket_examples(clean, split, end, reveal_half=True)
    examples += next_basket_examples(clean, split, end, reveal_half=False)
    rng = np.random.default_rng(params.seed)
    if len(examples) > params.max_fit_examples:
        chosen = rng.choice(len(examples), size=params.max_fit_examples, replace=False)
        examples = [examples[i] for i in np.sort(chosen)]

    scorer = Scorer(tables)
    batch = encode_queries(tables, [e.query for e in examples])
    factors, candidate = scorer.factor_tensor(batch)
    target = np.zeros_like(candidate)
    for row, example in enumerate(examples):
        item = tables.catalogue.index_of(np.array(example.target_codes, dtype=str))
        target[row, item[item >= 0]] = True
    usable = (target & candidate).any(axis=1)
    logger.info("fitting examples=%d usable=%d", len(examples), int(usable.sum()))
    factors, candidate, target = factors[usable], candidate[usable], target[usable]
    fit = fit_conditional_logit(factors, candidate, target)
    if params.ranking_rounds <= 0:
        return fit, None

    # Recall counts every item the shopper bought, as the evaluation does:
    # items outside the catalogue can only be missed.
    sizes = np.array([len(e.target_codes) for e in examples])[usable]
    ranking = refine_for_top_k(
        factors,
        candidate,
        target,
        sizes,
        fit.weights,
        k=params.ranking_k,
        max_rounds=params.ranking_rounds,
    )
    return fit, ranking


def _version(data_checksum: str, params: TrainingParams, end: pd.Timestamp) -> str:
    recipe = json.dumps(
        {"data": data_checksum, "params": asdict(params)}, sort_keys=True
    )
    return f"{end:%Y%m%d}-{hashlib.sha256(recipe.encode()).hexdigest()[:8]}"
