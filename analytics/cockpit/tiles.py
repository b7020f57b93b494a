"""Shapes the selectors' answers into what a cockpit tile shows: key figures, a chart
specification (plotly.js traces as plain data, sent to the page with json_script) and the
table beside it with the same numbers, formatted for people.

No metric is computed here: every number comes from ``analytics.selectors`` as it is; this
module only chooses labels, units and order.
"""

from dataclasses import dataclass
from urllib.parse import urlencode

from django.urls import reverse

from analytics.selectors.funnel import STEPS as FUNNEL_STEPS
from analytics.selectors.retention import BASES, KINDS

from . import formatting as f
from .formatting import Cell

__all__ = ["FUNNEL_STEPS"]

EVENT_LABELS = {
    "share": "Shares",
    "open": "Link opens",
    "join": "Joins",
    "valid": "Valid",
    "order_paid": "Orders paid",
    "order_refunded": "Orders refunded",
    "resume_completed": "Resumes completed",
}


def event_label(name: str) -> str:
    return EVENT_LABELS.get(name) or name.replace("_", " ").capitalize()


KIND_LABELS = {
    "classic": "Classic (day N)",
    "on_or_after": "On or after day N",
    "cumulative": "Within N days",
}
BASIS_LABELS = {"calendar": "Calendar days", "rolling": "Rolling 24 h"}
SEGMENT_LABELS = {
    "loud_no_yield": (
        "Loud, no yield",
        "≥ 10 shares and no valid invitee: candidates for small per-action incentives",
    ),
    "quiet_high_yield": ("Quiet, high yield", "≤ 2 shares and ≥ 5 valid invitees: worth intensive operation"),
    "super_spreaders": ("Super-spreaders", "Top 1% of sharers by downstream valid users"),
}
FRAUD_OUTCOMES = {"none": "–", "open": "Under review", "cleared": "Cleared", "confirmed": "Confirmed fraud"}


@dataclass(frozen=True)
class RetentionOptions:
    kind: str = "classic"
    basis: str = "calendar"
    days: int = 30

    @classmethod
    def from_query(cls, query) -> "RetentionOptions":
        kind = query.get("retention", "classic")
        basis = query.get("basis", "calendar")
        return cls(kind=kind if kind in KINDS else "classic", basis=basis if basis in BASES else "calendar")


# --- building blocks ------------------------------------------------------------------
def head(text: str, num: bool = False) -> Cell:
    return Cell(text, num=num)


def chart(chart_id: str, title: str, data: list[dict], **layout) -> dict:
    return {
        "id": chart_id,
        "title": title,
        "spec": {"data": data, "layout": {"title": {"text": title}, **layout}},
    }


def table(table_id: str, caption: str, headers: list, rows: list[list[Cell]]) -> dict:
    return {
        "id": table_id,
        "caption": caption,
        "headers": [head(h) if isinstance(h, str) else h for h in headers],
        "rows": rows,
    }


def plot_time(iso: str | None) -> str | None:
    """'2027-02-03T14:05:00+08:00' -> '2027-02-03 14:05:00': plotly.js draws wall-clock
    times as given; the axis title names the campaign's time zone."""
    return iso[:19].replace("T", " ") if iso else None


def show_time(iso: str | None) -> str:
    return iso[:16].replace("T", " ") if iso else f.DASH


def time_axis(campaign) -> dict:
    return {"title": {"text": f"Time ({campaign.time_zone})"}, "type": "date"}


