"""Cards for the mini program: pick a template, make a card, open a friend's card, make my own."""

import uuid

from django.core.cache import cache
from django.http import HttpResponse
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response

from config.errors import ApplicationError
from config.security import client_ip
from referrals.api.views import ParticipantApi, device_id_of
from referrals.models import Referral
from referrals.services import attribution

from .. import render, selectors, services
from ..models import Card, CardTemplate

ERRORS = {
    400: OpenApiResponse(
        description="Bad input: `validation_error`, `template_unknown`, `message_too_long`, "
        "`message_too_many_lines`, `message_has_contact`, `message_blocked`, "
        "`message_not_allowed`"
    ),
    404: OpenApiResponse(description="`campaign_not_found`, `not_a_card_campaign`, `card_not_found`"),
    409: OpenApiResponse(description="`campaign_not_live`, `join_first`, `own_card`"),
}


def _abs(request, url: str) -> str:
    return request.build_absolute_uri(url)


class TemplateOutputSerializer(serializers.Serializer):
    class Meta:
        ref_name = "CardTemplateOutput"

    id = serializers.IntegerField()
    name = serializers.CharField()
    caption = serializers.CharField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    preview_url = serializers.SerializerMethodField()

    def get_preview_url(self, obj: CardTemplate) -> str:
        url = reverse("card-template-preview", args=[obj.pk])
        return _abs(self.context["request"], f"{url}?v={obj.version}")


class CardOutputSerializer(serializers.Serializer):
    class Meta:
        ref_name = "CardOutput"

    code = serializers.CharField(help_text="Also the mini-program `scene` of the card (≤ 32 chars).")
    campaign = serializers.CharField(source="campaign.slug")
    template = serializers.IntegerField(source="template_id")
    message = serializers.CharField(help_text="The message as printed, after cleaning.")
    path = serializers.CharField(help_text="The mini-program page to share.")
    share_code = serializers.CharField(source="link.code", help_text="The sharer's share-link code.")
    share_title = serializers.SerializerMethodField()
    image_url = serializers.SerializerMethodField()
    status = serializers.CharField()
    opens = serializers.IntegerField()
    accepts = serializers.IntegerField()
    created_at = serializers.DateTimeField()

    def get_share_title(self, obj: Card) -> str:
        return services.share_title_for(obj)

    def get_image_url(self, obj: Card) -> str:
        url = reverse("card-image", args=[obj.code])
        return _abs(self.context["request"], f"{url}?v={obj.template.version}.{obj.sharer.profile_version}")


@extend_schema(tags=["cards"])
class CardTemplateListApi(ParticipantApi):
    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "CardTemplateList"

        campaign = serializers.CharField()
        kind = serializers.CharField()
        personal_message = serializers.BooleanField(help_text="False for image share: no message is taken.")
        message_max_length = serializers.IntegerField()
        message_max_lines = serializers.IntegerField()
        cards_per_day = serializers.IntegerField()
        templates = TemplateOutputSerializer(many=True)

    @extend_schema(summary="Card templates to pick from", responses={200: OutputSerializer, **ERRORS})
    def get(self, request, slug: str):
        campaign = attribution.campaign_for_participants(slug)
        config = services.card_config_for(campaign)
        services.card_templates_ensure(campaign=campaign)
        body = {
            "campaign": campaign.slug,
            "kind": campaign.kind,
            "personal_message": config.personal_message,
            "message_max_length": config.message_max_length if config.personal_message else 0,
            "message_max_lines": config.message_max_lines,
            "cards_per_day": config.cards_per_day,
            "templates": campaign.card_templates.filter(is_active=True),
        }
        return Response(self.OutputSerializer(body, context={"request": request}).data)


