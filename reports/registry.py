"""The report registry: what each report asks for, what columns it has, and how its rows come.

A report is a definition (parameters, columns, a row iterator); writing it as CSV or XLSX is
the formatter's business (reports.writers). Reports are registered in reports.catalog.

Parameters are stored on an ExportJob as JSON and cleaned here, so an admin form, a
scheduled report and a test all go through one validation. A row iterator gets the cleaned
parameters (campaign as an id, dates as `date`) and yields tuples in column order; it must
stream (chunked iteration or COPY), never build a list of a large queryset.
"""

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta

from config.errors import ApplicationError

PARAM_KINDS = {"campaign", "date", "choice", "choices", "names", "bool"}
COLUMN_KINDS = {"str", "int", "decimal", "float", "datetime", "date", "bool"}
RELATIVE_DAY = re.compile(r"^today(?:-(\d{1,3}))?$")


@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # one of PARAM_KINDS
    label: str = ""
    required: bool = True
    choices: tuple[tuple[str, str], ...] = ()
    help: str = ""

    def __post_init__(self):
        assert self.kind in PARAM_KINDS, self.kind


@dataclass(frozen=True)
class Column:
    name: str
    kind: str = "str"  # one of COLUMN_KINDS; XLSX writes numbers and dates as such

    def __post_init__(self):
        assert self.kind in COLUMN_KINDS, self.kind


@dataclass
class Context:
    """What a row iterator gets besides its parameters: a way to report how far it is."""

    progress: Callable[[int, int | None], None] = lambda done, total: None
    # Set by the iterator when it learns it: the campaign's zone that the times are shown in.
    time_zone: str = "UTC"


@dataclass(frozen=True)
class Report:
    name: str
    title: str
    description: str
    params: tuple[Param, ...]
    columns: tuple[Column, ...] | Callable[[dict], tuple[Column, ...]]
    rows: Callable[[dict, Context], Iterable[tuple]]
    # CSV fast path: (sql, params) for `COPY (sql) TO STDOUT WITH (FORMAT csv, HEADER)`; the SQL
    # must produce exactly the columns above, already formatted for a spreadsheet.
    copy_sql: Callable[[dict], tuple[str, list]] | None = None
    # XLSX fast path: rows as `rows` gives them, except that times may come as Excel serial day
    # numbers (floats) in the campaign's zone, computed by the database.
    xlsx_rows: Callable[[dict, Context], Iterable[tuple]] | None = None
    # For a progress bar: an estimate of the rows (cheap; may be None).
    estimate: Callable[[dict], int | None] | None = None
    tags: tuple[str, ...] = field(default=())

    def columns_for(self, params: dict) -> tuple[Column, ...]:
        return self.columns(params) if callable(self.columns) else self.columns

    def iter_rows(self, params: dict, context: Context, *, xlsx: bool = False) -> Iterator[tuple]:
        if xlsx and self.xlsx_rows is not None:
            return iter(self.xlsx_rows(params, context))
        return iter(self.rows(params, context))

    def clean(self, raw: dict, *, relative_dates: bool = False, today: date | None = None) -> dict:
        """Validate parameters and return them as JSON values (ids, ISO dates, lists of strings).

        `relative_dates` lets dates be "today", "yesterday" or "today-N" (scheduled reports);
        they are kept as written unless `today` is given, when they are resolved against it.
        Raises ApplicationError("parameters_invalid") with the fields at fault.
        """
        if not isinstance(raw, dict):
            raise ApplicationError("parameters_invalid", "Parameters must be a JSON object.")
        known = {p.name for p in self.params}
        errors = {name: "Not a parameter of this report." for name in raw if name not in known}
        cleaned = {}
        for param in self.params:
            value = raw.get(param.name)
            if value in (None, "", []):
                if param.required:
                    errors[param.name] = "Required."
                continue
            try:
                cleaned[param.name] = _clean_value(param, value, relative_dates=relative_dates, today=today)
            except ValueError as exc:
                errors[param.name] = str(exc)
        if not errors and "date_from" in cleaned and "date_to" in cleaned:
            start, end = cleaned["date_from"], cleaned["date_to"]
            if _is_iso(start) and _is_iso(end) and start > end:
                errors["date_to"] = "Must not be before the start date."
        if errors:
            detail = "; ".join(f"{name}: {message}" for name, message in errors.items())
            raise ApplicationError(
                "parameters_invalid", f"The parameters of {self.name} are invalid ({detail}).", fields=errors
            )
        return cleaned


def _is_iso(value: str) -> bool:
    return bool(re.match(r"^\d{4}-\d{2}-\d{2}$", value))


def resolve_day(value: str, today: date) -> str:
    if value == "yesterday":
        return (today - timedelta(days=1)).isoformat()
    match = RELATIVE_DAY.match(value)
    if match:
        return (today - timedelta(days=int(match.group(1) or 0))).isoformat()
    return value


def _clean_value(param: Param, value, *, relative_dates: bool, today: date | None):
    if param.kind == "campaign":
        from campaigns.models import Campaign

        try:
            pk = int(value)
        except (TypeError, ValueError):
            raise ValueError("Not a campaign id.") from None
        if not Campaign.objects.filter(pk=pk).exists():
            raise ValueError(f"There is no campaign {pk}.")
        return pk
    if param.kind == "date":
        text = str(value)
        if relative_dates and (text == "yesterday" or RELATIVE_DAY.match(text)):
            return resolve_day(text, today) if today else text
        try:
            return date.fromisoformat(text).isoformat()
        except ValueError:
            raise ValueError("Not a date (YYYY-MM-DD).") from None
    if param.kind == "choice":
        allowed = {key for key, _ in param.choices}
        if str(value) not in allowed:
            raise ValueError(f"Must be one of {', '.join(sorted(allowed))}.")
        return str(value)
    if param.kind == "choices":
        values = value if isinstance(value, list) else [value]
        allowed = {key for key, _ in param.choices}
        wrong = [str(v) for v in values if str(v) not in allowed]
        if wrong:
            raise ValueError(f"Unknown: {', '.join(wrong)} (allowed: {', '.join(sorted(allowed))}).")
        return sorted({str(v) for v in values})
    if param.kind == "names":
        values = value if isinstance(value, list) else str(value).split(",")
        names = sorted({str(v).strip() for v in values if str(v).strip()})
        if any(len(n) > 64 for n in names):
            raise ValueError("An event name is at most 64 characters.")
        return names
    if param.kind == "bool":
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("1", "true", "yes", "on"):
            return True
        if str(value).lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError("Must be true or false.")
    raise ValueError(f"Unknown parameter kind {param.kind}.")


_REGISTRY: dict[str, Report] = {}


def register(report: Report) -> Report:
    assert report.name not in _REGISTRY, f"report {report.name} registered twice"
    _REGISTRY[report.name] = report
    return report


def _load() -> None:
    from . import analytics_reports, catalog  # noqa: F401 - they register the reports


def report_get(name: str) -> Report:
    _load()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ApplicationError("report_unknown", f"There is no report called {name!r}.") from None


def report_list() -> list[Report]:
    _load()
    return sorted(_REGISTRY.values(), key=lambda r: r.title)