# --- tiles ----------------------------------------------------------------------------
def pacing(campaign, data: dict) -> dict:
    metric = campaign.get_goal_metric_display()
    alert = ""
    if data.get("alert"):
        alert = data.get("alert_text") or (
            f"Behind pace: the last 15 minutes ran at {f.rate(data['current_rate_per_min'])}, "
            f"the goal needs {f.rate(data['required_rate_per_min'])}."
        )
    series = data.get("series") or []
    x = [plot_time(p["t"]) for p in series]
    rows = [
        [
            Cell(show_time(p["t"])),
            f.num(p["count"]),
            f.num(p["target"], f.integer(p["target"])),
            f.num(p["count"] - p["target"], f"{p['count'] - p['target']:+,.0f}"),
        ]
        for p in reversed(series)
    ]
    return {
        "id": "pacing",
        "title": "Goal burn-up",
        "note": f"{metric} so far against the straight line from 0 at the start to the goal at the end. "
        f"Rates are {metric.lower()} per minute; the current rate is the mean of the last 15 "
        "complete minutes.",
        "alert": alert,
        "as_of": data.get("as_of"),
        "kpis": [
            (metric, f"{f.integer(data['count'])} / {f.integer(data['goal'])}"),
            ("Completion", f.percent(data["completion"])),
            ("Time elapsed", f.percent(data["elapsed"])),
            ("Pace index", f.decimal(data["pace_index"])),
            ("Required rate", f.rate(data["required_rate_per_min"])),
            ("Current rate (15 min)", f.rate(data["current_rate_per_min"])),
            ("Projected total", f.integer(data["projected_total"])),
            ("Projected (by hour of day)", f.integer(data["projected_total_diurnal"])),
            ("Projected finish", show_time(data["projected_finish"])),
            ("Ahead (+) / behind (−)", f.hours(data["hours_ahead"])),
        ],
        "rows": [
            {
                "chart": chart(
                    "chart-pacing",
                    f"{metric}: actual vs target",
                    [
                        {
                            "type": "scatter",
                            "mode": "lines",
                            "name": metric,
                            "x": x,
                            "y": [p["count"] for p in series],
                        },
                        {
                            "type": "scatter",
                            "mode": "lines",
                            "name": "Target line",
                            "x": x,
                            "y": [p["target"] for p in series],
                            "line": {"dash": "dash"},
                        },
                    ],
                    xaxis=time_axis(campaign),
                    yaxis={"title": {"text": f"{metric} (persons)"}, "rangemode": "tozero"},
                ),
                "table": table(
                    "table-pacing",
                    f"Hourly, newest first ({campaign.time_zone})",
                    ["Hour", head(metric, True), head("Target", True), head("Ahead / behind", True)],
                    rows,
                ),
            }
        ],
    }


def last_hour(campaign, data: dict) -> dict:
    minutes = data.get("minutes") or []
    x = [plot_time(m) for m in minutes]
    by_event = data.get("by_event") or {}
    names = list(by_event)
    totals = data.get("total") or [0] * len(minutes)
    valid = data.get("valid") or [0] * len(minutes)
    minute_rows = [
        [
            Cell(show_time(minutes[i])[11:]),
            *(f.num(by_event[name][i]) for name in names),
            f.num(totals[i]),
            f.num(valid[i]),
        ]
        for i in reversed(range(len(minutes)))
    ]
    channels = data.get("by_channel") or []
    return {
        "id": "last-hour",
        "title": "Last 60 minutes",
        "note": f"Events per minute (unit: event), the 60 complete minutes before the page was built, "
        f"{campaign.time_zone}. Valid = valid new users per minute.",
        "kpis": [
            ("Events, last 60 min", f.integer(sum(totals))),
            ("Valid new users, last 60 min", f.integer(sum(valid))),
        ],
        "rows": [
            {
                "chart": chart(
                    "chart-last-hour-events",
                    "By event type, per minute",
                    [
                        {"type": "bar", "name": event_label(name), "x": x, "y": by_event[name]}
                        for name in names
                    ],
                    barmode="stack",
                    xaxis=time_axis(campaign),
                    yaxis={"title": {"text": "Events per minute"}},
                ),
                "table": table(
                    "table-last-hour",
                    "Per minute, newest first",
                    [
                        "Minute",
                        *(head(event_label(n), True) for n in names),
                        head("All events", True),
                        head("Valid", True),
                    ],
                    minute_rows,
                ),
            },
            {
                "chart": chart(
                    "chart-last-hour-channels",
                    "By channel, per minute",
                    [
                        {
                            "type": "scatter",
                            "mode": "lines",
                            "name": c["name"] or c["code"],
                            "x": x,
                            "y": c["counts"],
                        }
                        for c in channels
                    ],
                    xaxis=time_axis(campaign),
                    yaxis={"title": {"text": "Events per minute"}},
                ),
                "table": table(
                    "table-last-hour-channels",
                    "By channel, last 60 minutes",
                    ["Channel", head("Events", True), head("Peak per minute", True)],
                    [
                        [
                            Cell(c["name"] or c["code"]),
                            f.num(sum(c["counts"])),
                            f.num(max(c["counts"], default=0)),
                        ]
                        for c in channels
                    ],
                ),
            },
        ],
    }


