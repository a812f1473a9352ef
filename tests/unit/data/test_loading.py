"""Loading both public schemas in every format, with clear errors for bad files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from stream_app.data import clean_transactions, read_transactions
from stream_app.errors import DataError, SchemaError

RETAIL = (
    "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
    "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom\n"
    "536365,71053,WHITE METAL LANTERN,6,2010-12-01 08:26:00,3.39,17850.0,United Kingdom\n"
    "C536379,D,Discount,-1,2010-12-01 09:41:00,27.5,14527,United Kingdom\n"
)
RETAIL_II = (
    RETAIL.replace("InvoiceNo", "Invoice")
    .replace("UnitPrice", "Price")
    .replace("CustomerID", "Customer ID")
)


def test_online_retail_csv_gets_canonical_columns(tmp_path: Path) -> None:
    path = tmp_path / "retail.csv"
    path.write_text(RETAIL)
    frame = read_transactions(path)
    assert list(frame.columns)[:3] == ["invoice", "stock_code", "description"]
    assert frame["customer_id"].tolist() == ["17850", "17850", "14527"]
    assert frame["invoice_date"].iloc[0] == pd.Timestamp("2010-12-01 08:26")


@pytest.mark.parametrize("suffix", [".csv.gz", ".parquet", ".xlsx"])
def test_online_retail_ii_in_every_format(tmp_path: Path, suffix: str) -> None:
    source = tmp_path / "source.csv"
    source.write_text(RETAIL_II)
    table = pd.read_csv(source, dtype=str)
    path = tmp_path / f"retail{suffix}"
    if suffix == ".parquet":
        table.to_parquet(path)
    elif suffix == ".xlsx":
        table.to_excel(path, index=False)
    else:
        table.to_csv(path, index=False, compression="gzip")
    frame = read_transactions(path)
    assert len(frame) == 3
    assert frame["price"].tolist() == [2.55, 3.39, 27.5]


def test_missing_columns_are_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("InvoiceNo,StockCode,Quantity\n1,2,3\n")
    with pytest.raises(
        SchemaError, match="Description, InvoiceDate, UnitPrice, CustomerID, Country"
    ):
        read_transactions(path)


def test_unparseable_dates_are_reported_with_an_example(tmp_path: Path) -> None:
    path = tmp_path / "dates.csv"
    path.write_text(RETAIL.replace("2010-12-01 08:26:00", "not a date", 1))
    with pytest.raises(DataError, match=r"unparseable InvoiceDate.*not a date"):
        read_transactions(path)


def test_empty_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text(RETAIL.splitlines()[0] + "\n")
    with pytest.raises(DataError, match="no rows"):
        read_transactions(path)


def test_us_style_dates_of_the_original_file_parse(tmp_path: Path) -> None:
    path = tmp_path / "us.csv"
    path.write_text(
        RETAIL.replace("2010-12-01 08:26:00", "12/1/2010 8:26").replace(
            "2010-12-01 09:41:00", "12/1/2010 9:41"
        )
    )
    assert read_transactions(path)["invoice_date"].iloc[2] == pd.Timestamp(
        "2010-12-01 09:41"
    )


def test_cleaning_counts_every_step(tmp_path: Path) -> None:
    path = tmp_path / "retail.csv"
    rows = RETAIL + (
        "536366,POST,POSTAGE,1,2010-12-01 10:00:00,18.0,12583,France\n"
        "536367,22423,CAKESTAND,0,2010-12-01 10:00:00,12.75,,United Kingdom\n"
        "536368,22423,CAKESTAND,1,2010-12-01 10:00:00,0,,United Kingdom\n"
        "536369,85123a ,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 11:00:00,2.55,,United Kingdom\n"
        "536369,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 11:00:00,2.55,,United Kingdom\n"
    )
    path.write_text(rows)
    clean, report = clean_transactions(read_transactions(path))
    assert report.removed == {
        "missing_fields": 0,
        "cancellations": 1,
        "non_positive_quantity": 1,
        "non_positive_price": 1,
        "non_merchandise": 1,
        "duplicate_lines": 1,
    }
    assert report.rows_out == 3 and report.anonymous_rows == 1
    assert sorted(clean["stock_code"].unique()) == ["71053", "85123A"]
