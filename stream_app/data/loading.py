"""Read a retailer's transaction export (either public schema, any file format)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from stream_app.errors import DataError, SchemaError

logger = logging.getLogger(__name__)

#: Canonical column names used everywhere after loading.
CANONICAL_COLUMNS = (
    "invoice",
    "stock_code",
    "description",
    "quantity",
    "invoice_date",
    "price",
    "customer_id",
    "country",
)

#: Online Retail (UCI 352) and Online Retail II (UCI 502) column names.
SCHEMAS: Mapping[str, Mapping[str, str]] = {
    "online_retail": {
        "InvoiceNo": "invoice",
        "StockCode": "stock_code",
        "Description": "description",
        "Quantity": "quantity",
        "InvoiceDate": "invoice_date",
        "UnitPrice": "price",
        "CustomerID": "customer_id",
        "Country": "country",
    },
    "online_retail_ii": {
        "Invoice": "invoice",
        "StockCode": "stock_code",
        "Description": "description",
        "Quantity": "quantity",
        "InvoiceDate": "invoice_date",
        "Price": "price",
        "Customer ID": "customer_id",
        "Country": "country",
    },
}

_TEXT_COLUMNS = ("invoice", "stock_code", "description", "customer_id", "country")


def read_transactions(path: str | Path) -> pd.DataFrame:
    """Read an export into a frame with the canonical columns and dtypes.

    Accepts CSV (optionally gzip/bz2/xz/zip compressed), Excel (every sheet is read
    and stacked, as Online Retail II ships one sheet per year) and Parquet.

    Args:
        path: File to read.

    Returns:
        Frame with ``CANONICAL_COLUMNS``: text columns as pandas strings (customer
        id without a trailing ``.0``, missing as NA), ``quantity`` int64, ``price``
        float64 in pounds, ``invoice_date`` datetime64.

    Raises:
        DataError: The file is missing, unreadable, empty, or has bad values.
        SchemaError: The columns match neither supported schema.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"transaction file not found: {path}")
    raw = _read_any(path)
    if raw.empty:
        raise DataError(f"{path} has no rows")
    frame = _rename_to_canonical(raw, path)
    return _coerce_types(frame, path)


def _read_any(path: Path) -> pd.DataFrame:
    suffixes = [s.lower() for s in path.suffixes]
    # Identifiers stay text: '536365' and 'C536379' share a column, and customer
    # ids must not pass through float.
    text = {"InvoiceNo": str, "Invoice": str, "StockCode": str, "CustomerID": str}
    text["Customer ID"] = str
    try:
        if ".parquet" in suffixes or ".pq" in suffixes:
            return pd.read_parquet(path)
        if suffixes and suffixes[-1] in (".xlsx", ".xls", ".xlsm"):
            sheets = pd.read_excel(path, sheet_name=None, dtype=text)
            return pd.concat(sheets.values(), ignore_index=True)
        return pd.read_csv(path, dtype=text, encoding_errors="replace")
    except (OSError, ValueError, ImportError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc


def _rename_to_canonical(raw: pd.DataFrame, path: Path) -> pd.DataFrame:
    columns = {str(c).strip() for c in raw.columns}
    raw = raw.rename(columns=lambda c: str(c).strip())
    best_name, best_missing = "", list(CANONICAL_COLUMNS)
    for name, mapping in SCHEMAS.items():
        missing = [c for c in mapping if c not in columns]
        if not missing:
            logger.info("loaded schema=%s rows=%d path=%s", name, len(raw), path)
            return raw[list(mapping)].rename(columns=dict(mapping))
        if len(missing) < len(best_missing):
            best_name, best_missing = name, missing
    raise SchemaError(
        f"{path} matches neither Online Retail nor Online Retail II: closest is "
        f"{best_name}, missing columns {', '.join(best_missing)}"
    )


def _coerce_types(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    out = pd.DataFrame(index=frame.index)
    for column in _TEXT_COLUMNS:
        out[column] = frame[column].astype("string").str.strip()
    out["customer_id"] = out["customer_id"].str.replace(r"\.0$", "", regex=True)
    out["customer_id"] = out["customer_id"].mask(out["customer_id"] == "")

    quantity = pd.to_numeric(frame["quantity"], errors="coerce")
    price = pd.to_numeric(frame["price"], errors="coerce")
    _fail_on_unparsed(frame["quantity"], quantity, "quantity", path)
    _fail_on_unparsed(frame["price"], price, "price", path)
    out["quantity"] = quantity.fillna(0).astype("int64")
    out["price"] = price.astype("float64")
    out["invoice_date"] = _parse_dates(frame["invoice_date"], path)
    return out[list(CANONICAL_COLUMNS)]


def _fail_on_unparsed(raw: pd.Series, parsed: pd.Series, name: str, path: Path) -> None:
    bad = parsed.isna() & raw.notna()
    if bad.any():
        example = raw[bad].iloc[0]
        raise DataError(
            f"{path}: {int(bad.sum())} rows have a non-numeric {name}, "
            f"first at row {bad.idxmax()}: {example!r}"
        )


def _parse_dates(raw: pd.Series, path: Path) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(raw):
        parsed = raw
    else:
        text = raw.astype("string").str.strip()
        try:
            parsed = pd.to_datetime(text, format="ISO8601")
        except (ValueError, TypeError):
            # The original UCI CSV writes month/day/year, e.g. '12/1/2010 8:26'.
            parsed = pd.to_datetime(text, format="mixed", errors="coerce")
    bad = parsed.isna()
    if bad.any():
        example = raw[bad].iloc[0]
        raise DataError(
            f"{path}: {int(bad.sum())} rows have an unparseable InvoiceDate, "
            f"first at row {bad.idxmax()}: {example!r}"
        )
    return parsed.astype("datetime64[ns]")
