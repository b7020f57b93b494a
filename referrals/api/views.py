"""The mini-program API. Views validate input, call one service, and shape the answer."""

import uuid

import orjson
from django.conf import settings
from django.core.cache import cache
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns import posters
from config.api.renderers import ORJSONRenderer
from config.errors import ApplicationError
from config.security import client_ip
from referrals.models import Reward, ShareLink
from referrals.selectors import progress_for, referrals_of_inviter, review_notes_for
from referrals.services import attribution, participants
from referrals.services.events import MAX_BATCH, batch_key_for, events_ingest
from referrals.services.server_events import server_events_ingest

from .auth import (
    IsParticipant,
    IsServer,
    ParticipantIdAuthentication,
    ParticipantTokenAuthentication,
    ServerSignatureAuthentication,
)
from .serializers import (
    JoinOutputSerializer,
    ParticipantOutputSerializer,
    ReferralOutputSerializer,
    RewardOutputSerializer,
    ShareLinkOutputSerializer,
)
from .throttles import LoginRateThrottle, ParticipantRateThrottle, ServerRateThrottle


class ParticipantApi(APIView):
    authentication_classes = [ParticipantTokenAuthentication]
    permission_classes = [IsParticipant]
    throttle_classes = [ParticipantRateThrottle]


def device_id_of(request, body: dict | None = None) -> str:
    value = (body or {}).get("device_id") or request.META.get("HTTP_X_DEVICE_ID", "")
    return str(value)[:64]


@extend_schema(tags=["auth"], summary="Log in with a wx.login() code")
class LoginApi(APIView):
    authentication_classes = []
    permission_classes = []
    throttle_classes = [LoginRateThrottle]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "LoginInput"

        code = serializers.CharField(max_length=128)
        device_id = serializers.CharField(max_length=64, required=False, allow_blank=True)

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "LoginOutput"

        token = serializers.CharField()
        expires_at = serializers.DateTimeField()
        created = serializers.BooleanField(help_text="True on the participant's first login.")
        participant = ParticipantOutputSerializer()

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = participants.participant_login(
            code=data.validated_data["code"],
            device_id=data.validated_data.get("device_id", ""),
            ip=client_ip(request),
            user_agent=request.META.get("HTTP_USER_AGENT", ""),
        )
        return Response(self.OutputSerializer(result, context={"request": request}).data)


