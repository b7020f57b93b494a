"""The cockpit's numbers as JSON for BI tools: one GET per selector, the same dicts.

Money is a decimal string ("12.50"), times ISO 8601 in the campaign's time zone."""

from datetime import date, datetime
from decimal import Decimal
from itertools import islice

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns.models import Campaign
from config.errors import ApplicationError

from .. import selectors
from .auth import AnalyticsTokenAuthentication, CanViewCockpit

TAG = ["analytics"]
MAX_DROPOFFS = 5000


def jsonable(value):
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


class AnalyticsApi(APIView):
    # Token first: its WWW-Authenticate header makes a refused request a 401.
    authentication_classes = [AnalyticsTokenAuthentication, SessionAuthentication]
    permission_classes = [CanViewCockpit]
    throttle_classes = []

    def campaign(self, campaign_id: int) -> Campaign:
        campaign = Campaign.objects.filter(pk=campaign_id).first()
        if campaign is None:
            raise ApplicationError("campaign_not_found", f"No campaign {campaign_id}.", status=404)
        return campaign


def _doc(selector) -> str:
    return (selector.__doc__ or "").strip()


def _view(name: str, selector, *, summary: str):
    @extend_schema(
        tags=TAG, summary=summary, description=_doc(selector), responses={200: OpenApiTypes.OBJECT}
    )
    def get(self, request, campaign_id: int):
        return Response(jsonable(selector(self.campaign(campaign_id))))

    return type(name, (AnalyticsApi,), {"get": get, "__doc__": summary})


GoalPacingApi = _view("GoalPacingApi", selectors.goal_pacing, summary="Goal burn-up and pacing")
LastHourApi = _view("LastHourApi", selectors.last_hour, summary="The last 60 minutes, minute by minute")
FunnelApi = _view("FunnelApi", selectors.funnel, summary="Funnel share → open → join → valid → D7")
ViralityApi = _view("ViralityApi", selectors.virality, summary="K-factor, generations, cascades")
SharersApi = _view("SharersApi", selectors.sharers, summary="Sharer quadrant, segments, leaderboard")
ChannelsApi = _view(
    "ChannelsApi", selectors.channels, summary="Channels: cost, CAC after fraud voids, LTV, ROI"
)
MoneyApi = _view("MoneyApi", selectors.reviews_and_money, summary="Fraud cases, rewards, budget and burn")


class RetentionApi(AnalyticsApi):
    class InputSerializer(serializers.Serializer):
        kind = serializers.ChoiceField(choices=["classic", "on_or_after", "cumulative"], default="classic")
        basis = serializers.ChoiceField(choices=["calendar", "rolling"], default="calendar")
        days = serializers.IntegerField(min_value=1, max_value=30, default=30)

    @extend_schema(
        tags=TAG,
        summary="Retention matrix D1…D30 by cohort day",
        description=_doc(selectors.retention),
        parameters=[InputSerializer],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request, campaign_id: int):
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        return Response(jsonable(selectors.retention(self.campaign(campaign_id), **params.validated_data)))


class FunnelDropoffsApi(AnalyticsApi):
    class InputSerializer(serializers.Serializer):
        step = serializers.ChoiceField(choices=["open", "join", "valid", "retained_d7"])
        after = serializers.IntegerField(
            min_value=0, default=0, help_text="Participant id to continue after."
        )
        limit = serializers.IntegerField(min_value=1, max_value=MAX_DROPOFFS, default=1000)

    @extend_schema(
        tags=TAG,
        summary="Who dropped off at a funnel step (pages by participant id)",
        description=_doc(selectors.funnel_dropoffs),
        parameters=[InputSerializer],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request, campaign_id: int):
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        campaign = self.campaign(campaign_id)
        rows = list(
            islice(
                selectors.funnel_dropoffs(campaign, step=data["step"], after=data["after"]), data["limit"] + 1
            )
        )
        more = len(rows) > data["limit"]
        rows = rows[: data["limit"]]
        return Response(
            {
                "step": data["step"],
                "results": rows,
                "next_after": rows[-1]["participant_id"] if more and rows else None,
            }
        )


class ProgressApi(AnalyticsApi):
    class InputSerializer(serializers.Serializer):
        ids = serializers.RegexField(
            r"^\d{1,10}(,\d{1,10}){0,199}$", help_text="Campaign ids, comma-separated."
        )

    @extend_schema(
        tags=TAG,
        summary="Goal completion of several campaigns",
        description=_doc(selectors.progress),
        parameters=[InputSerializer],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request):
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        ids = [int(i) for i in params.validated_data["ids"].split(",")]
        return Response({str(k): v for k, v in selectors.progress(ids).items()})
