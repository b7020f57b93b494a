"""Baseline views: the least a view can do for the same request, measured in the same run.

- copy_events: a bare Django view that parses the same JSON batch and COPYs the same
  rows into a plain table, with no validation, idempotency or attribution.
- InsertOneApi: a bare DRF view that inserts one row.
"""

import json
from datetime import UTC, datetime

from django.db import connection, transaction
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework.response import Response
from rest_framework.views import APIView

PLAIN_TABLE = """
CREATE TABLE IF NOT EXISTS bench_plain_event (
    received_at timestamptz, occurred_at timestamptz, name varchar(64), client_event_id varchar(64),
    properties jsonb
)
"""


@csrf_exempt
def copy_events(request):
    events = json.loads(request.body)["events"]
    now = datetime.now(UTC)
    with (
        transaction.atomic(),
        connection.cursor() as cursor,
        cursor.cursor.copy(
            "COPY bench_plain_event (received_at, occurred_at, name, client_event_id, properties) FROM STDIN"
        ) as copy,
    ):
        for e in events:
            props = e.get("properties")
            copy.write_row((now, e["time"], e["type"], e["id"], json.dumps(props) if props else None))
    return JsonResponse({"accepted": len(events)})


class InsertOneApi(APIView):
    authentication_classes = []
    permission_classes = []

    def post(self, request):
        e = request.data["events"][0]
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO bench_plain_event (received_at, occurred_at, name, client_event_id) "
                "VALUES (now(), %s, %s, %s)",
                [e["time"], e["type"], e["id"]],
            )
        return Response({"accepted": 1})
