"""Clean raw transactions into purchase lines, counting every row removed."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pandas as pd

from stream_app.errors import DataError

logger = logging.getLogger(__name__)

#: Service and accounting codes of both Online Retail data sets: postage (POST,
#: DOT), manual lines (M), carriage (C2, C3), discounts (D), samples (S), bad debt
#: (B), bank and marketplace charges, charity (CRUK), padding (PADS), adjustments,
#: tests, gift vouchers (GIFT_*).
NON_MERCHANDISE_PATTERN = (
    r"POST|DOT|M|C2|C3|D|S|B|BANK CHARGES|AMAZONFEE|CRUK|PADS|"
    r"ADJUST\d*|TEST\d*|GIFT_.*|SP\d+|[A-Z ]+"
)
#: Irregular codes that are real merchandise despite having no leading digits
#: (party bags, ashtrays and the like sold under 'DCGS...' codes).
MERCHANDISE_EXCEPTION_PATTERN = r"DCGS.*"


@dataclass(frozen=True)
class CleaningReport:
    """Rows removed by each cleaning step, in order, and what remained."""

    rows_in: int
    removed: dict[str, int] = field(default_factory=dict)
    rows_out: int = 0
    anonymous_rows: int = 0

    def as_dict(self) -> dict[str, int]:
        """Return the counts as a flat mapping, for manifests and logs."""
        return {
            "rows_in": self.rows_in,
            **{f"removed_{k}": v for k, v in self.removed.items()},
            "rows_out": self.rows_out,
            "anonymous_rows": self.anonymous_rows,
        }


def normalise_stock_codes(codes: pd.Series) -> pd.Series:
    """Upper-case and strip stock codes so '85123a ' and '85123A' are one item."""
    return codes.astype("string").str.strip().str.upper()


def is_non_merchandise(codes: pd.Series) -> pd.Series:
    """Return a boolean mask of service, fee and voucher codes (normalised input)."""
    service = codes.str.fullmatch(NON_MERCHANDISE_PATTERN).fillna(True)
    exception = codes.str.fullmatch(MERCHANDISE_EXCEPTION_PATTERN).fillna(False)
    return (service & ~exception).astype(bool)


def clean_transactions(raw: pd.DataFrame) -> tuple[pd.DataFrame, CleaningReport]:
    """Keep the lines that are real purchases of merchandise.

    Steps, each counted: rows missing invoice, code or date; cancellations
    (invoice starting with ``C``); other returns and adjustments (quantity <= 0);
    non-positive prices; non-merchandise codes; exact duplicate lines (after
    normalising codes). Lines without a customer are kept as anonymous baskets.

    Args:
        raw: Frame from :func:`stream_app.data.loading.read_transactions`.

    Returns:
        The cleaned frame (same columns, sorted by date then invoice, fresh index)
        and a :class:`CleaningReport`.

    Raises:
        DataError: Nothing is left after cleaning.
    """
    frame = raw.copy()
    frame["stock_code"] = normalise_stock_codes(frame["stock_code"])
    removed: dict[str, int] = {}

    steps = (
        ("missing_fields", lambda f: f[["invoice", "stock_code"]].isna().any(axis=1)),
        ("cancellations", lambda f: f["invoice"].str.upper().str.startswith("C")),
        ("non_positive_quantity", lambda f: f["quantity"] <= 0),
        ("non_positive_price", lambda f: ~(f["price"] > 0)),
        ("non_merchandise", lambda f: is_non_merchandise(f["stock_code"])),
        ("duplicate_lines", lambda f: f.duplicated(keep="first")),
    )
    for name, drop_mask in steps:
        mask = drop_mask(frame).fillna(False).astype(bool)
        removed[name] = int(mask.sum())
        frame = frame.loc[~mask]
        logger.info(
            "cleaning step=%s removed=%d remaining=%d", name, removed[name], len(frame)
        )

    if frame.empty:
        raise DataError(
            "no purchase lines left after cleaning; is this a sales export?"
        )
    frame = frame.sort_values(["invoice_date", "invoice"], kind="stable")
    frame = frame.reset_index(drop=True)
    report = CleaningReport(
        rows_in=len(raw),
        removed=removed,
        rows_out=len(frame),
        anonymous_rows=int(frame["customer_id"].isna().sum()),
    )
    return frame, report
