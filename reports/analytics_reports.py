"""The cockpit's metrics as reports: funnel and its drop-offs, retention, K-factor, sharers, channels.

The numbers come from `analytics.selectors` (definitions in METRICS.md); this module only
lays their documented dicts out as rows. The import happens when a report runs, so reports
never import analytics at start-up (analytics is a floor above campaigns and referrals, and
its selectors may land after this module): if a selector is missing, the job fails saying so.
"""

from datetime import date, datetime

from config.errors import ApplicationError

from .catalog import CAMPAIGN, campaign_of
from .registry import Column, Context, Param, Report, register


def selector(name: str):
    try:
        from analytics import selectors
    except ImportError as exc:
        raise ApplicationError(
            "analytics_unavailable", f"analytics.selectors cannot be loaded: {exc}"
        ) from exc
    function = getattr(selectors, name, None)
    if function is None:
        raise ApplicationError("analytics_unavailable", f"analytics.selectors.{name} does not exist yet.")
    return function


def when(value) -> datetime | None:
    """The selectors give ISO strings in the campaign's zone; the writers want datetimes."""
    return datetime.fromisoformat(value) if value else None


def day(value) -> date | None:
    return date.fromisoformat(value) if value else None


# --- funnel -------------------------------------------------------------------------------
def funnel_rows(params: dict, context: Context):
    result = selector("funnel")(campaign_of(params))
    for s in result["steps"]:
        yield (
            s["step"],
            s["label"],
            s["unit"],
            s["count"],
            s["step_conversion"],
            s["overall_conversion"],
            s["drop_off"],
            s["median_minutes"],
            s["p90_minutes"],
            s["estimate_label"],
        )


register(
    Report(
        name="funnel",
        title="Funnel (share → open → join → valid → retained D7)",
        description="Each step's count, step and overall conversion, drop-off and median/p90 time.",
        params=(CAMPAIGN,),
        columns=(
            Column("step"),
            Column("label"),
            Column("unit"),
            Column("count", "int"),
            Column("step_conversion", "float"),
            Column("overall_conversion", "float"),
            Column("drop_off", "float"),
            Column("median_minutes", "float"),
            Column("p90_minutes", "float"),
            Column("estimate"),
        ),
        rows=funnel_rows,
        tags=("analytics",),
    )
)

DROPOFF_STEPS = (
    ("open", "Shared, no friend opened"),
    ("join", "Opened, did not join"),
    ("valid", "Joined, did not become valid"),
    ("retained_d7", "Valid, not retained on day 7"),
)


def funnel_dropoffs_rows(params: dict, context: Context):
    rows = selector("funnel_dropoffs")(campaign_of(params), step=params["step"])
    for r in rows:
        yield (
            r["participant_id"],
            when(r["joined_at"]),
            when(r["first_open_at"]),
            when(r["valid_at"]),
            r["channel_id"],
            r["referrer_id"],
            r["shares"],
        )


register(
    Report(
        name="funnel_dropoffs",
        title="Funnel drop-offs (participants lost at a step)",
        description="Participants who reached the step before the chosen one but not that step.",
        params=(CAMPAIGN, Param("step", "choice", "Lost at step", choices=DROPOFF_STEPS)),
        columns=(
            Column("participant_id", "int"),
            Column("joined_at", "datetime"),
            Column("first_open_at", "datetime"),
            Column("valid_at", "datetime"),
            Column("channel_id", "int"),
            Column("referrer_id", "int"),
            Column("shares", "int"),
        ),
        rows=funnel_dropoffs_rows,
        tags=("analytics",),
    )
)


# --- retention ----------------------------------------------------------------------------
def retention_rows(params: dict, context: Context):
    result = selector("retention")(
        campaign_of(params), kind=params.get("kind", "classic"), basis=params.get("basis", "calendar")
    )
    for cohort in result["cohorts"]:
        for cell in cohort["cells"]:
            yield (
                day(cohort["day"]),
                cohort["size"],
                cell["n"],
                cell["count"],
                cell["rate"],
                cell["incomplete"],
            )


register(
    Report(
        name="retention",
        title="Retention D1–D30 by cohort day",
        description="One row per cohort day and day N (pivot it for the matrix); incomplete cells flagged.",
        params=(
            CAMPAIGN,
            Param(
                "kind",
                "choice",
                "Kind",
                required=False,
                choices=(
                    ("classic", "Classic"),
                    ("on_or_after", "On or after"),
                    ("cumulative", "Cumulative"),
                ),
            ),
            Param(
                "basis",
                "choice",
                "Days",
                required=False,
                choices=(("calendar", "Calendar days"), ("rolling", "Rolling 24 h")),
            ),
        ),
        columns=(
            Column("cohort_day", "date"),
            Column("cohort_size", "int"),
            Column("day_n", "int"),
            Column("retained", "int"),
            Column("rate", "float"),
            Column("incomplete", "bool"),
        ),
        rows=retention_rows,
        tags=("analytics",),
    )
)


