"""Service mode: play the plan's actions in simulated-time order through the real services
(WeChat login against a fake WeChat, share links, opens, joins, the event batch API and
the server-event API), each told the simulated time through its `now=` keyword."""

import heapq
import itertools
import logging
from contextlib import contextmanager
from datetime import UTC, datetime

from django.conf import settings

from campaigns.models import Campaign
from referrals.models import Participant, ShareLink
from referrals.services import attribution
from referrals.services.events import events_ingest
from referrals.services.participants import participant_login
from referrals.services.server_events import server_events_ingest

from .actions import SHARE_LAG, member_actions, open_actions
from .model import Model, Plan


def at(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def iso(t: float) -> str:
    return at(t).isoformat()


@contextmanager
def fake_wechat():
    """A fake WeChat on a thread that accepts `demo-<name>` codes: login is the real
    participant_login, over HTTP, without asking the real WeChat for a million codes."""
    from fakes.wechat import start_in_thread

    fake = start_in_thread(app_id=settings.WECHAT_APP_ID, secret=settings.WECHAT_APP_SECRET, demo_codes=True)
    before = settings.WECHAT_API_BASE
    settings.WECHAT_API_BASE = fake.base_url
    chatty = logging.getLogger("referrals.wechat")
    level = chatty.level
    chatty.setLevel(logging.WARNING)  # not a line per login
    try:
        yield fake
    finally:
        chatty.setLevel(level)
        settings.WECHAT_API_BASE = before
        fake.shutdown()


def actions_in_order(sim: Model, plan: Plan, *, after: float | None = None):
    """Every action of the plan, in simulated-time order (ties keep each person's order)."""
    counter = itertools.count()
    streams = []
    for member in plan.members:
        streams.append([(a[1], next(counter), a) for a in member_actions(sim, plan, member)])
    for o in plan.opens:
        streams.append([(a[1], next(counter), a) for a in open_actions(sim, plan, o)])
    for t, _, action in heapq.merge(*(sorted(s) for s in streams)):
        if after is None or t > after:
            yield action


class Player:
    def __init__(self, campaign: Campaign):
        self.campaign = campaign
        self.people: dict[str, Participant] = {}
        self.links: dict[tuple[int, str], str] = {}  # (member number, channel) → code
        self.members: dict[int, str] = {}  # member number → name

    def person(self, name: str) -> Participant:
        found = self.people.get(name)
        if found is None:
            found = self.people[name] = Participant.objects.get(
                app_id=settings.WECHAT_APP_ID, openid=f"o_demo_{name}"
            )
        return found

    def link(self, member: int, channel: str) -> str:
        code = self.links.get((member, channel))
        if code is None:  # made in an earlier run (live mode picks up where the backfill ended)
            sharer = self.person(self.members[member])
            code = ShareLink.objects.get(campaign=self.campaign, sharer=sharer, channel__code=channel).code
            self.links[(member, channel)] = code
        return code

    def do(self, action: tuple) -> None:
        kind, t = action[0], action[1]
        if kind == "login":
            _, _, name, device, ip, ua = action
            self.people[name] = participant_login(
                code=f"demo-{name}", device_id=device, ip=ip, user_agent=ua
            )["participant"]
        elif kind == "open":
            _, _, name, sharer, channel, cid, device, ip, ua = action
            attribution.share_link_open(
                code=self.link(sharer, channel),
                opener=self.person(name),
                client_event_id=cid,
                ip=ip,
                device_id=device,
                user_agent=ua,
                now=at(t),
            )
        elif kind == "join":
            _, _, name, sharer, channel, device, ip = action
            attribution.campaign_join(
                campaign=self.campaign,
                participant=self.person(name),
                code=self.link(sharer, channel) if sharer >= 0 else "",
                channel_code=channel if sharer < 0 else "",
                ip=ip,
                device_id=device,
                now=at(t),
            )
        elif kind == "share":
            _, _, name, member, channel, cid = action
            self.members[member] = name
            link, _ = attribution.share_link_get_or_create(
                campaign=self.campaign, sharer=self.person(name), channel_code=channel
            )
            self.links[(member, channel)] = link.code
            event = {
                "id": cid,
                "type": "share",
                "time": iso(t),
                "campaign": self.campaign.slug,
                "properties": {"channel": channel, "code": link.code},
            }
            events_ingest(
                participant_id=self.person(name).pk, events=[event], batch_key=cid, now=at(t + SHARE_LAG)
            )
        elif kind == "client":
            _, received, name, batch_key, batch = action
            events = [
                {"id": cid, "type": type_, "time": iso(when), "campaign": self.campaign.slug}
                | ({"properties": props} if props is not None else {})
                for cid, type_, when, props in batch
            ]
            events_ingest(
                participant_id=self.person(name).pk, events=events, batch_key=batch_key, now=at(received)
            )
        elif kind == "server":
            _, received, name, batch_key, batch = action
            events = [
                {
                    "id": cid,
                    "openid": f"o_demo_{name}",
                    "type": type_,
                    "time": iso(when),
                    "campaign": self.campaign.slug,
                    "properties": props,
                }
                for cid, type_, when, props in batch
            ]
            server_events_ingest(events=events, batch_key=batch_key, now=at(received))
        else:
            raise ValueError(f"unknown action {kind}")


def play(sim: Model, plan: Plan, campaign: Campaign, *, progress=None, after: float | None = None) -> int:
    """Call the services for every action (after `after`, if given), logging in against
    WeChat at settings.WECHAT_API_BASE (see `fake_wechat`). Returns the actions taken."""
    player = Player(campaign)
    for member in plan.members:
        player.members[member.n] = plan.name(member)
    done = 0
    for action in actions_in_order(sim, plan, after=after):
        player.do(action)
        done += 1
        if progress and done % 20000 == 0:
            progress(f"{done} actions, simulated clock at {iso(action[1])[:16]}")
    return done