@extend_schema(tags=["me"])
class MeApi(ParticipantApi):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "MeInput"

        nickname = serializers.RegexField(
            r"^[^\x00-\x1f\x7f]+\Z",
            max_length=32,
            trim_whitespace=True,
            error_messages={"invalid": "A nickname is one line of text, without control characters."},
        )

    @extend_schema(summary="Who am I", responses={200: ParticipantOutputSerializer})
    def get(self, request):
        return Response(ParticipantOutputSerializer(request.user, context={"request": request}).data)

    @extend_schema(
        summary="Set my nickname", request=InputSerializer, responses={200: ParticipantOutputSerializer}
    )
    def patch(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        me = participants.participant_update_profile(
            participant=request.user, nickname=data.validated_data["nickname"]
        )
        return Response(ParticipantOutputSerializer(me, context={"request": request}).data)


@extend_schema(tags=["me"])
class AvatarApi(ParticipantApi):
    parser_classes = [MultiPartParser]

    @extend_schema(
        summary="Upload my avatar (JPEG, PNG or WebP, re-encoded to 256×256 JPEG)",
        request={
            "multipart/form-data": inline_serializer("AvatarUpload", {"avatar": serializers.ImageField()})
        },
        responses={200: ParticipantOutputSerializer},
    )
    def post(self, request):
        # Django streams file uploads to disk whatever their size: refuse a large body
        # before reading it.
        limit = settings.FISSION_AVATAR_MAX_BYTES + 64 * 1024  # the image plus multipart framing
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > limit:
            raise ApplicationError(
                "avatar_too_large", f"The avatar may be at most {limit // 1024} KB.", status=413
            )
        upload = request.FILES.get("avatar")
        if upload is None:
            raise ApplicationError(
                "avatar_missing",
                "Send the image as the multipart field `avatar`.",
                fields={"avatar": ["This field is required."]},
            )
        me = participants.participant_set_avatar(participant=request.user, upload=upload)
        return Response(ParticipantOutputSerializer(me, context={"request": request}).data)


@extend_schema(tags=["sharing"])
class ShareLinkCreateApi(ParticipantApi):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ShareLinkCreateInput"

        channel = serializers.SlugField(max_length=32, required=False, allow_blank=True)

    @extend_schema(
        summary="Get my share link for a campaign (the same one every time)",
        request=InputSerializer,
        responses={200: ShareLinkOutputSerializer, 201: ShareLinkOutputSerializer},
    )
    def post(self, request, slug: str):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        campaign = attribution.campaign_for_participants(slug)
        link, created = attribution.share_link_get_or_create(
            campaign=campaign, sharer=request.user, channel_code=data.validated_data.get("channel", "")
        )
        body = ShareLinkOutputSerializer(link, context={"request": request}).data
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


@extend_schema(tags=["sharing"])
class ShareLinkDetailApi(ParticipantApi):
    """What a share code (a mini-program `scene`) points at: the campaign and who shared it.
    Any participant may look a code up; that is what a link is for."""

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ShareLinkDetailOutput"

        code = serializers.CharField()
        campaign = serializers.CharField(source="campaign.slug")
        campaign_name = serializers.CharField(source="campaign.name")
        campaign_status = serializers.CharField(source="campaign.status")
        channel = serializers.CharField(source="channel.code", allow_null=True, default=None)
        sharer = ParticipantOutputSerializer()

    @extend_schema(
        summary="Resolve a share code (scene) to its campaign and sharer", responses={200: OutputSerializer}
    )
    def get(self, request, code: str):
        link = ShareLink.objects.select_related("campaign", "channel", "sharer").filter(code=code).first()
        if link is None or link.campaign.status in (
            link.campaign.Status.DRAFT,
            link.campaign.Status.ARCHIVED,
        ):
            raise ApplicationError("share_link_not_found", "No share link has this code.", status=404)
        return Response(self.OutputSerializer(link, context={"request": request}).data)


@extend_schema(tags=["sharing"])
class PosterApi(ParticipantApi):
    """My poster for one of my share links: the campaign's default template with my
    avatar, nickname and a QR code of the link. Cached until the template or my
    profile changes."""

    @extend_schema(summary="My poster (PNG)", responses={(200, "image/png"): bytes})
    def get(self, request, code: str):
        link = (
            ShareLink.objects.select_related("campaign")
            .filter(code=code, sharer=request.user)  # only the sharer's own links
            .first()
        )
        if link is None:
            raise ApplicationError(
                "share_link_not_found", "You have no share link with this code.", status=404
            )
        template = link.campaign.templates.filter(is_default=True).first() or link.campaign.templates.first()
        if template is None:
            raise ApplicationError(
                "poster_template_missing", "This campaign has no poster template yet.", status=404
            )
        me = request.user
        key = f"poster:{link.code}:{template.pk}:{template.version}:{me.profile_version}"
        etag = f'"{key}"'
        if request.META.get("HTTP_IF_NONE_MATCH") == etag:
            response = HttpResponse(status=304)
            response["ETag"] = etag
            response["Cache-Control"] = "private, max-age=3600"
            return response
        png = cache.get(key)
        if png is None:
            avatar = posters.open_avatar(me.avatar.path) if me.avatar else None
            png = posters.render_poster(
                template, nickname=me.display_name, avatar=avatar, qr_payload=posters.share_url(link.code)
            )
            cache.set(key, png, timeout=24 * 3600)
        response = HttpResponse(png, content_type="image/png")
        response["ETag"] = etag
        response["Cache-Control"] = "private, max-age=3600"
        return response


@extend_schema(tags=["sharing"])
class ShareLinkOpenApi(ParticipantApi):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ShareLinkOpenInput"

        client_event_id = serializers.RegexField(
            r"^[A-Za-z0-9_.:\-]{1,64}$", required=False, help_text="Send one to make retries safe."
        )
        device_id = serializers.CharField(max_length=64, required=False, allow_blank=True)

    @extend_schema(
        summary="I opened this share link",
        request=InputSerializer,
        responses={201: inline_serializer("OpenResult", {"recorded": serializers.BooleanField()})},
    )
    def post(self, request, code: str):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        client_id = data.validated_data.get("client_event_id") or f"open:{uuid.uuid4().hex}"
        _, created = attribution.share_link_open(
            code=code,
            opener=request.user,
            client_event_id=client_id,
            ip=client_ip(request),
            device_id=device_id_of(request, data.validated_data),
            user_agent=request.META.get("HTTP_USER_AGENT", ""),
        )
        return Response(
            {"recorded": created}, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


@extend_schema(tags=["campaigns"])
class CampaignJoinApi(ParticipantApi):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "CampaignJoinInput"

        code = serializers.CharField(
            max_length=32,
            required=False,
            allow_blank=True,
            help_text="The share code the participant arrived with, if any.",
        )
        device_id = serializers.CharField(max_length=64, required=False, allow_blank=True)

    @extend_schema(
        summary="Join a campaign",
        request=InputSerializer,
        responses={200: JoinOutputSerializer, 201: JoinOutputSerializer},
    )
    def post(self, request, slug: str):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        campaign = attribution.campaign_for_participants(slug)
        result = attribution.campaign_join(
            campaign=campaign,
            participant=request.user,
            code=data.validated_data.get("code", ""),
            ip=client_ip(request),
            device_id=device_id_of(request, data.validated_data),
        )
        referral = result["referral"]
        body = {
            "campaign": campaign.slug,
            "joined": True,
            "created": result["created"],
            "attributed": referral.inviter_id is not None,
            "inviter": referral.inviter.display_name if referral.inviter_id else None,
            "depth": referral.depth,
            "status": referral.status,
            "rule": referral.attribution.get("rule", ""),
            "note": result["note"] or referral.attribution.get("reason", ""),
        }
        return Response(
            JoinOutputSerializer(body).data,
            status=status.HTTP_201_CREATED if result["created"] else status.HTTP_200_OK,
        )


@extend_schema(
    tags=["me"],
    summary="My invitees",
    parameters=[OpenApiParameter("campaign", str, description="Campaign slug")],
)
class MyReferralsApi(ParticipantApi, ListAPIView):
    serializer_class = ReferralOutputSerializer
    filter_backends = []

    class FilterSerializer(serializers.Serializer):
        class Meta:
            ref_name = "MyReferralsFilter"

        campaign = serializers.SlugField(max_length=80, required=False)

    def get_queryset(self):
        params = self.FilterSerializer(data=self.request.query_params)
        params.is_valid(raise_exception=True)
        return referrals_of_inviter(
            inviter=self.request.user, campaign_slug=params.validated_data.get("campaign")
        )


@extend_schema(
    tags=["me"],
    summary="My rewards: state, amount, why held and when payable",
    parameters=[OpenApiParameter("campaign", str, description="Campaign slug")],
)
class MyRewardsApi(ParticipantApi, ListAPIView):
    serializer_class = RewardOutputSerializer
    filter_backends = []

    def get_queryset(self):
        params = MyReferralsApi.FilterSerializer(data=self.request.query_params)
        params.is_valid(raise_exception=True)
        rows = Reward.objects.filter(beneficiary=self.request.user).select_related(
            "campaign", "rule", "coupon"
        )
        if params.validated_data.get("campaign"):
            rows = rows.filter(campaign__slug=params.validated_data["campaign"])
        return rows.order_by("-created_at", "-id")

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "review_notes": review_notes_for(self.request.user)}


@extend_schema(tags=["me"])
class ProgressApi(ParticipantApi):
    @extend_schema(
        summary="My progress in a campaign",
        responses={200: inline_serializer("Progress", {"message": serializers.CharField()})},
    )
    def get(self, request, slug: str):
        campaign = attribution.campaign_for_participants(slug)
        progress = progress_for(campaign=campaign, participant=request.user)
        if progress["joined_at"] is not None:  # in the API's time zone, like every other time
            progress["joined_at"] = serializers.DateTimeField().to_representation(progress["joined_at"])
        return Response(progress)


def read_batch(request) -> tuple[list, str]:
    """The raw JSON body of an event batch, checked for size and shape before any work."""
    limit = settings.FISSION_EVENTS_MAX_BODY_BYTES
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limit:
        raise ApplicationError("body_too_large", f"A batch may be at most {limit // 1024} KB.", status=413)
    body = request.body
    if len(body) > limit:
        raise ApplicationError("body_too_large", f"A batch may be at most {limit // 1024} KB.", status=413)
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ApplicationError("malformed_json", "The body is not valid JSON.") from None
    if not isinstance(data, dict) or not isinstance(data.get("events"), list):
        raise ApplicationError(
            "batch_invalid", 'Send {"events": [...]}.', fields={"events": ["A list is required."]}
        )
    events = data["events"]
    if not events:
        raise ApplicationError("batch_empty", "The batch has no events.", fields={"events": ["Empty."]})
    if len(events) > MAX_BATCH:
        raise ApplicationError(
            "batch_too_large",
            f"A batch may hold at most {MAX_BATCH} events; split it.",
            status=413,
            fields={"events": [f"{len(events)} events."]},
        )
    batch_id = data.get("batch_id")
    if batch_id is not None and (not isinstance(batch_id, str) or not 1 <= len(batch_id) <= 64):
        raise ApplicationError(
            "batch_invalid",
            "`batch_id` must be a string of 1–64 characters.",
            fields={"batch_id": ["Invalid."]},
        )
    return events, batch_key_for(body, batch_id)


BATCH_SCHEMA = inline_serializer(
    "EventBatchResult",
    {
        "batch": serializers.CharField(),
        "accepted": serializers.IntegerField(),
        "duplicate": serializers.IntegerField(),
        "rejected": serializers.IntegerField(),
        "results": serializers.ListField(child=serializers.DictField()),
    },
)


@extend_schema(tags=["events"])
class EventBatchApi(ParticipantApi):
    authentication_classes = [ParticipantIdAuthentication]
    renderer_classes = [ORJSONRenderer]

    @extend_schema(
        summary="Report up to 500 events",
        request=inline_serializer(
            "EventBatch",
            {
                "batch_id": serializers.CharField(required=False),
                "events": serializers.ListField(child=serializers.DictField()),
            },
        ),
        responses={200: BATCH_SCHEMA},
    )
    def post(self, request):
        events, batch_key = read_batch(request)
        return Response(events_ingest(participant_id=request.user.pk, events=events, batch_key=batch_key))


@extend_schema(tags=["server"])
class ServerEventBatchApi(APIView):
    renderer_classes = [ORJSONRenderer]
    authentication_classes = [ServerSignatureAuthentication]
    permission_classes = [IsServer]
    throttle_classes = [ServerRateThrottle]

    @extend_schema(
        summary="Qualifying events from the business backend (API key + HMAC)",
        request=inline_serializer(
            "ServerEventBatch", {"events": serializers.ListField(child=serializers.DictField())}
        ),
        responses={200: BATCH_SCHEMA},
    )
    def post(self, request):
        events, batch_key = read_batch(request)
        return Response(server_events_ingest(events=events, batch_key=batch_key))


@extend_schema(exclude=True)
class WeChatPayCallbackApi(APIView):
    """Transfer results from WeChat Pay. Verified by signature, applied once, checked
    against our amount and recipient. Answers as WeChat Pay expects."""

    authentication_classes = []
    permission_classes = []
    throttle_classes = []

    def post(self, request):
        from referrals import wechatpay
        from referrals.services.payouts import payout_callback_apply

        headers = {k: v for k, v in request.headers.items() if k.lower().startswith("wechatpay-")}
        try:
            payout_callback_apply(headers=headers, body=request.body)
        except wechatpay.CallbackInvalid:
            return Response({"code": "FAIL", "message": "invalid signature"}, status=401)
        return Response({"code": "SUCCESS", "message": ""})
