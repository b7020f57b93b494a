"""Bulk mode: the rows the services would write for the same actions, loaded with COPY.

For benchmark scale (a million participants, tens of millions of events in minutes). The
actions are the service player's (simulator.actions); each becomes the rows its service
writes: participant_login a participant, share_link_get_or_create a share link,
share_link_open a ShareOpen and an `open` event, campaign_join a Referral and a `join`
event, events_ingest and server_events_ingest their events (identity and attribution
resolved as `attribute()` does) and a receipt each. Valid marks follow
referral_mark_valid's rule (the campaign's definition, inside the campaign, after the
join, within the time limit).

What differs from service mode, on purpose: ids come from the same sequences in another
order (events are loaded hour by hour of their receipt, so event ids still rise with the
time received, as in production; within an hour they follow the plan); share-link
codes and session keys are random either way; receipts are written only for events
received within the receipt retention (older ones the hourly prune would already have
removed); rewards and fraud scoring are left to the settle step, as in service mode.
"""

import secrets
import tempfile
import time
from datetime import UTC, datetime

import orjson
from django.conf import settings
from django.db import connection, transaction

from campaigns.models import Campaign
from referrals.models import Event
from referrals.services.events import RECEIPT_KEEP
from referrals.services.server_events import SERVER_PREFIX

from .actions import SHARE_LAG, member_actions, open_actions
from .model import Model, Plan, mix

TABLES = {
    "participant": "referrals_participant (id, app_id, openid, unionid, nickname, avatar, profile_version, "
    "session_key, first_seen_at, first_device_id, first_ip, first_user_agent, last_login_at, "
    "token_version, is_blocked)",
    "link": "referrals_sharelink (id, code, campaign_id, sharer_id, channel_id, created_at)",
    "open": "referrals_shareopen (id, link_id, opener_id, opened_at, ip, device_id, user_agent, "
    "client_event_id)",
    "referral": "referrals_referral (id, campaign_id, invitee_id, inviter_id, root_id, link_id, channel_id, "
    "open_id, depth, attribution, status, joined_at, joined_ip, joined_device_id, valid_at, valid_event)",
    "event": "referrals_event (received_at, occurred_at, campaign_id, participant_id, name, source, "
    "inviter_id, channel_id, client_event_id, properties)",
    "receipt": "referrals_eventreceipt (participant_id, client_event_id, received_at, batch_key)",
}
SEQUENCES = {
    "participant": "referrals_participant",
    "link": "referrals_sharelink",
    "open": "referrals_shareopen",
}
SEQUENCES["referral"] = "referrals_referral"
BLOCK = 10_000
CLIENT, SERVER, SYSTEM = Event.Source.CLIENT.value, Event.Source.SERVER.value, Event.Source.SYSTEM.value


def ts(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


def _n(value) -> str:
    return "\\N" if value is None else str(value)


def _json(value) -> str:
    return "\\N" if value is None else orjson.dumps(value).decode().replace("\\", "\\\\")


class Ids:
    """Ids from the table's own sequence, fetched a block at a time (gaps are harmless)."""

    def __init__(self, cursor, table: str):
        self.cursor, self.table, self.free = cursor, table, []

    def __call__(self) -> int:
        if not self.free:
            self.cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                [self.table, BLOCK],
            )
            self.free = [row[0] for row in self.cursor.fetchall()][::-1]
        return self.free.pop()


