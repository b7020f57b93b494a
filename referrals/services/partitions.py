"""Daily partitions of the event log, created ahead of time."""

from datetime import date, timedelta

from django.db import connection
from django.utils import timezone

DAYS_AHEAD = 14


def partition_name(day: date) -> str:
    return f"referrals_event_p{day:%Y%m%d}"


def event_partitions_ensure(*, days_ahead: int = DAYS_AHEAD, start: date | None = None) -> list[str]:
    """Create the partitions from `start` (default: yesterday, UTC) to `days_ahead` days on.

    Idempotent (CREATE TABLE IF NOT EXISTS); run by a migration and daily by beat, so
    inserts never reach the default partition in normal operation.
    """
    start = start or (timezone.now().date() - timedelta(days=1))
    created = []
    with connection.cursor() as cursor:
        for offset in range(days_ahead + 2):
            day = start + timedelta(days=offset)
            name = partition_name(day)
            cursor.execute("SELECT to_regclass(%s)", [name])
            if cursor.fetchone()[0] is not None:
                continue
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF referrals_event "
                "FOR VALUES FROM (%s) TO (%s)",
                [f"{day.isoformat()} 00:00+00", f"{(day + timedelta(days=1)).isoformat()} 00:00+00"],
            )
            created.append(name)
    return created


def event_partitions_list() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname FROM pg_inherits i
            JOIN pg_class c ON c.oid = i.inhrelid
            JOIN pg_class p ON p.oid = i.inhparent
            WHERE p.relname = 'referrals_event' ORDER BY c.relname
            """
        )
        return [row[0] for row in cursor.fetchall()]
