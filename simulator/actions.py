"""What each simulated person does, as a list of actions both writers take: the service
player calls the real services in time order; the bulk writer turns the same actions into
the rows those services write. One description, so the two modes cannot drift apart.

Actions are tuples whose first two items are the kind and the simulated time:

    ("login", t, name, device, ip, ua)
    ("open",  t, name, sharer number, channel, client event id, device, ip, ua)
    ("join",  t, name, sharer number or -1, channel, device, ip)
    ("share", t, name, member number, channel, client event id)   link + the share event
    ("client", received, name, batch key, [(id, type, t, properties)])
    ("server", received, name, batch key, [(id, type, t, properties)])
"""

from .model import Member, Model, Open, Plan

SHARE_LAG = 0.5  # the mini program reports a share this long after it happened
SERVER_LAG = 1.0  # the business backend reports its events this long after they happened


def identity(sim: Model, plan: Plan, member: Member) -> tuple[str, str, str]:
    """(device, IP, user agent): a ring's accounts use one farm phone on the leader's network."""
    if member.ring < 0:
        return sim.identity(member.key)
    leader = plan.members[plan.rings[member.ring][0]]
    _, ip, ua = sim.identity(leader.key)
    return f"farm-{plan.campaign.id}-{leader.key:016x}", ip, ua


def member_actions(sim: Model, plan: Plan, member: Member) -> list[tuple]:
    name = plan.name(member)
    device, ip, ua = identity(sim, plan, member)
    if member.parent < 0:
        out = [
            ("login", member.t_join, name, device, ip, ua),
            ("join", member.t_join, name, -1, member.channel, device, ip),
        ]
    else:
        out = [
            ("login", member.t_open, name, device, ip, ua),
            (
                "open",
                member.t_open,
                name,
                member.parent,
                member.channel,
                f"o{member.open_key:x}",
                device,
                ip,
                ua,
            ),
            ("join", member.t_join, name, member.parent, member.channel, device, ip),
        ]
    shares = member.shares
    if shares is None:
        shares, _ = sim.shares_and_opens(member, force_share=member.leader_of >= 0)
    if member.leader_of >= 0:
        shares = sorted([*shares, sim.ring_share(member)])
    for i, (t, code) in enumerate(shares):
        if t < plan.end:
            out.append(("share", t, name, member.n, code, f"sh{member.key:x}-{i}"))
    detail = sim.detail(member)
    for d, (received, events) in enumerate(detail["client"]):
        batch = [(f"e{member.key:x}-{d}-{k}", kind, t, None) for k, (kind, t) in enumerate(events)]
        out.append(("client", received, name, f"b{member.key:x}-{d}", batch))
    for k, (tag, t, kind, props) in enumerate(detail["server"]):
        out.append(
            (
                "server",
                t + SERVER_LAG,
                name,
                f"s{member.key:x}-{k}",
                [(f"{tag}{member.key:x}-{k}", kind, t, props)],
            )
        )
    return out


def open_actions(sim: Model, plan: Plan, o: Open) -> list[tuple]:
    """An open that did not join: a visitor who logs in, looks and leaves, or the sharer's own
    inviter looking at the card (already a participant)."""
    cid = f"o{o.key:x}"
    if o.by_inviter:
        inviter = plan.members[plan.members[o.sharer].parent]
        device, ip, ua = identity(sim, plan, inviter)
        return [("open", o.t, plan.name(inviter), o.sharer, o.channel, cid, device, ip, ua)]
    name = f"{plan.prefix}v{o.key:x}"
    device, ip, ua = sim.identity(o.key)
    return [
        ("login", o.t, name, device, ip, ua),
        ("open", o.t, name, o.sharer, o.channel, cid, device, ip, ua),
    ]
