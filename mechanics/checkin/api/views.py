"""Check-in routes of the mini program: check in, make up a missed day, my streak."""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from config.errors import ApplicationError
from config.security import client_ip
from referrals.api.views import ParticipantApi, device_id_of
from referrals.services.attribution import campaign_for_participants

from .. import selectors, services

ERRORS = {
    400: OpenApiResponse(description="invalid (bad fields), makeup_day_invalid, month_invalid"),
    404: OpenApiResponse(description="campaign_not_found, not_a_checkin_campaign, checkin_not_configured"),
    409: OpenApiResponse(
        description="campaign_not_live, makeup_not_offered, makeup_too_late, no_makeup_cards_left, join_first"
    ),
}


class CheckinOutputSerializer(serializers.Serializer):
    class Meta:
        ref_name = "CheckinOutput"

    day = serializers.DateField(source="checkin.day", help_text="The campaign's local day.")
    streak = serializers.IntegerField(source="checkin.streak", help_text="Days in a row, this one included.")
    makeup = serializers.BooleanField(source="checkin.is_makeup")
    created = serializers.BooleanField(help_text="False when this day was already checked in (a retry).")
    tiers_reached = serializers.ListField(
        child=serializers.IntegerField(), help_text="Streak tiers reached by this check-in, e.g. [7]."
    )


class CheckinApi(ParticipantApi):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "CheckinInput"

        code = serializers.CharField(
            max_length=32,
            required=False,
            allow_blank=True,
            help_text="The share code I arrived with, if any.",
        )
        device_id = serializers.CharField(max_length=64, required=False, allow_blank=True)

    @extend_schema(
        tags=["checkin"],
        summary="Check in for today (joins the campaign first if needed; never requires sharing)",
        request=InputSerializer,
        responses={200: CheckinOutputSerializer, 201: CheckinOutputSerializer, **ERRORS},
    )
    def post(self, request, slug: str):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        campaign = campaign_for_participants(slug)
        result = services.checkin_do(
            campaign=campaign,
            participant=request.user,
            code=data.validated_data.get("code", ""),
            ip=client_ip(request),
            device_id=device_id_of(request, data.validated_data),
        )
        return Response(
            CheckinOutputSerializer(result).data,
            status=status.HTTP_201_CREATED if result["created"] else status.HTTP_200_OK,
        )


class MakeupApi(ParticipantApi):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "CheckinMakeupInput"

        day = serializers.DateField(help_text="The missed day (campaign's local date), YYYY-MM-DD.")

    @extend_schema(
        tags=["checkin"],
        summary="Fill a missed day with a make-up card",
        request=InputSerializer,
        responses={200: CheckinOutputSerializer, 201: CheckinOutputSerializer, **ERRORS},
    )
    def post(self, request, slug: str):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        campaign = campaign_for_participants(slug)
        result = services.checkin_makeup(
            campaign=campaign, participant=request.user, day=data.validated_data["day"]
        )
        return Response(
            CheckinOutputSerializer(result).data,
            status=status.HTTP_201_CREATED if result["created"] else status.HTTP_200_OK,
        )


class StreakOutputSerializer(serializers.Serializer):
    class Meta:
        ref_name = "CheckinStreakOutput"

    class TierSerializer(serializers.Serializer):
        class Meta:
            ref_name = "CheckinTier"

        days = serializers.IntegerField()
        reached = serializers.BooleanField()

    class DaySerializer(serializers.Serializer):
        class Meta:
            ref_name = "CheckinDay"

        day = serializers.DateField()
        checked_in = serializers.BooleanField()
        makeup = serializers.BooleanField()

    campaign = serializers.CharField()
    today = serializers.DateField()
    checked_in_today = serializers.BooleanField()
    current_streak = serializers.IntegerField(help_text="0 once a day was missed (and not made up).")
    best_streak = serializers.IntegerField()
    tiers = TierSerializer(many=True)
    next_tier = serializers.IntegerField(allow_null=True)
    days_to_next_tier = serializers.IntegerField(allow_null=True)
    makeup_cards_left = serializers.IntegerField()
    makeup_from = serializers.DateField(allow_null=True, help_text="The earliest day a card may fill.")
    month = serializers.CharField()
    calendar = DaySerializer(many=True)


class MyStreakApi(ParticipantApi):
    @extend_schema(
        tags=["checkin"],
        summary="My streak, tiers, make-up cards and a month's calendar",
        parameters=[OpenApiParameter("month", str, description="YYYY-MM; default: this month")],
        responses={200: StreakOutputSerializer, 400: ERRORS[400], 404: ERRORS[404], 409: ERRORS[409]},
    )
    def get(self, request, slug: str):
        campaign = campaign_for_participants(slug)
        plan = services.plan_for(campaign)
        month = None
        if request.query_params.get("month"):
            try:
                month = serializers.DateField(input_formats=["%Y-%m"]).to_internal_value(
                    request.query_params["month"]
                )
            except serializers.ValidationError:
                raise ApplicationError(
                    "month_invalid", "Give the month as YYYY-MM.", fields={"month": ["YYYY-MM."]}
                ) from None
        summary = selectors.streak_summary(
            campaign=campaign, plan=plan, participant=request.user, month=month
        )
        return Response(StreakOutputSerializer(summary).data)
