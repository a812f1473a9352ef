"""The stream-app command line: exit codes, one-line errors, train then recommend."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream_app.cli import build_parser, main

SUBCOMMANDS = [
    "train",
    "recommend",
    "evaluate",
    "worker",
    "replay",
    "bootstrap-state",
    "tail",
    "services",
    "demo",
]


def small_export(path: Path) -> Path:
    """Thirty invoices over six items: enough for every factor to exist."""
    header = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
    rows = []
    items = [
        ("22423", "REGENCY CAKESTAND 3 TIER", 12.75),
        ("85123A", "WHITE HANGING HEART T-LIGHT HOLDER", 2.55),
        ("71053", "WHITE METAL LANTERN", 3.39),
        ("22720", "SET OF 3 CAKE TINS PANTRY DESIGN", 4.95),
        ("21212", "PACK OF 72 RETROSPOT CAKE CASES", 0.55),
        ("22457", "NATURAL SLATE HEART CHALKBOARD", 2.95),
    ]
    for invoice in range(30):
        customer = 12000 + invoice % 5
        day = 1 + invoice // 3
        for k in range(3):
            code, description, price = items[
                (invoice + k * (1 + invoice % 2)) % len(items)
            ]
            rows.append(
                f"{540000 + invoice},{code},{description},{1 + k},2011-11-{day:02d} 10:00:00,{price},{customer},United Kingdom\n"
            )
    path.write_text(header + "".join(rows))
    return path


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_has_help(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: stream-app " + command in capsys.readouterr().out


def test_train_then_recommend_prints_a_ranked_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = small_export(tmp_path / "export.csv")
    out = tmp_path / "artifacts"
    code = main(
        [
            "train",
            "--data",
            str(data),
            "--out",
            str(out),
            "--min-orders",
            "1",
            "--min-customers",
            "1",
            "--validation-days",
            "3",
        ]
    )
    assert code == 0
    assert (out / "current" / "manifest.json").is_file()
    capsys.readouterr()

    code = main(
        [
            "recommend",
            "--artifact",
            str(out / "current"),
            "--customer",
            "12001",
            "--basket",
            "22423,NOPE",
            "--top",
            "3",
            "--explain",
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0
    assert "ignored unknown codes: NOPE" in printed
    assert printed.count("£") == 3
    assert (
        "22423" not in printed.split("ignored")[1]
    )  # the basket item is never recommended


def test_missing_data_file_is_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["train", "--data", str(tmp_path / "nope.csv"), "--out", str(tmp_path)])
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert error[-1].startswith("stream-app train: error: transaction file not found")
    assert "Traceback" not in "\n".join(error)


def test_missing_artifact_tells_how_to_make_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["recommend", "--artifact", str(tmp_path), "--basket", "22423"])
    assert code == 1
    assert "run 'stream-app train'" in capsys.readouterr().err