# --- virality (K-factor) ------------------------------------------------------------------
VIRALITY_TABLES = {
    "by_cohort_day": (
        (
            Column("inviter_cohort_day", "date"),
            Column("members", "int"),
            Column("sharers", "int"),
            Column("shares", "int"),
            Column("valid_invitees", "int"),
            Column("k", "float"),
            Column("i", "float"),
            Column("c", "float"),
        ),
        lambda r: (
            day(r["day"]),
            r["members"],
            r["sharers"],
            r["shares"],
            r["valid_invitees"],
            r["k"],
            r["i"],
            r["c"],
        ),
    ),
    "by_generation": (
        (Column("generation", "int"), Column("joined", "int"), Column("valid", "int"), Column("k", "float")),
        lambda r: (r["generation"], r["joined"], r["valid"], r["k"]),
    ),
    "depth_histogram": (
        (Column("depth", "int"), Column("participants", "int")),
        lambda r: (r["depth"], r["participants"]),
    ),
    "cascades": (
        (
            Column("root_id", "int"),
            Column("size", "int"),
            Column("valid", "int"),
            Column("depth", "int"),
            Column("structural_virality", "float"),
        ),
        lambda r: (r["root_id"], r["size"], r["valid"], r["depth"], r["structural_virality"]),
    ),
}


def virality_rows(params: dict, context: Context):
    result = selector("virality")(campaign_of(params))
    _, row = VIRALITY_TABLES[params.get("table", "by_cohort_day")]
    for r in result[params.get("table", "by_cohort_day")]:
        yield row(r)


register(
    Report(
        name="kfactor",
        title="K-factor and virality",
        description="K-factor by inviter cohort day or by generation, the depth histogram, or the biggest "
        "cascades.",
        params=(
            CAMPAIGN,
            Param(
                "table",
                "choice",
                "Table",
                required=False,
                choices=(
                    ("by_cohort_day", "K by inviter cohort day"),
                    ("by_generation", "K by generation"),
                    ("depth_histogram", "Depth histogram"),
                    ("cascades", "Biggest cascades"),
                ),
            ),
        ),
        columns=lambda params: VIRALITY_TABLES[params.get("table", "by_cohort_day")][0],
        rows=virality_rows,
        tags=("analytics",),
    )
)


# --- sharers ------------------------------------------------------------------------------
def sharers_rows(params: dict, context: Context):
    size = params.get("top", 1000)
    result = selector("sharers")(campaign_of(params), leaderboard_size=size)
    for r in result["leaderboard"]:
        yield (
            r["participant_id"],
            r["nickname"],
            r["shares"],
            r["opens"],
            r["direct_valid"],
            r["downstream_valid"],
            r["yield"],
            r["reward_cost"],
            r["fraud_outcome"],
        )


register(
    Report(
        name="sharers",
        title="Sharers leaderboard",
        description="Sharers by valid invitees with yield, reward cost and fraud outcome (the top 1,000).",
        params=(CAMPAIGN,),
        columns=(
            Column("participant_id", "int"),
            Column("nickname"),
            Column("shares", "int"),
            Column("opens", "int"),
            Column("direct_valid", "int"),
            Column("downstream_valid", "int"),
            Column("yield", "float"),
            Column("reward_cost_yuan", "decimal"),
            Column("fraud_outcome"),
        ),
        rows=sharers_rows,
        tags=("analytics",),
    )
)


# --- channels -----------------------------------------------------------------------------
def channels_rows(params: dict, context: Context):
    result = selector("channels")(campaign_of(params))
    for r in [*result["channels"], result["total"]]:
        yield (
            r["code"],
            r["name"],
            r["joins"],
            r["valid"],
            r["sharers"],
            r["new_users_per_sharer"],
            r["reward_cost"],
            r["spend"],
            r["cost"],
            r["cac"],
            r["ltv"],
            r["roi"],
        )


register(
    Report(
        name="channels",
        title="Channels: CAC after fraud voids, LTV, ROI",
        description="Joins, valid users, sharers and cost per channel, with a total row.",
        params=(CAMPAIGN,),
        columns=(
            Column("channel"),
            Column("name"),
            Column("joins", "int"),
            Column("valid", "int"),
            Column("sharers", "int"),
            Column("new_users_per_sharer", "float"),
            Column("reward_cost_yuan", "decimal"),
            Column("spend_yuan", "decimal"),
            Column("cost_yuan", "decimal"),
            Column("cac_yuan", "decimal"),
            Column("ltv_yuan", "decimal"),
            Column("roi", "float"),
        ),
        rows=channels_rows,
        tags=("analytics",),
    )
)