def funnel(campaign, data: dict) -> dict:
    steps = data.get("steps") or []
    label = data.get("estimate_label", "exact")
    rows = []
    for i, s in enumerate(steps):
        export = ""
        if i > 0:
            export = reverse("admin:campaigns_campaign_dropoffs", args=[campaign.pk, s["step"]])
        rows.append(
            [
                Cell(s["label"], title=f"unit: {s['unit']}"),
                f.num(s["count"]),
                f.num(s["step_conversion"], f.percent(s["step_conversion"])),
                f.num(s["overall_conversion"], f.percent(s["overall_conversion"])),
                f.num(s["drop_off"], f.percent(s["drop_off"])),
                f.num(s["median_minutes"], f.duration(_seconds(s["median_minutes"]))),
                f.num(s["p90_minutes"], f.duration(_seconds(s["p90_minutes"]))),
                Cell(s["estimate_label"]),
                Cell(
                    "CSV" if export else f.DASH,
                    href=export,
                    title=f"Who reached the step before {s['label']} but not it",
                ),
            ]
        )
    return {
        "id": "funnel",
        "title": "Funnel",
        "note": "Share → open → join → valid → retained D7, ordered, all within "
        f"{data.get('window_hours')} h of the first step. Unit: participant (share → open counts "
        "openers per sharer). Times are from the previous step.",
        "kpis": [
            ("Last effective users (new users × each step)", f.integer(data.get("last_effective_users"))),
            ("That estimate is", "exact" if label == "exact" else "a forecast"),
        ],
        "estimate_label": label,
        "rows": [
            {
                "chart": chart(
                    "chart-funnel",
                    "Participants reaching each step",
                    [
                        {
                            "type": "funnel",
                            "y": [s["label"] for s in steps],
                            "x": [s["count"] for s in steps],
                            "textinfo": "value+percent initial",
                        }
                    ],
                    yaxis={"automargin": True},
                ),
                "table": table(
                    "table-funnel",
                    "Steps (drop-off lists as CSV)",
                    [
                        "Step",
                        head("Participants", True),
                        head("Step conversion", True),
                        head("Overall", True),
                        head("Drop-off", True),
                        head("Median time", True),
                        head("p90 time", True),
                        "Exact / forecast",
                        "Drop-offs",
                    ],
                    rows,
                ),
            }
        ],
    }


def _seconds(minutes):
    return None if minutes is None else float(minutes) * 60


def dropoff_rows(campaign, rows):
    """Header, then one list per participant of `funnel_dropoffs` (times in the campaign's zone)."""
    yield ["participant_id", "joined_at", "first_open_at", "valid_at", "channel_id", "referrer_id", "shares"]
    for r in rows:
        yield [
            r["participant_id"],
            r["joined_at"] or "",
            r["first_open_at"] or "",
            r["valid_at"] or "",
            r["channel_id"] or "",
            r["referrer_id"] or "",
            r["shares"],
        ]


