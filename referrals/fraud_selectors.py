"""Reads for a fraud case's evidence page: the participant's timeline in the campaign and
the picture of their identity ring. Every query is bounded (an index or a limit), so the
page stays fast however big the campaign grows."""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection

from referrals.models import Referral, Reward, RewardTransition, ShareLink, ShareOpen

# Events from the log: the log has no index but time (it only appends), so the page reads
# the first day after the participant joined, where a farm's pattern shows; the raw-events
# export has the rest.
EVENTS_WINDOW = timedelta(hours=24)
LIMIT = 100  # rows of each kind


@dataclass(frozen=True)
class Entry:
    at: datetime
    what: str
    detail: str


def participant_timeline(*, campaign_id: int, participant_id: int) -> list[Entry]:
    """Their opens, join, qualification, share links, events and rewards, oldest first."""
    entries: list[Entry] = []
    me = (
        Referral.objects.filter(campaign_id=campaign_id, invitee_id=participant_id)
        .values("joined_at", "inviter_id", "joined_device_id", "joined_ip", "valid_at", "valid_event")
        .first()
    )
    if me:
        via = f"invited by participant {me['inviter_id']}" if me["inviter_id"] else "not invited"
        device = f"device {me['joined_device_id'] or '–'}, IP {me['joined_ip'] or '–'}"
        entries.append(Entry(me["joined_at"], "joined", f"{via}; {device}"))
        if me["valid_at"]:
            entries.append(Entry(me["valid_at"], "became valid", me["valid_event"]))
    for opened_at, sharer, ip, device, ua in ShareOpen.objects.filter(
        opener_id=participant_id, link__campaign_id=campaign_id
    ).values_list("opened_at", "link__sharer_id", "ip", "device_id", "user_agent")[:LIMIT]:
        detail = f"participant {sharer}'s link; device {device or '–'}, IP {ip or '–'}, {ua[:60] or 'no UA'}"
        entries.append(Entry(opened_at, "opened a link", detail))
    for created_at, channel in ShareLink.objects.filter(
        campaign_id=campaign_id, sharer_id=participant_id
    ).values_list("created_at", "channel__code")[:LIMIT]:
        entries.append(Entry(created_at, "made a share link", f"channel {channel or 'none'}"))
    rewards = Reward.objects.filter(campaign_id=campaign_id, beneficiary_id=participant_id)
    for at, reward_id, source, amount, from_status, to_status, note in RewardTransition.objects.filter(
        reward__in=rewards
    ).values_list(
        "at",
        "reward_id",
        "reward__source",
        "reward__amount",
        "from_status",
        "to_status",
        "note",
    )[: LIMIT * 3]:
        change = f"{from_status} → {to_status}" if from_status else f"granted ({to_status})"
        entries.append(Entry(at, f"reward #{reward_id}", f"¥{amount} for {source}: {change} {note}".strip()))
    if me:
        entries += _events(campaign_id, participant_id, me["joined_at"])
    entries.sort(key=lambda e: e.at)
    return entries


def _events(campaign_id: int, participant_id: int, joined_at: datetime) -> list[Entry]:
    with connection.cursor() as cursor:
        # The received_at range prunes the log to its partitions of that day.
        cursor.execute(
            """
            SELECT occurred_at, name, properties FROM referrals_event
            WHERE received_at BETWEEN %s AND %s AND participant_id = %s AND campaign_id = %s
            ORDER BY occurred_at LIMIT %s
            """,
            [
                joined_at - timedelta(hours=1),
                joined_at + EVENTS_WINDOW,
                participant_id,
                campaign_id,
                LIMIT,
            ],
        )
        return [
            Entry(at, f"event “{name}”", (props or "")[:120] if isinstance(props, str) else str(props or ""))
            for at, name, props in cursor.fetchall()
        ]


@dataclass(frozen=True)
class Node:
    id: int
    x: float
    y: float
    role: str  # "case" (the case's participant), "blocked", or "member"

    @property
    def label_y(self) -> float:
        return round(self.y - 16, 1)


@dataclass(frozen=True)
class Edge:
    a: Node
    b: Node
    kind: str


def ring_picture(
    *, participant_id: int, links: list[dict], blocked: set[int], size: int = 360, most: int = 40
) -> dict:
    """A small drawing of the ring: members on a circle (the case's participant first, at
    the top), a line for each identifier two members share, coloured by its kind. The same
    ring always gives the same picture."""
    members = sorted({m for link in links for m in link["members"]})
    if participant_id in members:
        members.remove(participant_id)
        members.insert(0, participant_id)
    members = members[:most]
    radius, centre = size / 2 - 30, size / 2
    nodes = {}
    for i, member in enumerate(members):
        angle = 2 * math.pi * i / max(len(members), 1) - math.pi / 2
        role = "case" if member == participant_id else ("blocked" if member in blocked else "member")
        nodes[member] = Node(
            member,
            round(centre + radius * math.cos(angle), 1),
            round(centre + radius * math.sin(angle), 1),
            role,
        )
    edges = []
    for link in links:
        holders = [m for m in link["members"] if m in nodes]
        for i, a in enumerate(holders):
            for b in holders[i + 1 :]:
                edges.append(Edge(nodes[a], nodes[b], link["kind"]))
    return {
        "size": size,
        "nodes": list(nodes.values()),
        "edges": edges,
        "left_out": max(0, len({m for link in links for m in link["members"]}) - len(nodes)),
    }
