"""Distribution routes of the mini program. Every list is the caller's own."""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response

from config.errors import ApplicationError
from config.security import client_ip
from referrals.api.serializers import ParticipantOutputSerializer
from referrals.api.views import ParticipantApi, device_id_of
from referrals.services.attribution import campaign_for_participants

from .. import selectors, services
from ..models import Binding

ERRORS = {
    404: OpenApiResponse(
        description="campaign_not_found, not_a_distribution_campaign, "
        "distribution_not_configured, share_link_not_found"
    ),
    409: OpenApiResponse(description="campaign_not_live, not_a_distributor, binding_self, binding_protected"),
}


class DistributorOutputSerializer(serializers.Serializer):
    class Meta:
        ref_name = "DistributorOutput"

    campaign = serializers.CharField(source="campaign.slug")
    status = serializers.CharField(help_text="pending, approved, rejected or suspended.")
    applied_at = serializers.DateTimeField()
    decided_at = serializers.DateTimeField(allow_null=True)


class ApplyApi(ParticipantApi):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "DistributorApplyInput"

        code = serializers.CharField(max_length=32, required=False, allow_blank=True)
        device_id = serializers.CharField(max_length=64, required=False, allow_blank=True)

    @extend_schema(
        tags=["distribution"],
        summary="Become a distributor (free; approved at once or after ops approve, per the plan)",
        request=InputSerializer,
        responses={200: DistributorOutputSerializer, 201: DistributorOutputSerializer, **ERRORS},
    )
    def post(self, request, slug: str):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        campaign = campaign_for_participants(slug)
        distributor, created = services.distributor_apply(
            campaign=campaign,
            participant=request.user,
            code=data.validated_data.get("code", ""),
            ip=client_ip(request),
            device_id=device_id_of(request, data.validated_data),
        )
        return Response(
            DistributorOutputSerializer(distributor).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class BindingOutputSerializer(serializers.Serializer):
    class Meta:
        ref_name = "DistributionBindingOutput"

    id = serializers.IntegerField()
    status = serializers.CharField(help_text="active, replaced, expired or released.")
    bound_at = serializers.DateTimeField()
    protected_until = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField(allow_null=True)


class BindApi(ParticipantApi):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "DistributionBindInput"

        code = serializers.CharField(max_length=32, help_text="The distributor's share code (scene).")
        device_id = serializers.CharField(max_length=64, required=False, allow_blank=True)

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "DistributionBindOutput"

        outcome = serializers.CharField(
            help_text="bound, replaced (taken over after protection) or already_bound."
        )
        distributor = ParticipantOutputSerializer(source="binding.distributor")
        binding = BindingOutputSerializer()

    @extend_schema(
        tags=["distribution"],
        summary="Bind me, as a customer, to the distributor whose link I opened",
        request=InputSerializer,
        responses={200: OutputSerializer, 201: OutputSerializer, **ERRORS},
    )
    def post(self, request, slug: str):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        campaign = campaign_for_participants(slug)
        result = services.binding_bind(
            campaign=campaign,
            customer=request.user,
            code=data.validated_data["code"],
            ip=client_ip(request),
            device_id=device_id_of(request, data.validated_data),
        )
        body = self.OutputSerializer(result, context={"request": request}).data
        created = result["outcome"] != "already_bound"
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class MyBindingApi(ParticipantApi):
    @extend_schema(
        tags=["distribution"],
        summary="As a customer: the distributor I am bound to now",
        responses={
            200: BindApi.OutputSerializer,
            404: OpenApiResponse(description="campaign_not_found, not_bound"),
        },
    )
    def get(self, request, slug: str):
        campaign = campaign_for_participants(slug)
        binding = selectors.binding_of_customer(campaign=campaign, customer=request.user)
        if binding is None:
            raise ApplicationError(
                "not_bound", "You are not bound to a distributor in this campaign.", status=404
            )
        body = {"outcome": "already_bound", "binding": binding}
        return Response(BindApi.OutputSerializer(body, context={"request": request}).data)


class MeApi(ParticipantApi):
    @extend_schema(
        tags=["distribution"],
        summary="My distributor status, customers and commission totals by state",
        responses={
            200: inline_serializer(
                "DistributorSummary",
                {
                    "campaign": serializers.CharField(),
                    "status": serializers.CharField(allow_null=True),
                    "applied_at": serializers.DateTimeField(allow_null=True),
                    "active_customers": serializers.IntegerField(),
                    "customers": serializers.IntegerField(),
                    "commissions": serializers.DictField(child=serializers.DecimalField(12, 2)),
                },
            ),
            404: ERRORS[404],
        },
    )
    def get(self, request, slug: str):
        campaign = campaign_for_participants(slug)
        summary = selectors.distributor_summary(campaign=campaign, participant=request.user)
        if summary["applied_at"] is not None:
            summary["applied_at"] = serializers.DateTimeField().to_representation(summary["applied_at"])
        summary["commissions"] = {k: f"{v:.2f}" for k, v in summary["commissions"].items()}
        return Response(summary)


class CustomerOutputSerializer(BindingOutputSerializer):
    class Meta:
        ref_name = "DistributionCustomerOutput"

    customer = ParticipantOutputSerializer()
    orders = serializers.IntegerField(source="order_count", help_text="Orders this binding attributed to me.")


class MyListApi(ParticipantApi, ListAPIView):
    filter_backends = []

    def campaign(self):
        return campaign_for_participants(self.kwargs["slug"])


@extend_schema(
    tags=["distribution"],
    summary="My customers (bindings), newest first",
    parameters=[OpenApiParameter("status", str, enum=Binding.Status.values)],
)
class MyCustomersApi(MyListApi):
    serializer_class = CustomerOutputSerializer

    class FilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=Binding.Status.values, required=False)

    def get_queryset(self):
        params = self.FilterSerializer(data=self.request.query_params)
        params.is_valid(raise_exception=True)
        return selectors.customers_of(
            campaign=self.campaign(),
            distributor=self.request.user,
            status=params.validated_data.get("status", ""),
        )