def retention(campaign, data: dict, options: RetentionOptions) -> dict:
    cohorts = data.get("cohorts") or []
    days = data.get("days") or options.days
    ns = list(range(1, days + 1))

    def switch(key, values, labels, current):
        links = []
        for value in values:
            query = {"retention": options.kind, "basis": options.basis, key: value}
            links.append(
                {"label": labels[value], "href": "?" + urlencode(query), "current": value == current}
            )
        return links

    rows = []
    for c in cohorts:
        cells = {cell["n"]: cell for cell in c["cells"]}
        row = [Cell(c["day"]), f.num(c["size"])]
        for n in ns:
            cell = cells.get(n)
            if cell is None:
                row.append(Cell(f.DASH, num=True))
                continue
            text = f.percent(cell["rate"])
            row.append(
                Cell(
                    text + ("*" if cell["incomplete"] else ""),
                    num=True,
                    incomplete=cell["incomplete"],
                    title=f"{cell['count']:,} of {c['size']:,}"
                    + (" – day not over yet" if cell["incomplete"] else ""),
                )
            )
        rows.append(row)
    average = {a["n"]: a for a in data.get("average") or []}
    if cohorts:
        rows.append(
            [Cell("Weighted mean"), f.num(sum(c["size"] for c in cohorts))]
            + [f.num(None, f.percent(average[n]["rate"]) if n in average else f.DASH) for n in ns]
        )

    def z(c):
        cells = {cell["n"]: cell for cell in c["cells"]}
        return [
            None if n not in cells or cells[n]["rate"] is None else round(cells[n]["rate"] * 100, 1)
            for n in ns
        ]

    return {
        "id": "retention",
        "title": "Retention",
        "note": f"{KIND_LABELS[options.kind]}, {BASIS_LABELS[options.basis].lower()} ({campaign.time_zone}). "
        "Cohort = valid new users by the day they joined; active = any event other than the join. "
        "Cells marked * are incomplete: their day has not fully passed. The mean is weighted by cohort size, "
        "over complete cells only.",
        "kind_links": switch("retention", KINDS, KIND_LABELS, options.kind),
        "basis_links": switch("basis", BASES, BASIS_LABELS, options.basis),
        "kpis": [
            (f"D{n} (mean)", f.percent(average[n]["rate"])) for n in (1, 7, 30) if n in average and n <= days
        ],
        "rows": [
            {
                "chart": chart(
                    "chart-retention",
                    "Retention by cohort day (%)",
                    [
                        {
                            "type": "heatmap",
                            "x": [f"D{n}" for n in ns],
                            "y": [c["day"] for c in cohorts],
                            "z": [z(c) for c in cohorts],
                            "colorscale": "Greens",
                            "reversescale": True,
                            "hoverongaps": False,
                            "colorbar": {"title": {"text": "%"}},
                        }
                    ],
                    yaxis={"type": "category", "autorange": "reversed", "title": {"text": "Cohort day"}},
                ),
                "table": None,
            },
            {
                "chart": None,
                "table": table(
                    "table-retention",
                    "Retention matrix (hover a cell for counts)",
                    ["Cohort day", head("Size", True), *(head(f"D{n}", True) for n in ns)],
                    rows,
                ),
            },
        ],
    }


