"""Exports at scale: 1,000,000 raw events of one campaign written as CSV and as XLSX.

- export_csv: rows/s of the events report as CSV (an ExportJob run as the worker runs it:
  claim, one snapshot, BOM and header, COPY straight into the file, move into place).
  Baseline, in the same run: a raw `COPY (SELECT * …) TO STDOUT WITH (FORMAT csv)` of the
  same rows into a file. Target: ratio ≥ 0.5.
- export_peak_rss_mb: the largest peak RSS of the child processes that ran the exports
  (each export runs in a fresh process: `resource.getrusage(RUSAGE_SELF).ru_maxrss`, which
  includes Django itself). Target: ≤ 200 MB.
- export_xlsx: rows/s of the events report as XLSX (server-side cursor, streaming writer).
  Baseline: openpyxl's write-only workbook over the first 20,000 of the same rows.
  Target: ≥ 30,000 rows/s.

The events are generated with COPY … FROM STDIN (text format), spread over two days of
received times with a mix of names, sources, inviters, channels and JSON properties.
The benchmark uses a database of its own (fission_bench_export), so it never drops a
database another benchmark is using.

With `--database D --campaign SLUG` it exports a simulated campaign instead, one that
`bench.cockpit --keep` left in database D (the issue's 1M participants / ~20M events): the
campaign-local day with the most events, every row of it. The database is kept.

    .venv/bin/python -m bench.export [--events 1000000]
    .venv/bin/python -m bench.export --database fission_bench_cockpit --campaign cockpit-bench
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from bench import harness
from bench.harness import ROOT, Stack, emit, say

harness.BENCH_DB = "fission_bench_export"

NAMES = ["share", "open", "open", "register", "activate", "share", "open", "order_paid"]


def _campaign():
    from campaigns.models import Campaign

    now = datetime.now(UTC)
    return Campaign.objects.create(
        name="Export bench",
        slug="export-bench",
        status=Campaign.Status.LIVE,
        starts_at=now - timedelta(days=2),
        ends_at=now + timedelta(days=8),
        goal_target=1_000_000,
        budget_total=Decimal("100000.00"),
        time_zone="Asia/Shanghai",
    )


def _simulated(slug: str):
    """The simulated campaign and its campaign-local day with the most events received."""
    from django.db import connection

    from campaigns.models import Campaign

    campaign = Campaign.objects.get(slug=slug)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (received_at AT TIME ZONE %s)::date, count(*) FROM referrals_event "
            "WHERE campaign_id = %s GROUP BY 1 ORDER BY 2 DESC LIMIT 1",
            [campaign.time_zone, campaign.pk],
        )
        day, count = cursor.fetchone()
    say(f"exporting {campaign.slug}'s local day {day}: {count:,} events")
    return campaign, day


def generate(campaign_id: int, count: int, start: datetime) -> None:
    """COPY the events in, 50,000 lines a block."""
    from django.db import connection

    span = 2 * 86400 - 1
    block = 50_000
    started = time.perf_counter()
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(
            "COPY referrals_event (id, received_at, occurred_at, campaign_id, participant_id, name, source, "
            "inviter_id, channel_id, client_event_id, properties) FROM STDIN"
        ) as copy,
    ):
        base = start.timestamp()
        for first in range(1, count + 1, block):
            lines = []
            for i in range(first, min(first + block, count + 1)):
                at = datetime.fromtimestamp(base + (i * span) // count, UTC).isoformat()
                name = NAMES[i % len(NAMES)]
                inviter = str(i // 3) if i % 3 else "\\N"
                props = (
                    f'{{"scene": {1000 + i % 50}, "path": "pages/card/index", "amount": {i % 97}.5}}'
                    if name in ("open", "order_paid")
                    else "\\N"
                )
                lines.append(
                    f"{i}\t{at}\t{at}\t{campaign_id}\t{i // 2 + 1}\t{name}\t{1 + i % 3}\t{inviter}\t"
                    f"{1 + i % 4}\tce-{i:012d}-{i * 7919 % 100000:05d}\t{props}\n"
                )
            copy.write("".join(lines))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE referrals_event")
    say(f"{count:,} events copied in {time.perf_counter() - started:.1f} s")


def raw_copy(campaign_id: int, start: datetime, end: datetime, path: str) -> tuple[float, int]:
    """The baseline: the same rows, every column, COPY'd to a file with nothing around it."""
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor, open(path, "wb") as out:
        with cursor.cursor.copy(
            "COPY (SELECT * FROM referrals_event WHERE campaign_id = %s AND received_at >= %s "
            "AND received_at < %s) TO STDOUT WITH (FORMAT csv)",
            [campaign_id, start, end],
        ) as copy:
            for data in copy:
                out.write(data)
        rows = cursor.cursor.rowcount
    return time.perf_counter() - started, rows