class Writer:
    def __init__(self, sim: Model, plan: Plan, campaign: Campaign, cursor, *, now: datetime):
        self.sim, self.plan, self.campaign = sim, plan, campaign
        self.cid = campaign.pk
        self.ids = {kind: Ids(cursor, table) for kind, table in SEQUENCES.items()}
        # the rows wait in temporary files until every table's are known (parents first)
        self.files = {
            kind: tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115
            for kind in TABLES
            if kind != "event"
        }
        self.event_hours: dict[int, object] = {}  # hour received → its event rows
        self.wall = now.isoformat()
        self.receipts_from = (now - RECEIPT_KEEP).timestamp()
        self.channels = dict(campaign.channels.values_list("code", "pk"))
        self.people: dict[str, int] = {}
        self.links: dict[
            tuple[int, str], tuple[int, str, int | None, int]
        ] = {}  # → id, code, channel, sharer
        self.member_pid: dict[int, int] = {}
        self.roots: dict[int, tuple[int, int]] = {}  # member number → (root participant, depth)
        self.membership: dict[int, tuple[int | None, int | None]] = {}  # participant → (inviter, channel)
        self.app_id = settings.WECHAT_APP_ID
        self.counts = dict.fromkeys(TABLES, 0)
        starts, ends = campaign.starts_at.timestamp(), campaign.ends_at.timestamp()
        self.window = (starts, ends, (campaign.valid_within_hours or 0) * 3600)

    def row(self, kind: str, line: str) -> None:
        self.files[kind].write(line)
        self.counts[kind] += 1

    def event(self, pid, name, source, cid, t, received, props, batch_key, membership=None) -> None:
        inviter, channel = membership if membership is not None else self.membership.get(pid, (None, None))
        # By the hour received: COPY takes them hour by hour, so event ids rise with the time
        # received, as they do when events arrive live (the fold's BRIN scan on id relies on it).
        hour = int(received // 3600)
        bucket = self.event_hours.get(hour)
        if bucket is None:
            bucket = self.event_hours[hour] = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115
        bucket.write(
            f"{ts(received)}\t{ts(t)}\t{self.cid}\t{pid}\t{name}\t{source}\t{_n(inviter)}\t{_n(channel)}\t"
            f"{cid}\t{_json(props)}\n",
        )
        self.counts["event"] += 1
        if received >= self.receipts_from:
            self.row("receipt", f"{pid}\t{cid}\t{ts(received)}\t{batch_key}\n")

    def login(self, name, device, ip, ua, t) -> None:
        if name in self.people:
            return
        pid = self.people[name] = self.ids["participant"]()
        self.row(
            "participant",
            f"{pid}\t{self.app_id}\to_demo_{name}\tu_demo_{name}\t\t\t1\t{secrets.token_urlsafe(18)}\t"
            f"{self.wall}\t{device}\t{ip}\t{ua}\t{self.wall}\t1\tf\n",
        )

    def open(self, name, sharer, channel, cid, device, ip, ua, t) -> int:
        link_id, code, channel_id, sharer_pid = self.links[(sharer, channel)]
        pid = self.people[name]
        open_id = self.ids["open"]()
        self.row("open", f"{open_id}\t{link_id}\t{pid}\t{ts(t)}\t{ip}\t{device}\t{ua}\t{cid}\n")
        self.event(pid, "open", SYSTEM, f"#open:{cid}", t, t, {"code": code}, "", (sharer_pid, channel_id))
        return open_id

    def share(self, member, channel, cid, t) -> None:
        key = (member, channel)
        if key not in self.links:
            link_id = self.ids["link"]()
            code = _code(self.plan.params.seed, self.cid, member, channel)
            channel_id = self.channels[channel]
            sharer = self.member_pid[member]
            self.links[key] = (link_id, code, channel_id, sharer)
            self.row("link", f"{link_id}\t{code}\t{self.cid}\t{sharer}\t{channel_id}\t{self.wall}\n")
        _, code, _, sharer = self.links[key]
        props = {"channel": channel, "code": code}
        self.event(sharer, "share", CLIENT, cid, t, t + SHARE_LAG, props, cid)

    def member(self, m) -> None:
        open_id = None
        referral = None
        valid = None
        campaign = self.campaign
        for action in member_actions(self.sim, self.plan, m):
            kind, t = action[0], action[1]
            if kind == "login":
                self.login(*action[2:], t)
            elif kind == "open":
                open_id = self.open(*action[2:], t)
            elif kind == "join":
                _, _, name, sharer, channel, device, ip = action
                pid = self.member_pid[m.n] = self.people[name]
                if sharer >= 0:
                    link_id, code, channel_id, inviter = self.links[(sharer, channel)]
                    root, depth = self.roots[sharer]
                    attribution = {"rule": "open_within_window", "open_id": open_id, "code": code}
                else:
                    link_id, channel_id, inviter, root, depth = None, self.channels[channel], None, pid, -1
                    attribution = {"rule": "no_code"}
                self.roots[m.n] = (root, depth + 1)
                self.membership[pid] = (inviter, channel_id)
                referral = [
                    pid,
                    inviter,
                    root,
                    link_id,
                    channel_id,
                    open_id,
                    depth + 1,
                    attribution,
                    t,
                    ip,
                    device,
                ]
                if campaign.valid_event_name == "join":
                    valid = (t, "join")
                self.event(pid, "join", SYSTEM, f"#join:{self.cid}", t, t, {"rule": attribution["rule"]}, "")
            elif kind == "share":
                self.share(*action[3:], t)
            elif kind == "client":
                _, received, name, batch_key, batch = action
                pid = self.people[name]
                for cid, type_, when, props in batch:
                    self.event(pid, type_, CLIENT, cid, when, received, props, batch_key)
            elif kind == "server":
                _, received, name, batch_key, batch = action
                pid = self.people[name]
                for cid, type_, when, props in batch:
                    self.event(pid, type_, SERVER, SERVER_PREFIX + cid, when, received, props, batch_key)
                    if valid is None and self._makes_valid(type_, props, when, referral[8]):
                        valid = (when, type_)
        pid, inviter, root, link_id, channel_id, open_id, depth, attribution, joined, ip, device = referral
        status, valid_at, valid_event = ("valid", ts(valid[0]), valid[1]) if valid else ("joined", None, "")
        self.row(
            "referral",
            f"{self.ids['referral']()}\t{self.cid}\t{pid}\t{_n(inviter)}\t{root}\t{_n(link_id)}\t{_n(channel_id)}\t"
            f"{_n(open_id)}\t{depth}\t{_json(attribution)}\t{status}\t{ts(joined)}\t{ip}\t{device}\t"
            f"{_n(valid_at)}\t{valid_event}\n",
        )

    def _makes_valid(self, name, props, when, joined) -> bool:
        """referral_mark_valid's rule: the campaign's definition, inside the campaign, after
        joining and within the time limit."""
        starts, ends, within = self.window
        if not self.campaign.event_makes_valid(event_name=name, properties=props or {}):
            return False
        return starts <= when < ends and joined <= when and (not within or when <= joined + within)

    def other_open(self, o) -> None:
        t = o.t
        for action in open_actions(self.sim, self.plan, o):
            if action[0] == "login":
                self.login(*action[2:], t)
            else:
                self.open(*action[2:], t)


def _code(seed: int, campaign_id: int, member: int, channel: str) -> str:
    """A 16-character URL-safe code like share_link_get_or_create's (seeded, not secret:
    simulated data only)."""
    import base64

    raw = mix(seed, campaign_id, member, channel).to_bytes(8, "big") + mix(
        seed, "code", member, channel
    ).to_bytes(8, "big")
    return base64.urlsafe_b64encode(raw[:12]).decode()


def write_bulk(sim: Model, plan: Plan, campaign: Campaign, *, now: datetime, progress=None) -> dict[str, int]:
    """Write the plan with COPY, in one transaction. Refuses a campaign with participants."""
    say = progress or (lambda message: None)
    from referrals.models import Referral

    if Referral.objects.filter(campaign=campaign).exists():
        raise ValueError(
            f"campaign {campaign.slug} already has participants: bulk mode writes only into an empty one"
        )
    with transaction.atomic(), connection.cursor() as cursor:
        writer = Writer(sim, plan, campaign, cursor, now=now)
        started = time.perf_counter()
        for i, m in enumerate(plan.members, 1):
            writer.member(m)
            if i % 100_000 == 0:
                say(f"rows of {i} participants generated")
        for o in plan.opens:
            writer.other_open(o)
        say(
            "rows generated: "
            + ", ".join(f"{k} {v}" for k, v in writer.counts.items())
            + f" in {time.perf_counter() - started:.1f} s"
        )
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        raw = cursor.cursor
        for kind, columns in TABLES.items():
            started = time.perf_counter()
            if kind == "event":
                files = [writer.event_hours[hour] for hour in sorted(writer.event_hours)]
            else:
                files = [writer.files[kind]]
            with raw.copy(f"COPY {columns} FROM STDIN") as copy:
                for f in files:
                    f.seek(0)
                    while chunk := f.read(1 << 20):
                        copy.write(chunk)
                    f.close()
            say(f"copied {writer.counts[kind]} {kind} rows in {time.perf_counter() - started:.1f} s")
        # Summarize the log's BRIN ranges, as autovacuum does soon after a live load (an
        # unsummarized range matches every scan: the fold would read the campaign whole).
        cursor.execute(
            "SELECT sum(brin_summarize_new_values(i.indexrelid)) FROM pg_index i "
            "JOIN pg_inherits h ON h.inhrelid = i.indrelid JOIN pg_class x ON x.oid = i.indexrelid "
            "JOIN pg_am a ON a.oid = x.relam "
            "WHERE h.inhparent = 'referrals_event'::regclass AND a.amname = 'brin'"
        )
        for table in (
            "referrals_participant",
            "referrals_sharelink",
            "referrals_shareopen",
            "referrals_referral",
        ):
            cursor.execute(f"ANALYZE {table}")
    return writer.counts
