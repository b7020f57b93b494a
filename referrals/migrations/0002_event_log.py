"""The event log: partitioned by day on received_at, BRIN on time, receipts for idempotency."""

from django.db import migrations

CREATE = """
CREATE SEQUENCE referrals_event_id_seq AS bigint;
CREATE TABLE referrals_event (
    id bigint NOT NULL DEFAULT nextval('referrals_event_id_seq'),
    received_at timestamptz NOT NULL,
    occurred_at timestamptz NOT NULL,
    campaign_id integer,
    participant_id bigint,
    name varchar(64) NOT NULL,
    source smallint NOT NULL,
    inviter_id bigint,
    channel_id integer,
    client_event_id varchar(80) NOT NULL,
    properties jsonb
) PARTITION BY RANGE (received_at);
ALTER SEQUENCE referrals_event_id_seq OWNED BY referrals_event.id;
-- Rows arrive in time order, so a BRIN index finds a time range at a tiny fraction of a btree's size.
CREATE INDEX referrals_event_received_brin ON referrals_event USING brin (received_at);
-- Catches anything outside the created partitions, so an insert never fails for lack of one.
CREATE TABLE referrals_event_default PARTITION OF referrals_event DEFAULT;

CREATE TABLE referrals_eventreceipt (
    participant_id bigint NOT NULL,
    client_event_id varchar(80) NOT NULL,
    received_at timestamptz NOT NULL,
    -- Which batch took it: a retry of that same batch is answered "accepted" again.
    batch_key varchar(64) NOT NULL DEFAULT '',
    PRIMARY KEY (participant_id, client_event_id)
);
CREATE INDEX referrals_eventreceipt_received ON referrals_eventreceipt USING brin (received_at);
"""

DROP = """
DROP TABLE IF EXISTS referrals_eventreceipt;
DROP TABLE IF EXISTS referrals_event CASCADE;
DROP SEQUENCE IF EXISTS referrals_event_id_seq;
"""


def create_partitions(apps, schema_editor):
    from referrals.services.partitions import event_partitions_ensure

    event_partitions_ensure()


class Migration(migrations.Migration):
    dependencies = [("referrals", "0001_initial")]

    operations = [
        migrations.RunSQL(CREATE, DROP),
        migrations.RunPython(create_partitions, migrations.RunPython.noop),
    ]