@extend_schema(tags=["cards"])
class CardTemplatePreviewApi(ParticipantApi):
    @extend_schema(summary="A template's preview (PNG)", responses={(200, "image/png"): bytes, **ERRORS})
    def get(self, request, pk: int):
        template = (
            CardTemplate.objects.select_related("campaign", "campaign__card_config")
            .filter(pk=pk, is_active=True, campaign__status__in=["scheduled", "live", "paused", "ended"])
            .first()
        )
        if template is None:
            raise ApplicationError("template_not_found", "No such card template.", status=404)
        key = f"cardpreview:{template.pk}:{template.version}"
        png = cache.get(key)
        if png is None:
            lines = services.card_config_for(template.campaign).message_max_lines
            png = render.render_template_preview(template, max_lines=lines)
            cache.set(key, png, timeout=render.CACHE_SECONDS)
        response = HttpResponse(png, content_type="image/png")
        response["Cache-Control"] = "private, max-age=3600"
        return response


@extend_schema(tags=["cards"])
class CardCreateApi(ParticipantApi):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "CardCreateInput"

        template = serializers.IntegerField(min_value=1)
        # Generous here: the campaign's own limit is applied after cleaning, with its own code.
        message = serializers.CharField(
            max_length=2000, required=False, allow_blank=True, trim_whitespace=False
        )
        channel = serializers.SlugField(max_length=32, required=False, allow_blank=True)

    @extend_schema(
        summary="Make my card (the same template and message give back the same card)",
        request=InputSerializer,
        responses={
            201: CardOutputSerializer,
            200: CardOutputSerializer,
            429: OpenApiResponse(description="`card_daily_limit`"),
            **ERRORS,
        },
    )
    def post(self, request, slug: str):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        campaign = attribution.campaign_for_participants(slug)
        card, created = services.card_make(
            campaign=campaign,
            sharer=request.user,
            template_id=data.validated_data["template"],
            message=data.validated_data.get("message", ""),
            channel_code=data.validated_data.get("channel", ""),
        )
        body = CardOutputSerializer(card, context={"request": request}).data
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


@extend_schema(
    tags=["cards"],
    summary="My cards, newest first, with opens and friends who made their own",
    parameters=[OpenApiParameter("campaign", str, description="Campaign slug")],
)
class MyCardsApi(ParticipantApi, ListAPIView):
    serializer_class = CardOutputSerializer
    filter_backends = []

    class FilterSerializer(serializers.Serializer):
        class Meta:
            ref_name = "MyCardsFilter"

        campaign = serializers.SlugField(max_length=80, required=False)

    def get_queryset(self):
        params = self.FilterSerializer(data=self.request.query_params)
        params.is_valid(raise_exception=True)
        return selectors.cards_of_sharer(
            sharer=self.request.user, campaign_slug=params.validated_data.get("campaign")
        )


@extend_schema(tags=["cards"])
class CardDetailApi(ParticipantApi):
    """What a receiver sees: any participant holding the code may look (that is what a card
    is for); it shows the sender's nickname and avatar, never their other data."""

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "CardDetailOutput"

        card = CardOutputSerializer()
        sender = serializers.CharField()
        sender_avatar_url = serializers.CharField(allow_null=True)
        campaign_name = serializers.CharField()
        campaign_status = serializers.CharField()
        mine = serializers.BooleanField(help_text="I made this card.")
        joined = serializers.BooleanField(help_text="I have joined the campaign.")
        next = serializers.CharField(help_text="`accept` (tap to make my own), `make` or `view`.")

    @extend_schema(
        summary="A card, as its receiver sees it",
        responses={200: OutputSerializer, **ERRORS, 410: OpenApiResponse(description="`card_hidden`")},
    )
    def get(self, request, code: str):
        card = services.card_for_receiver(code)
        me = request.user
        mine = card.sharer_id == me.pk
        joined = mine or Referral.objects.filter(campaign_id=card.campaign_id, invitee=me).exists()
        sender = card.sharer
        avatar = _abs(request, f"{sender.avatar.url}?v={sender.profile_version}") if sender.avatar else None
        body = {
            "card": card,
            "sender": sender.display_name,
            "sender_avatar_url": avatar,
            "campaign_name": card.campaign.name,
            "campaign_status": card.campaign.status,
            "mine": mine,
            "joined": joined,
            "next": "view" if mine else ("make" if joined else "accept"),
        }
        return Response(self.OutputSerializer(body, context={"request": request}).data)


