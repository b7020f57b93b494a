"""Group buying for the mini program, and the order signals for the business backend."""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from config.security import client_ip
from mechanics.groupbuy import selectors, services
from mechanics.groupbuy.models import Group, yuan
from referrals.api.auth import IsServer, ServerSignatureAuthentication
from referrals.api.throttles import ServerRateThrottle
from referrals.api.views import ParticipantApi, device_id_of
from referrals.services.attribution import campaign_for_participants

GROUP_STATUSES = "open, completed, expired or cancelled"
ERRORS = {
    404: OpenApiResponse(description="`deal_not_found`, `group_not_found`, `campaign_not_found`"),
    409: OpenApiResponse(
        description="`own_group`, `already_member`, `already_in_a_group`, `group_full`, `group_completed`, "
        "`group_expired`, `group_cancelled`, `same_person`, `deal_inactive`, `campaign_not_live`"
    ),
}


class TierSerializer(serializers.Serializer):
    min_members = serializers.IntegerField()
    price = serializers.SerializerMethodField()

    def get_price(self, tier) -> str:
        return yuan(tier.price_fen)


class DealOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    item_code = serializers.CharField()
    title = serializers.CharField()
    original_price = serializers.SerializerMethodField()
    group_price = serializers.SerializerMethodField()
    group_size = serializers.IntegerField()
    capacity = serializers.IntegerField()
    hours = serializers.IntegerField()
    virtual_fill = serializers.BooleanField()
    tiers = TierSerializer(many=True)

    def get_original_price(self, deal) -> str:
        return yuan(deal.original_price_fen)

    def get_group_price(self, deal) -> str:
        return yuan(deal.group_price_fen)


class DealBriefSerializer(DealOutputSerializer):
    tiers = None
    virtual_fill = None


class GroupOutputSerializer(serializers.Serializer):
    code = serializers.CharField()
    campaign = serializers.CharField()
    deal = DealBriefSerializer()
    status = serializers.CharField(help_text=GROUP_STATUSES)
    leader = serializers.CharField()
    group_size = serializers.IntegerField(help_text="K: members needed, the leader included.")
    capacity = serializers.IntegerField(help_text="Most members (above K only with price tiers).")
    member_count = serializers.IntegerField()
    virtual_count = serializers.IntegerField(help_text="Seats the platform filled (virtual fill).")
    seats_left = serializers.IntegerField(help_text="Members still needed to complete.")
    taking_members = serializers.BooleanField()
    price = serializers.CharField(help_text="What each member pays when joining (¥).")
    price_now = serializers.CharField(help_text="The price the group has reached so far (¥).")
    final_price = serializers.CharField(allow_null=True)
    next_tier = inline_serializer(
        "GroupNextTier",
        {
            "min_members": serializers.IntegerField(),
            "price": serializers.CharField(),
            "members_to_go": serializers.IntegerField(),
        },
        allow_null=True,
    )
    opened_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    completed_at = serializers.DateTimeField(allow_null=True)
    closed_at = serializers.DateTimeField(allow_null=True)
    share_code = serializers.CharField(help_text="The leader's share code: open it, then join.")
    path = serializers.CharField(help_text="The mini-program page of this group.")
    members = inline_serializer(
        "GroupMemberView",
        {
            "seat": serializers.IntegerField(),
            "name": serializers.CharField(),
            "is_leader": serializers.BooleanField(),
            "status": serializers.CharField(),
        },
        many=True,
    )
    me = inline_serializer(
        "GroupMe",
        {
            "seat": serializers.IntegerField(),
            "status": serializers.CharField(),
            "price": serializers.CharField(),
            "order_id": serializers.CharField(),
        },
        allow_null=True,
    )


class _GroupWriteInput(serializers.Serializer):
    device_id = serializers.CharField(max_length=64, required=False, allow_blank=True)
    order_id = serializers.RegexField(
        r"^[A-Za-z0-9_.:\-]{1,64}$",
        required=False,
        help_text="The business's order for this seat, sent back with its fulfil/refund signals.",
    )


def _group_response(request, group: Group, created: bool) -> Response:
    body = GroupOutputSerializer(selectors.group_view(group, viewer_id=request.user.pk)).data
    return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


@extend_schema(tags=["group buying"], summary="The group-buy deals of a campaign")
class DealListApi(ParticipantApi):
    @extend_schema(responses={200: DealOutputSerializer(many=True), 404: ERRORS[404]})
    def get(self, request, slug: str):
        campaign = campaign_for_participants(slug)
        return Response(DealOutputSerializer(selectors.deals_of_campaign(campaign), many=True).data)