def virality(campaign, data: dict) -> dict:
    cycle = data.get("cycle_time") or {}
    by_day = data.get("by_cohort_day") or []
    by_gen = data.get("by_generation") or []
    depth = data.get("depth_histogram") or []
    cascades = data.get("cascades") or []
    horizon = data.get("horizon_days")
    return {
        "id": "virality",
        "title": "Virality",
        "note": f"K = valid invitees who joined within {horizon} days of their inviter, per member of the "
        "inviter cohort (K = i × c: shares per member × valid joins per share). Unit: person.",
        "kpis": [
            ("K-factor", f.decimal(data.get("k_factor"))),
            ("Amplification (1/(1−K))", f.decimal(data.get("amplification"))),
            ("Cycle time, median", f.duration(_hours_s(cycle.get("median_hours")))),
            ("Cycle time, p90", f.duration(_hours_s(cycle.get("p90_hours")))),
            ("Viral share of growth", f.percent(data.get("viral_share"))),
            (
                "Referred valid / all valid",
                f"{f.integer(data.get('referred_valid'))} / {f.integer(data.get('valid'))}",
            ),
            ("Breadth (largest generation)", f.integer(data.get("breadth"))),
            ("Branching factor", f.decimal(data.get("branching_factor"))),
        ],
        "rows": [
            {
                "chart": chart(
                    "chart-k-by-day",
                    "K-factor by inviter cohort day",
                    [
                        {
                            "type": "bar",
                            "name": "K",
                            "x": [d["day"] for d in by_day],
                            "y": [d["k"] for d in by_day],
                        }
                    ],
                    xaxis={"type": "category", "title": {"text": f"Cohort day ({campaign.time_zone})"}},
                    yaxis={"title": {"text": "K"}},
                ),
                "table": table(
                    "table-k-by-day",
                    "K by inviter cohort day",
                    [
                        "Cohort day",
                        head("Members", True),
                        head("Sharers", True),
                        head("Shares", True),
                        head("Valid invitees", True),
                        head("i", True),
                        head("c", True),
                        head("K", True),
                    ],
                    [
                        [
                            Cell(d["day"]),
                            f.num(d["members"]),
                            f.num(d["sharers"]),
                            f.num(d["shares"]),
                            f.num(d["valid_invitees"]),
                            f.num(d["i"], f.decimal(d["i"])),
                            f.num(d["c"], f.decimal(d["c"], 3)),
                            f.num(d["k"], f.decimal(d["k"])),
                        ]
                        for d in by_day
                    ],
                ),
            },
            {
                "chart": chart(
                    "chart-k-by-generation",
                    "Valid users and K by generation",
                    [
                        {
                            "type": "bar",
                            "name": "Valid",
                            "x": [g["generation"] for g in by_gen],
                            "y": [g["valid"] for g in by_gen],
                        },
                        {
                            "type": "scatter",
                            "mode": "lines+markers",
                            "name": "K",
                            "x": [g["generation"] for g in by_gen],
                            "y": [g["k"] for g in by_gen],
                            "yaxis": "y2",
                        },
                    ],
                    xaxis={"title": {"text": "Generation (0 = roots)"}, "dtick": 1},
                    yaxis={"title": {"text": "Valid users (persons)"}},
                    yaxis2={
                        "title": {"text": "K"},
                        "overlaying": "y",
                        "side": "right",
                        "rangemode": "tozero",
                    },
                ),
                "table": table(
                    "table-k-by-generation",
                    "By generation: K_g = valid of generation g+1 / valid of g",
                    ["Generation", head("Joined", True), head("Valid", True), head("K_g", True)],
                    [
                        [
                            Cell(str(g["generation"])),
                            f.num(g["joined"]),
                            f.num(g["valid"]),
                            f.num(g["k"], f.decimal(g["k"])),
                        ]
                        for g in by_gen
                    ],
                ),
            },
            {
                "chart": chart(
                    "chart-depth",
                    "Depth histogram (joined participants)",
                    [
                        {
                            "type": "bar",
                            "name": "Participants",
                            "x": [d["depth"] for d in depth],
                            "y": [d["participants"] for d in depth],
                        }
                    ],
                    xaxis={"title": {"text": "Depth in the referral tree"}, "dtick": 1},
                    yaxis={"title": {"text": "Participants"}},
                ),
                "table": table(
                    "table-cascades",
                    "Biggest cascades (structural virality ν: mean distance between members)",
                    [
                        "Root",
                        head("Size (joined)", True),
                        head("Valid", True),
                        head("Depth", True),
                        head("ν", True),
                    ],
                    [
                        [
                            Cell(f"#{c['root_id']}", href=_participant_href(c["root_id"])),
                            f.num(c["size"]),
                            f.num(c["valid"]),
                            f.num(c["depth"]),
                            f.num(c["structural_virality"], f.decimal(c["structural_virality"])),
                        ]
                        for c in cascades
                    ],
                ),
            },
        ],
    }


def _hours_s(value):
    return None if value is None else float(value) * 3600


def _participant_href(participant_id) -> str:
    return reverse("admin:referrals_participant_change", args=[participant_id])


def _participants_href(ids) -> str:
    return (
        reverse("admin:referrals_participant_changelist")
        + "?"
        + urlencode({"id__in": ",".join(map(str, ids))})
    )