@extend_schema(tags=["cards"])
class CardImageApi(ParticipantApi):
    """The card image. Cached under the template version, message and the sender's profile
    version; answers 304 to a matching If-None-Match."""

    @extend_schema(summary="The card image (PNG)", responses={(200, "image/png"): bytes, **ERRORS})
    def get(self, request, code: str):
        card = services.card_for_receiver(code)
        config = services.card_config_for(card.campaign)  # loaded with the card: no query
        key = render.card_cache_key(card)
        etag = f'"{key}"'
        if request.META.get("HTTP_IF_NONE_MATCH") == etag:
            response = HttpResponse(status=304)
        else:
            png, _ = render.card_png(card, max_lines=config.message_max_lines)
            response = HttpResponse(png, content_type="image/png")
        response["ETag"] = etag
        response["Cache-Control"] = "private, max-age=3600"
        return response


@extend_schema(tags=["cards"])
class CardOpenApi(ParticipantApi):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "CardOpenInput"

        client_event_id = serializers.RegexField(
            r"^[A-Za-z0-9_.:\-]{1,64}$", required=False, help_text="Send one to make retries safe."
        )
        device_id = serializers.CharField(max_length=64, required=False, allow_blank=True)

    @extend_schema(
        summary="I opened this card (a share-link open of the sender's link)",
        request=InputSerializer,
        responses={
            201: inline_serializer("CardOpenResult", {"recorded": serializers.BooleanField()}),
            200: inline_serializer("CardOpenAgain", {"recorded": serializers.BooleanField()}),
            **ERRORS,
        },
    )
    def post(self, request, code: str):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        _, created = services.card_open(
            code=code,
            receiver=request.user,
            client_event_id=data.validated_data.get("client_event_id") or f"card-open:{uuid.uuid4().hex}",
            ip=client_ip(request),
            device_id=device_id_of(request, data.validated_data),
            user_agent=request.META.get("HTTP_USER_AGENT", ""),
        )
        return Response(
            {"recorded": created}, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


@extend_schema(tags=["cards"])
class CardAcceptApi(ParticipantApi):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "CardAcceptInput"

        device_id = serializers.CharField(max_length=64, required=False, allow_blank=True)

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "CardAcceptOutput"

        campaign = serializers.CharField()
        joined = serializers.BooleanField(help_text="This tap joined me to the campaign.")
        attributed = serializers.BooleanField(help_text="The card's sender is my inviter.")
        inviter = serializers.CharField(allow_null=True)
        status = serializers.CharField(help_text="My membership: joined or valid.")
        note = serializers.CharField(allow_blank=True)
        templates_url = serializers.CharField(help_text="Where to pick a template for my own card.")

    @extend_schema(
        summary="Make my own: join the campaign through the sender's card",
        request=InputSerializer,
        responses={
            201: OutputSerializer,
            200: OutputSerializer,
            **ERRORS,
            410: OpenApiResponse(description="`card_hidden`"),
        },
    )
    def post(self, request, code: str):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = services.card_accept(
            code=code,
            receiver=request.user,
            ip=client_ip(request),
            device_id=device_id_of(request, data.validated_data),
        )
        referral, card = result["referral"], result["card"]
        body = {
            "campaign": card.campaign.slug,
            "joined": result["joined"],
            "attributed": result["attributed"],
            "inviter": referral.inviter.display_name if referral.inviter_id else None,
            "status": referral.status,
            "note": result["note"],
            "templates_url": _abs(request, reverse("card-templates", args=[card.campaign.slug])),
        }
        return Response(
            self.OutputSerializer(body).data,
            status=status.HTTP_201_CREATED if result["first"] else status.HTTP_200_OK,
        )