class OrderOutputSerializer(serializers.Serializer):
    class Meta:
        ref_name = "DistributionOrderOutput"

    order_id = serializers.CharField()
    customer = ParticipantOutputSerializer()
    level = serializers.IntegerField(help_text="1: my customer; 2: a customer of a distributor I recruited.")
    amount = serializers.DecimalField(12, 2)
    paid_at = serializers.DateTimeField()
    refunded = serializers.BooleanField()
    commission = serializers.DecimalField(12, 2, allow_null=True, help_text="My commission on it, if any.")


@extend_schema(tags=["distribution"], summary="Orders of my customers, with refunds and my commission")
class MyOrdersApi(MyListApi):
    serializer_class = OrderOutputSerializer

    def get_queryset(self):
        return selectors.orders_of(campaign=self.campaign(), distributor=self.request.user)


class CommissionOutputSerializer(serializers.Serializer):
    class Meta:
        ref_name = "DistributionCommissionOutput"

    id = serializers.IntegerField()
    order_id = serializers.SerializerMethodField()
    rule = serializers.CharField(source="rule.name")
    level = serializers.IntegerField(source="rule.level")
    amount = serializers.DecimalField(12, 2)
    state = serializers.CharField(help_text="held, approved, paid, clawed_back, voided or rejected.")
    why_held = serializers.CharField(source="hold_reason")
    payable_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()

    def get_order_id(self, reward) -> str:
        return reward.source.removeprefix("order:")


@extend_schema(
    tags=["distribution"],
    summary="My commissions and their states",
    parameters=[
        OpenApiParameter("state", str, enum=["held", "approved", "paid", "clawed_back", "voided", "rejected"])
    ],
)
class MyCommissionsApi(MyListApi):
    serializer_class = CommissionOutputSerializer

    class FilterSerializer(serializers.Serializer):
        state = serializers.ChoiceField(
            choices=["held", "approved", "paid", "clawed_back", "voided", "rejected"], required=False
        )

    def get_queryset(self):
        params = self.FilterSerializer(data=self.request.query_params)
        params.is_valid(raise_exception=True)
        return selectors.commissions_of(
            campaign=self.campaign(),
            distributor=self.request.user,
            state=params.validated_data.get("state", ""),
        )