@extend_schema(tags=["group buying"])
class GroupOpenApi(ParticipantApi):
    class InputSerializer(_GroupWriteInput):
        class Meta:
            ref_name = "GroupOpenInput"

        code = serializers.CharField(
            max_length=32,
            required=False,
            allow_blank=True,
            help_text="The share code the leader arrived with.",
        )

    @extend_schema(
        summary="Open a group as its leader (my filling group of this deal, if I have one)",
        request=InputSerializer,
        responses={201: GroupOutputSerializer, 200: GroupOutputSerializer, **ERRORS},
    )
    def post(self, request, deal_id: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        group, created = services.group_open(
            deal_id=deal_id,
            leader=request.user,
            code=data.validated_data.get("code", ""),
            device_id=device_id_of(request, data.validated_data),
            ip=client_ip(request),
            order_id=data.validated_data.get("order_id", ""),
        )
        return _group_response(request, group, created)


@extend_schema(tags=["group buying"])
class GroupDetailApi(ParticipantApi):
    """Anyone with the group's link may look at it: that is what the link is for."""

    @extend_schema(summary="Show a group", responses={200: GroupOutputSerializer, 404: ERRORS[404]})
    def get(self, request, code: str):
        return _group_response(request, services.group_by_code(code), False)


@extend_schema(tags=["group buying"])
class GroupJoinApi(ParticipantApi):
    class InputSerializer(_GroupWriteInput):
        class Meta:
            ref_name = "GroupJoinInput"

    @extend_schema(
        summary="Join a group through its leader's link",
        request=InputSerializer,
        responses={201: GroupOutputSerializer, **ERRORS},
    )
    def post(self, request, code: str):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        _, group = services.group_join(
            group_code=code,
            participant=request.user,
            device_id=device_id_of(request, data.validated_data),
            ip=client_ip(request),
            order_id=data.validated_data.get("order_id", ""),
        )
        return _group_response(request, group, True)


class MyGroupSerializer(serializers.Serializer):
    code = serializers.CharField(source="group.code")
    campaign = serializers.CharField(source="group.campaign.slug")
    deal = serializers.CharField(source="group.deal.title")
    item_code = serializers.CharField(source="group.deal.item_code")
    group_status = serializers.CharField(source="group.status", help_text=GROUP_STATUSES)
    is_leader = serializers.BooleanField()
    seat = serializers.IntegerField()
    status = serializers.CharField(help_text="My seat: joined (filling), confirmed or released.")
    price = serializers.SerializerMethodField()
    member_count = serializers.IntegerField(source="group.member_count")
    seats_left = serializers.IntegerField(source="group.seats_left")
    expires_at = serializers.DateTimeField(source="group.expires_at")
    joined_at = serializers.DateTimeField()

    def get_price(self, member) -> str:
        return yuan(member.price_fen)


@extend_schema(
    tags=["group buying"],
    summary="My groups (as leader or member)",
    parameters=[
        OpenApiParameter("campaign", str, description="Campaign slug"),
        OpenApiParameter("status", str, enum=Group.Status.values, description="The group's status"),
    ],
)
class MyGroupsApi(ParticipantApi, ListAPIView):
    serializer_class = MyGroupSerializer
    filter_backends = []

    class FilterSerializer(serializers.Serializer):
        class Meta:
            ref_name = "MyGroupsFilter"

        campaign = serializers.SlugField(max_length=80, required=False)
        status = serializers.ChoiceField(choices=Group.Status.choices, required=False)

    def get_queryset(self):
        params = self.FilterSerializer(data=self.request.query_params)
        params.is_valid(raise_exception=True)
        return selectors.memberships_of(
            participant=self.request.user,
            campaign_slug=params.validated_data.get("campaign"),
            status=params.validated_data.get("status"),
        )


# Server to server ------------------------------------------------------------------------------
class SignalOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField(help_text="fulfil, refund or refund_difference")
    amount = serializers.SerializerMethodField(help_text="¥ to charge (fulfil) or to refund.")
    amount_fen = serializers.IntegerField()
    group = serializers.CharField(source="group.code")
    campaign_id = serializers.IntegerField(source="group.campaign_id")
    item_code = serializers.CharField(source="group.deal.item_code")
    openid = serializers.CharField(source="member.participant.openid")
    unionid = serializers.CharField(source="member.participant.unionid")
    order_id = serializers.CharField(source="member.order_id")
    seat = serializers.IntegerField(source="member.seat")
    created_at = serializers.DateTimeField()

    def get_amount(self, signal) -> str:
        return yuan(signal.amount_fen)


class ServerApi(APIView):
    authentication_classes = [ServerSignatureAuthentication]
    permission_classes = [IsServer]
    throttle_classes = [ServerRateThrottle]


@extend_schema(tags=["server"])
class SignalListApi(ServerApi):
    class FilterSerializer(serializers.Serializer):
        class Meta:
            ref_name = "GroupSignalFilter"

        after = serializers.IntegerField(min_value=0, required=False, default=0)
        limit = serializers.IntegerField(
            min_value=1, max_value=services.MAX_SIGNALS, required=False, default=100
        )

    @extend_schema(
        summary="Group-buy order signals not yet acknowledged (API key + HMAC)",
        parameters=[
            OpenApiParameter("after", int, description="Only signals with a larger id (paging)."),
            OpenApiParameter("limit", int, description=f"At most {services.MAX_SIGNALS}; default 100."),
        ],
        responses={200: inline_serializer("GroupSignals", {"signals": SignalOutputSerializer(many=True)})},
    )
    def get(self, request):
        params = self.FilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        rows = services.signals_pending(**params.validated_data)
        return Response({"signals": SignalOutputSerializer(rows, many=True).data})


@extend_schema(tags=["server"])
class SignalAckApi(ServerApi):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "GroupSignalAckInput"

        ids = serializers.ListField(child=serializers.IntegerField(min_value=1), allow_empty=False)

    @extend_schema(
        summary="Acknowledge handled group-buy signals (idempotent)",
        request=InputSerializer,
        responses={
            200: inline_serializer(
                "GroupSignalAck",
                {
                    "acked": serializers.IntegerField(),
                    "already_acked": serializers.IntegerField(),
                    "unknown": serializers.IntegerField(),
                },
            )
        },
    )
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(services.signals_ack(ids=data.validated_data["ids"], by=request.user.pk))
