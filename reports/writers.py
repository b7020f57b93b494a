"""Formatters: rows of a report -> a CSV (UTF-8 with BOM) or XLSX file, streamed.

Each writer takes an open binary file, the header and the column kinds, and an iterator of
rows; it writes as it reads and returns how many rows it wrote.
"""

import csv
import io
from collections.abc import Callable, Iterable
from datetime import UTC

from .xlsx import XlsxWriter

BOM = "\ufeff".encode()  # Excel reads a CSV as UTF-8 only with it
# A cell starting with one of these is a formula to Excel: a nickname like "=HYPERLINK(…)"
# would run on the analyst's machine (CSV injection). Such text gets a leading apostrophe.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
COPY_BUFFER_BYTES = 1 << 20


def csv_text(value) -> str:
    s = value if type(value) is str else str(value)
    return "'" + s if s.startswith(FORMULA_START) else s


def _csv_function(kind: str, tz) -> Callable | None:
    """value -> what the CSV holds; None where the csv module's own rendering is right."""
    if kind == "str":
        return csv_text
    if kind == "datetime":
        tz = tz or UTC
        return lambda v: (v.astimezone(tz).replace(tzinfo=None) if v.tzinfo else v).isoformat(
            sep=" ", timespec="seconds"
        )
    if kind == "date":
        return lambda v: v.isoformat()
    if kind == "decimal":
        return lambda v: f"{v:f}"
    if kind == "bool":
        return lambda v: "true" if v else "false"
    return None  # int, float


def write_csv(fileobj, headers: list[str], kinds: list[str], rows: Iterable[tuple], *, tz=None) -> int:
    fileobj.write(BOM)
    text = io.TextIOWrapper(fileobj, encoding="utf-8", newline="", write_through=False)
    writer = csv.writer(text)
    writer.writerow(headers)
    functions = [_csv_function(kind, tz) for kind in kinds]
    converted = [(i, f) for i, f in enumerate(functions) if f is not None]
    count = 0
    for row in rows:
        if converted:
            row = list(row)
            for i, f in converted:
                if row[i] is not None:
                    row[i] = f(row[i])
        writer.writerow(row)
        count += 1
    text.flush()
    text.detach()  # leave the file open for the caller
    return count


def write_csv_copy(
    fileobj, headers: list[str], cursor, sql: str, args: list, *, progress: Callable[[int], None]
) -> int:
    """`COPY (sql) TO STDOUT` straight into the file after the BOM and header: the database
    formats the CSV, Python only moves bytes. The exact row count is COPY's own."""
    fileobj.write(BOM)
    header = io.StringIO()
    csv.writer(header, lineterminator="\n").writerow(headers)  # COPY ends its lines with \n too
    fileobj.write(header.getvalue().encode())
    lines = 0
    buffer = bytearray()
    with cursor.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)", args) as copy:
        for data in copy:  # one message per row: gather a megabyte before writing
            buffer += data
            if len(buffer) >= COPY_BUFFER_BYTES:
                fileobj.write(buffer)
                # Lines, not rows (a quoted value may hold a newline): only for the progress bar.
                lines += buffer.count(b"\n")
                progress(lines)
                buffer.clear()
    fileobj.write(buffer)
    return cursor.rowcount


def write_xlsx(fileobj, headers: list[str], kinds: list[str], rows: Iterable[tuple], *, tz=None) -> int:
    with XlsxWriter(fileobj, headers, kinds, tz=tz) as writer:
        return writer.write_rows(rows)
