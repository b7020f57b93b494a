"""Price cut for the mini program, and the cut-price check for the business backend."""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from config.security import client_ip
from mechanics.pricecut import selectors, services
from mechanics.pricecut.models import Task, yuan
from referrals.api.auth import IsServer, ServerSignatureAuthentication
from referrals.api.throttles import ServerRateThrottle
from referrals.api.views import ParticipantApi, device_id_of
from referrals.services.attribution import campaign_for_participants

TASK_STATUSES = "open, completed, expired or cancelled"
SCHEDULES = "equal, decreasing or random"
ERRORS = {
    404: OpenApiResponse(description="`offer_not_found`, `cut_task_not_found`, `campaign_not_found`"),
    409: OpenApiResponse(
        description="`own_task`, `already_helped`, `cut_task_completed`, `cut_task_expired`, "
        "`cut_task_cancelled`, `same_person`, `not_a_new_user`, `offer_inactive`, `campaign_not_live`"
    ),
}


class OfferOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    item_code = serializers.CharField()
    title = serializers.CharField()
    start_price = serializers.SerializerMethodField()
    floor_price = serializers.SerializerMethodField()
    helpers_needed = serializers.IntegerField()
    schedule = serializers.CharField(help_text=SCHEDULES)
    cut_min = serializers.SerializerMethodField(help_text="Random schedule: the published lower bound (¥).")
    cut_max = serializers.SerializerMethodField(help_text="Random schedule: the published upper bound (¥).")
    hours = serializers.IntegerField()
    new_users_only = serializers.BooleanField()

    def get_start_price(self, offer) -> str:
        return yuan(offer.start_price_fen)

    def get_floor_price(self, offer) -> str:
        return yuan(offer.floor_price_fen)

    def get_cut_min(self, offer) -> str | None:
        return yuan(offer.min_cut_fen)

    def get_cut_max(self, offer) -> str | None:
        return yuan(offer.max_cut_fen)


class OfferBriefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    item_code = serializers.CharField()
    title = serializers.CharField()


class TaskOutputSerializer(serializers.Serializer):
    code = serializers.CharField()
    campaign = serializers.CharField()
    offer = OfferBriefSerializer()
    status = serializers.CharField(help_text=TASK_STATUSES)
    starter = serializers.CharField()
    is_starter = serializers.BooleanField()
    start_price = serializers.CharField()
    floor_price = serializers.CharField()
    price = serializers.CharField(help_text="The price now (¥).")
    remaining = serializers.CharField(help_text="Exactly what is still to cut to reach the floor (¥).")
    remaining_fen = serializers.IntegerField()
    helpers_needed = serializers.IntegerField()
    helper_count = serializers.IntegerField()
    helpers_left = serializers.IntegerField(help_text="Friends still needed.")
    schedule = serializers.CharField(help_text=SCHEDULES)
    cut_min = serializers.CharField(allow_null=True)
    cut_max = serializers.CharField(allow_null=True)
    next_cut = serializers.CharField(allow_null=True, help_text="What the next friend cuts (deterministic).")
    started_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    completed_at = serializers.DateTimeField(allow_null=True)
    redeemed = serializers.BooleanField()
    share_code = serializers.CharField(help_text="The starter's share code: open it, then help.")
    path = serializers.CharField(help_text="The mini-program page of this price cut.")
    helps = inline_serializer(
        "CutHelpView",
        {
            "seq": serializers.IntegerField(),
            "name": serializers.CharField(),
            "cut": serializers.CharField(),
            "at": serializers.DateTimeField(),
        },
        many=True,
    )
    my_cut = serializers.CharField(allow_null=True, help_text="What I cut, if I helped.")


def _task_response(request, task: Task, created: bool) -> Response:
    body = TaskOutputSerializer(selectors.task_view(task, viewer_id=request.user.pk)).data
    return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class _DeviceInput(serializers.Serializer):
    device_id = serializers.CharField(max_length=64, required=False, allow_blank=True)


@extend_schema(tags=["price cut"], summary="The price-cut offers of a campaign")
class OfferListApi(ParticipantApi):
    @extend_schema(responses={200: OfferOutputSerializer(many=True), 404: ERRORS[404]})
    def get(self, request, slug: str):
        campaign = campaign_for_participants(slug)
        return Response(OfferOutputSerializer(selectors.offers_of_campaign(campaign), many=True).data)