def sharers(campaign, data: dict) -> dict:
    quadrant = data.get("quadrant") or []
    concentration = data.get("concentration") or []
    segments = []
    for key, (label, rule) in SEGMENT_LABELS.items():
        seg = (data.get("segments") or {}).get(key) or {"count": 0, "participant_ids": []}
        ids = seg["participant_ids"]
        shown = f"{len(ids):,} of {seg['count']:,}" if len(ids) < seg["count"] else f"all {seg['count']:,}"
        segments.append(
            [
                Cell(label, title=rule),
                f.num(seg["count"]),
                Cell(
                    f"Participants ({shown})" if ids else f.DASH, href=_participants_href(ids) if ids else ""
                ),
                Cell(rule),
            ]
        )
    leaders = data.get("leaderboard") or []
    return {
        "id": "sharers",
        "title": "Sharers",
        "note": "Sharers: participants with ≥ 1 share or ≥ 1 valid invitee. Yield = direct valid invitees "
        "per share. Reward cost in yuan, net of clawbacks.",
        "kpis": [("Sharers", f.integer(data.get("sharers")))],
        "rows": [
            {
                "chart": chart(
                    "chart-quadrant",
                    "Shares vs valid invitees (bubble = number of sharers)",
                    [
                        {
                            "type": "scatter",
                            "mode": "markers",
                            "name": "Sharers",
                            "x": [q["shares"] for q in quadrant],
                            "y": [q["direct_valid"] for q in quadrant],
                            "text": [f"{q['sharers']:,} sharer(s)" for q in quadrant],
                            "marker": {
                                "size": [q["sharers"] for q in quadrant],
                                "sizemode": "area",
                                "sizeref": max([q["sharers"] for q in quadrant] or [1]) / 900,
                                "sizemin": 4,
                            },
                        }
                    ],
                    xaxis={"title": {"text": "Shares (events)"}, "type": "log"},
                    yaxis={"title": {"text": "Direct valid invitees (persons)"}},
                ),
                "table": table(
                    "table-segments",
                    "Segments",
                    ["Segment", head("Sharers", True), "Who", "Rule"],
                    segments,
                ),
            },
            {
                "chart": chart(
                    "chart-concentration",
                    "Concentration: top x of sharers bring y of valid invitees",
                    [
                        {
                            "type": "scatter",
                            "mode": "lines",
                            "name": "Sharers",
                            "x": [c["sharers_share"] * 100 for c in concentration],
                            "y": [c["valid_share"] * 100 for c in concentration],
                        },
                        {
                            "type": "scatter",
                            "mode": "lines",
                            "name": "Equal",
                            "x": [0, 100],
                            "y": [0, 100],
                            "line": {"dash": "dot"},
                        },
                    ],
                    xaxis={"title": {"text": "Top sharers (%)"}, "range": [0, 100]},
                    yaxis={"title": {"text": "Valid invitees (%)"}, "range": [0, 100]},
                ),
                "table": table(
                    "table-leaderboard",
                    "Leaderboard",
                    [
                        "Sharer",
                        head("Shares", True),
                        head("Opens", True),
                        head("Direct valid", True),
                        head("Downstream valid", True),
                        head("Yield", True),
                        head("Reward cost", True),
                        "Fraud review",
                    ],
                    [
                        [
                            Cell(
                                s["nickname"] or f"#{s['participant_id']}",
                                href=_participant_href(s["participant_id"]),
                            ),
                            f.num(s["shares"]),
                            f.num(s["opens"]),
                            f.num(s["direct_valid"]),
                            f.num(s["downstream_valid"]),
                            f.num(s["yield"], f.decimal(s["yield"])),
                            f.num(s["reward_cost"], f.yuan(s["reward_cost"])),
                            Cell(FRAUD_OUTCOMES.get(s["fraud_outcome"], s["fraud_outcome"])),
                        ]
                        for s in leaders
                    ],
                ),
            },
        ],
    }


def channels(campaign, data: dict) -> dict:
    rows_in = (
        [*(data.get("channels") or []), data["total"]] if data.get("total") else data.get("channels") or []
    )
    named = data.get("channels") or []

    def row(c):
        return [
            Cell(c["name"] or c["code"] or "(no channel)"),
            f.num(c["joins"]),
            f.num(c["valid"]),
            f.num(c["sharers"]),
            f.num(c["new_users_per_sharer"], f.decimal(c["new_users_per_sharer"])),
            f.num(
                c["cost"],
                f.yuan(c["cost"]),
                title=f"rewards {f.yuan(c['reward_cost'])} + spend {f.yuan(c['spend'])}",
            ),
            f.num(c["cac"], f.yuan(c["cac"])),
            f.num(c["ltv"], f.yuan(c["ltv"])),
            f.num(c["roi"], f.percent(c["roi"])),
        ]

    total = data.get("total") or {}
    return {
        "id": "channels",
        "title": "Channels",
        "note": "Cost = rewards paid net of clawbacks + spend entered by ops (yuan). CAC = cost per valid "
        f"new user after fraud voids. LTV = order value within {data.get('ltv_days')} days of joining. "
        "ROI = (LTV − cost) / cost.",
        "kpis": [
            ("CAC per valid user", f.yuan(total.get("cac"))),
            ("Cost", f.yuan(total.get("cost"))),
            ("ROI", f.percent(total.get("roi"))),
        ],
        "rows": [
            {
                "chart": chart(
                    "chart-channels",
                    "Valid users and CAC by channel",
                    [
                        {
                            "type": "bar",
                            "name": "Valid users",
                            "x": [c["name"] or c["code"] or "(none)" for c in named],
                            "y": [c["valid"] for c in named],
                        },
                        {
                            "type": "scatter",
                            "mode": "markers",
                            "name": "CAC (¥)",
                            "x": [c["name"] or c["code"] or "(none)" for c in named],
                            "y": [None if c["cac"] is None else float(c["cac"]) for c in named],
                            "yaxis": "y2",
                            "marker": {"size": 12},
                        },
                    ],
                    xaxis={"type": "category"},
                    yaxis={"title": {"text": "Valid users (persons)"}},
                    yaxis2={
                        "title": {"text": "CAC (¥ per valid user)"},
                        "overlaying": "y",
                        "side": "right",
                        "rangemode": "tozero",
                    },
                ),
                "table": table(
                    "table-channels",
                    "By channel (last row: total)",
                    [
                        "Channel",
                        head("Joins", True),
                        head("Valid", True),
                        head("Sharers", True),
                        head("New users per sharer", True),
                        head("Cost", True),
                        head("CAC", True),
                        head("LTV", True),
                        head("ROI", True),
                    ],
                    [row(c) for c in rows_in],
                ),
            }
        ],
    }


