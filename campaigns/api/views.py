"""Campaign reads for the mini program: public fields only."""

import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.generics import ListAPIView, RetrieveAPIView

from campaigns.models import Campaign
from campaigns.selectors import campaign_list_live, campaign_list_public


class CampaignOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Campaign
        fields = ["slug", "name", "kind", "status", "description", "starts_at", "ends_at", "time_zone"]
        read_only_fields = fields


class CampaignDetailOutputSerializer(CampaignOutputSerializer):
    rules_text = serializers.CharField(help_text="The public rules, shown in full to participants.")
    reward_rules_text = serializers.CharField(
        help_text="The reward rules in words, generated from the rules."
    )

    class Meta(CampaignOutputSerializer.Meta):
        fields = [*CampaignOutputSerializer.Meta.fields, "rules_text", "reward_rules_text"]
        read_only_fields = fields


class CampaignFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=Campaign.Kind.choices)

    class Meta:
        model = Campaign
        fields = ["kind"]


@extend_schema(tags=["campaigns"], summary="Live campaigns")
class CampaignListApi(ListAPIView):
    """Campaigns that are live now, soonest ending first. Filter with `?kind=`."""

    serializer_class = CampaignOutputSerializer
    filterset_class = CampaignFilter

    def get_queryset(self):
        return campaign_list_live()


@extend_schema(tags=["campaigns"], summary="One campaign, with its public rules")
class CampaignDetailApi(RetrieveAPIView):
    """A scheduled, live, paused or ended campaign. Drafts and archived ones are 404."""

    serializer_class = CampaignDetailOutputSerializer
    lookup_field = "slug"

    def get_queryset(self):
        return campaign_list_public()