@extend_schema(tags=["price cut"])
class TaskStartApi(ParticipantApi):
    class InputSerializer(_DeviceInput):
        class Meta:
            ref_name = "CutTaskStartInput"

        code = serializers.CharField(
            max_length=32, required=False, allow_blank=True, help_text="The share code I arrived with."
        )

    @extend_schema(
        summary="Start cutting the price (my open price cut of this offer, if I have one)",
        request=InputSerializer,
        responses={201: TaskOutputSerializer, 200: TaskOutputSerializer, **ERRORS},
    )
    def post(self, request, offer_id: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        task, created = services.cut_task_start(
            offer_id=offer_id,
            starter=request.user,
            code=data.validated_data.get("code", ""),
            device_id=device_id_of(request, data.validated_data),
            ip=client_ip(request),
        )
        return _task_response(request, task, created)


@extend_schema(tags=["price cut"])
class TaskDetailApi(ParticipantApi):
    """Anyone with the link may look at a price cut: that is what the link is for."""

    @extend_schema(summary="Show a price cut", responses={200: TaskOutputSerializer, 404: ERRORS[404]})
    def get(self, request, code: str):
        return _task_response(request, services.task_by_code(code), False)


@extend_schema(tags=["price cut"])
class TaskHelpApi(ParticipantApi):
    class InputSerializer(_DeviceInput):
        class Meta:
            ref_name = "CutTaskHelpInput"

    @extend_schema(
        summary="Help a friend cut the price (joins the campaign through their link)",
        request=InputSerializer,
        responses={201: TaskOutputSerializer, **ERRORS},
    )
    def post(self, request, code: str):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        _, task = services.cut_task_help(
            task_code=code,
            helper=request.user,
            device_id=device_id_of(request, data.validated_data),
            ip=client_ip(request),
        )
        return _task_response(request, task, True)


class MyTaskSerializer(serializers.Serializer):
    code = serializers.CharField()
    campaign = serializers.CharField(source="campaign.slug")
    offer = serializers.CharField(source="offer.title")
    item_code = serializers.CharField(source="offer.item_code")
    status = serializers.CharField(help_text=TASK_STATUSES)
    price = serializers.SerializerMethodField()
    remaining = serializers.SerializerMethodField()
    helpers_left = serializers.IntegerField()
    expires_at = serializers.DateTimeField()
    redeemed = serializers.SerializerMethodField()

    def get_price(self, task) -> str:
        return yuan(task.price_fen)

    def get_remaining(self, task) -> str:
        return yuan(task.remaining_fen)

    def get_redeemed(self, task) -> bool:
        return task.redeemed_at is not None


@extend_schema(
    tags=["price cut"],
    summary="My price cuts",
    parameters=[
        OpenApiParameter("campaign", str, description="Campaign slug"),
        OpenApiParameter("status", str, enum=Task.Status.values, description="The task's status"),
    ],
)
class MyTasksApi(ParticipantApi, ListAPIView):
    serializer_class = MyTaskSerializer
    filter_backends = []

    class FilterSerializer(serializers.Serializer):
        class Meta:
            ref_name = "MyCutTasksFilter"

        campaign = serializers.SlugField(max_length=80, required=False)
        status = serializers.ChoiceField(choices=Task.Status.choices, required=False)

    def get_queryset(self):
        params = self.FilterSerializer(data=self.request.query_params)
        params.is_valid(raise_exception=True)
        return selectors.tasks_of(
            participant=self.request.user,
            campaign_slug=params.validated_data.get("campaign"),
            status=params.validated_data.get("status"),
        )


# Server to server ------------------------------------------------------------------------------
class ServerTaskSerializer(serializers.Serializer):
    code = serializers.CharField()
    campaign_id = serializers.IntegerField()
    item_code = serializers.CharField(source="offer.item_code")
    status = serializers.CharField(help_text=TASK_STATUSES)
    openid = serializers.CharField(source="starter.openid")
    unionid = serializers.CharField(source="starter.unionid")
    price = serializers.SerializerMethodField(help_text="The price to charge now (¥).")
    price_fen = serializers.IntegerField()
    completed_at = serializers.DateTimeField(allow_null=True)
    redeemed_at = serializers.DateTimeField(allow_null=True)
    order_id = serializers.CharField()

    def get_price(self, task) -> str:
        return yuan(task.price_fen)


class ServerApi(APIView):
    authentication_classes = [ServerSignatureAuthentication]
    permission_classes = [IsServer]
    throttle_classes = [ServerRateThrottle]


@extend_schema(tags=["server"])
class ServerTaskApi(ServerApi):
    @extend_schema(
        summary="Check a price cut before selling at its price (API key + HMAC)",
        responses={200: ServerTaskSerializer, 404: ERRORS[404]},
    )
    def get(self, request, code: str):
        return Response(ServerTaskSerializer(services.task_by_code(code)).data)


@extend_schema(tags=["server"])
class ServerTaskRedeemApi(ServerApi):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "CutTaskRedeemInput"

        order_id = serializers.RegexField(r"^[A-Za-z0-9_.:\-]{1,64}$")

    @extend_schema(
        summary="Record the order that bought at the cut price (once; idempotent for the same order)",
        request=InputSerializer,
        responses={
            200: ServerTaskSerializer,
            404: ERRORS[404],
            409: OpenApiResponse(description="`cut_task_not_completed`, `already_redeemed`"),
        },
    )
    def post(self, request, code: str):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        task = services.cut_task_redeem(task_code=code, order_id=data.validated_data["order_id"])
        return Response(ServerTaskSerializer(services.task_by_code(task.code)).data)