def run_child(job_id: int) -> dict:
    """Run one export job in a fresh process; its time and peak RSS back."""
    out = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "bench.export", "--child", str(job_id)],
        cwd=ROOT,
        env=os.environ,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def child(job_id: int) -> None:
    import django

    django.setup()
    from reports.services import export_job_run

    started = time.perf_counter()
    if os.environ.get("BENCH_PROFILE"):  # where the time goes: cProfile stats in the temp folder
        import cProfile

        with cProfile.Profile() as profile:
            job = export_job_run(job_id=job_id)
        profile.dump_stats(os.path.join(tempfile.gettempdir(), f"export-{job.format}.prof"))
    else:
        job = export_job_run(job_id=job_id)
    elapsed = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "state": job.state,
                "error": job.error,
                "rows": job.row_count,
                "seconds": elapsed,
                "peak_rss_mb": peak_kb / 1024,
                "bytes": job.file_size,
            }
        )
    )


def openpyxl_rate(campaign_id: int, start: datetime, end: datetime, sample: int) -> float:
    """The library baseline: openpyxl write_only over the same rows as the report reads them."""
    from django.db import connection, transaction
    from openpyxl import Workbook

    started = time.perf_counter()
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Report")
    with transaction.atomic(), connection.chunked_cursor() as cursor:
        cursor.execute(
            "SELECT id, received_at, occurred_at, participant_id, name, source, inviter_id, channel_id, "
            "client_event_id, properties::text FROM referrals_event WHERE campaign_id = %s "
            "AND received_at >= %s AND received_at < %s LIMIT %s",
            [campaign_id, start, end, sample],
        )
        while rows := cursor.fetchmany(2000):
            for row in rows:
                sheet.append([v.replace(tzinfo=None) if isinstance(v, datetime) else v for v in row])
    with tempfile.NamedTemporaryFile(suffix=".xlsx") as out:
        workbook.save(out.name)
    return sample / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--child", type=int)
    parser.add_argument("--database", help="a database bench.cockpit --keep left (kept)")
    parser.add_argument("--campaign", default="cockpit-bench", help="its simulated campaign's slug")
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    if args.database:
        harness.BENCH_DB = args.database
    with tempfile.TemporaryDirectory(prefix="fission-export-bench-") as exports:
        os.environ["FISSION_EXPORTS_ROOT"] = exports
        with Stack(serve=False, keep=bool(args.database)):
            from django.contrib.auth.models import User

            from reports.catalog import local_range
            from reports.services import export_job_create

            if args.database:
                campaign, local = _simulated(args.campaign)
                day = local.isoformat()
                params = {"campaign": campaign.pk, "date_from": day, "date_to": day}
            else:
                campaign = _campaign()
                # Yesterday and today (UTC): partitions made by the migration hold them.
                midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
                start = midnight - timedelta(days=1)
                generate(campaign.pk, args.events, start)
                local = start.astimezone(campaign.tz).date()
                params = {
                    "campaign": campaign.pk,
                    "date_from": (local - timedelta(days=1)).isoformat(),
                    "date_to": (local + timedelta(days=2)).isoformat(),
                }
            start, end = local_range(campaign, params["date_from"], params["date_to"])
            user, _ = User.objects.get_or_create(username="export-bench", defaults={"is_staff": True})

            raw_path = os.path.join(exports, "raw.csv")
            raw_runs = []
            for _ in range(2):  # the faster of two, so a cold cache does not flatter us
                took, rows = raw_copy(campaign.pk, start, end, raw_path)
                assert args.database or rows == args.events, rows
                raw_runs.append(took)
            args.events = rows
            raw_rate = args.events / min(raw_runs)
            say(f"raw COPY: {raw_rate:,.0f} rows/s ({os.path.getsize(raw_path) / 1e6:.0f} MB)")

            results = {}
            for fmt in ("csv", "xlsx"):
                job = export_job_create(report="events", parameters=params, format=fmt, requester=user)
                result = run_child(job.pk)
                assert result["state"] == "done", result
                assert result["rows"] == args.events, result
                results[fmt] = result
                say(
                    f"{fmt}: {result['rows'] / result['seconds']:,.0f} rows/s, "
                    f"{result['bytes'] / 1e6:.0f} MB, peak RSS {result['peak_rss_mb']:.0f} MB"
                )
            csv_rate = args.events / results["csv"]["seconds"]
            emit(
                "export_csv",
                csv_rate,
                "rows/s",
                "raw COPY TO STDOUT rows/s",
                raw_rate,
                rows=args.events,
                seconds=round(results["csv"]["seconds"], 2),
                megabytes=round(results["csv"]["bytes"] / 1e6, 1),
            )
            emit(
                "export_peak_rss_mb",
                max(r["peak_rss_mb"] for r in results.values()),
                "MB",
                csv_mb=round(results["csv"]["peak_rss_mb"], 1),
                xlsx_mb=round(results["xlsx"]["peak_rss_mb"], 1),
                rows=args.events,
            )
            sample = min(20_000, args.events)
            emit(
                "export_xlsx",
                args.events / results["xlsx"]["seconds"],
                "rows/s",
                f"openpyxl write_only rows/s ({sample:,} rows)",
                openpyxl_rate(campaign.pk, start, end, sample),
                rows=args.events,
                seconds=round(results["xlsx"]["seconds"], 2),
                megabytes=round(results["xlsx"]["bytes"] / 1e6, 1),
            )


if __name__ == "__main__":
    main()