def money(campaign, data: dict, weekly: list[tuple]) -> dict:
    cases = data.get("open_cases") or {}
    rewards = data.get("rewards") or {}
    budget = data.get("budget") or {}
    burn = data.get("daily_burn") or []
    counts = rewards.get("counts") or {}
    statuses = ["pending", "held", "approved", "paid", "clawed_back", "voided", "rejected"]
    return {
        "id": "money",
        "title": "Reviews and money",
        "note": "Amounts in yuan. Daily burn = rewards granted per campaign day (not rejected or voided).",
        "kpis": [
            ("Open fraud cases: review", f.integer(cases.get("review"))),
            ("Open fraud cases: decline", f.integer(cases.get("decline"))),
            ("Rewards held", f.yuan(rewards.get("held"))),
            ("Rewards approved", f.yuan(rewards.get("approved"))),
            ("Rewards paid", f.yuan(rewards.get("paid"))),
            ("Budget left", f"{f.yuan(budget.get('left'))} of {f.yuan(budget.get('total'))}"),
            ("Burn, mean of last 7 days", f.yuan(data.get("burn_rate_7d")) + " /day"),
            ("Days of budget left", f.decimal(data.get("days_of_budget_left"), 1)),
        ],
        "rows": [
            {
                "chart": chart(
                    "chart-burn",
                    "Daily burn (¥)",
                    [
                        {
                            "type": "bar",
                            "name": "Granted",
                            "x": [b["day"] for b in burn],
                            "y": [float(b["amount"]) for b in burn],
                        }
                    ],
                    xaxis={"type": "category", "title": {"text": f"Day ({campaign.time_zone})"}},
                    yaxis={"title": {"text": "¥ per day"}},
                ),
                "table": table(
                    "table-rewards",
                    "Rewards by status",
                    ["Status", head("Rewards", True), head("Amount", True)],
                    [
                        [
                            Cell(s.replace("_", " ").capitalize()),
                            f.num(counts.get(s, 0)),
                            f.num(rewards.get(s), f.yuan(rewards.get(s))),
                        ]
                        for s in statuses
                    ]
                    + [
                        [
                            Cell("Budget reserved"),
                            Cell(""),
                            f.num(budget.get("reserved"), f.yuan(budget.get("reserved"))),
                        ],
                        [
                            Cell("Budget spent"),
                            Cell(""),
                            f.num(budget.get("spent"), f.yuan(budget.get("spent"))),
                        ],
                    ],
                ),
            },
            {
                "chart": None,
                "table": table(
                    "table-fraud-weekly",
                    "Suspicious activity, cases opened in the last 7 days",
                    ["Band", "State", "Signal", head("Cases", True)],
                    [
                        [Cell(band), Cell(state), Cell(signal), f.num(n)]
                        for _slug, band, state, signal, n in weekly
                    ],
                ),
            },
        ],
    }
