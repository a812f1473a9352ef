"""Reading and cleaning retailer transaction exports."""

from stream_app.data.cleaning import (
    CleaningReport,
    clean_transactions,
    is_non_merchandise,
    normalise_stock_codes,
)
from stream_app.data.loading import CANONICAL_COLUMNS, SCHEMAS, read_transactions

__all__ = [
    "CANONICAL_COLUMNS",
    "SCHEMAS",
    "CleaningReport",
    "clean_transactions",
    "is_non_merchandise",
    "normalise_stock_codes",
    "read_transactions",
]
