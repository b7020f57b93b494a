"""The streaming XLSX writer, read back with openpyxl."""

import io
import zoneinfo
from datetime import UTC, date, datetime
from decimal import Decimal

import openpyxl

from reports import xlsx

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")
KINDS = ["int", "str", "decimal", "float", "bool", "datetime", "date"]
HEADERS = ["n", "text", "money", "rate", "flag", "at", "day"]


def written(rows, **kwargs) -> openpyxl.Workbook:
    out = io.BytesIO()
    with xlsx.XlsxWriter(out, HEADERS, KINDS, tz=SHANGHAI, **kwargs) as writer:
        assert writer.write_rows(rows) == len(rows)
    return openpyxl.load_workbook(io.BytesIO(out.getvalue()))


def test_every_kind_reads_back_as_its_type_and_empty_cells_keep_their_place():
    book = written(
        [
            (
                1,
                "友 & <b>",
                Decimal("12.50"),
                0.25,
                True,
                datetime(2027, 2, 2, 16, 0, 30, tzinfo=UTC),
                date(2027, 2, 3),
            ),
            (2, None, None, None, False, None, None),
            (3, "last", Decimal("-1.05"), None, None, 46421.5, date(1999, 12, 31)),
        ]
    )
    sheet = book.active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == tuple(HEADERS)
    assert rows[1] == (1, "友 & <b>", 12.5, 0.25, True, datetime(2027, 2, 3, 0, 0, 30), datetime(2027, 2, 3))
    assert rows[2] == (2, None, None, None, False, None, None)
    assert rows[3][:3] == (3, "last", -1.05)
    assert rows[3][5] == datetime(2027, 2, 3, 12, 0)  # a serial day number passed as it is
    assert sheet["C2"].number_format == "0.00"
    assert sheet.freeze_panes == "A2"


def test_characters_xml_forbids_are_dropped_and_long_text_cut():
    book = written(
        [
            (1, "bell\x07 and tab\tand\nnewline\uffff", None, None, None, None, None),
            (2, "x" * 40_000, *[None] * 5),
        ]
    )
    rows = list(book.active.iter_rows(values_only=True))
    assert rows[1][1] == "bell and tab\tand\nnewline"
    assert len(rows[2][1]) == xlsx.MAX_CELL_CHARS


def test_rows_beyond_a_sheets_limit_continue_on_the_next_sheet(monkeypatch):
    monkeypatch.setattr(xlsx, "MAX_ROWS", 4)  # Excel's is 1,048,576: the same path, smaller
    book = written([(n, *[None] * 6) for n in range(1, 8)])
    assert book.sheetnames == ["Report", "Sheet 2", "Sheet 3"]
    numbers = [[r[0] for r in sheet.iter_rows(min_row=2, values_only=True)] for sheet in book.worksheets]
    assert numbers == [[1, 2, 3], [4, 5, 6], [7]]
    assert next(book.worksheets[1].iter_rows(values_only=True)) == tuple(HEADERS)


def test_no_rows_is_a_workbook_with_its_header():
    book = written([])
    assert list(book.active.iter_rows(values_only=True)) == [tuple(HEADERS)]
