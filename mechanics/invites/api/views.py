"""Invite tasks for the mini program: the task and its tiers, my progress, my friends."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.response import Response

from referrals.api.views import ParticipantApi
from referrals.services import attribution

from .. import selectors, services

ERRORS = {
    404: OpenApiResponse(description="`campaign_not_found`, `not_an_invite_task`, `invite_task_missing`"),
}


class TierSerializer(serializers.Serializer):
    class Meta:
        ref_name = "InviteTier"

    count = serializers.IntegerField(help_text="Valid friends the tier needs.")
    name = serializers.CharField()
    reward = serializers.CharField(help_text="The reward in words, e.g. “¥5.00 cash”.")


class MyTierSerializer(TierSerializer):
    class Meta:
        ref_name = "MyInviteTier"

    unlocked = serializers.BooleanField()
    friends_to_go = serializers.IntegerField()
    reward_status = serializers.CharField(
        allow_null=True, help_text="pending, held, approved, paid… or null while not granted."
    )
    reward_amount = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True)
    reward_points = serializers.IntegerField(allow_null=True)
    reward_hold_reason = serializers.CharField(allow_blank=True)


def _task_of(slug: str):
    campaign = attribution.campaign_for_participants(slug)
    return services._task(campaign)


@extend_schema(tags=["invite tasks"])
class InviteTaskDetailApi(ParticipantApi):
    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "InviteTaskOutput"

        campaign = serializers.CharField(source="campaign.slug")
        title = serializers.CharField()
        description = serializers.CharField()
        valid_user_rule = serializers.CharField(help_text="What a friend must do to count.")
        tiers = TierSerializer(many=True)
        rules_text = serializers.CharField(help_text="The public rules, in full.")

    @extend_schema(summary="The task and its tiers", responses={200: OutputSerializer, **ERRORS})
    def get(self, request, slug: str):
        task = _task_of(slug)
        campaign = task.campaign
        body = {
            "campaign": campaign,
            "title": task.title,
            "description": task.description,
            "valid_user_rule": campaign.valid_user_rule_text(),
            "tiers": [
                {"count": t.milestone, "name": t.name, "reward": selectors.reward_text(t)}
                for t in selectors.tiers_of(campaign)
            ],
            "rules_text": "\n".join(x for x in (campaign.rules_text, campaign.reward_rules_text) if x),
        }
        return Response(self.OutputSerializer(body).data)


@extend_schema(tags=["invite tasks"])
class MyInviteTaskApi(ParticipantApi):
    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "MyInviteTaskOutput"

        campaign = serializers.CharField()
        joined = serializers.BooleanField()
        valid_friends = serializers.IntegerField(help_text="Friends who joined through me and became valid.")
        pending_friends = serializers.IntegerField(help_text="Friends who joined but are not valid yet.")
        tiers_unlocked = serializers.IntegerField()
        tiers_total = serializers.IntegerField()
        completed = serializers.BooleanField()
        next_tier = MyTierSerializer(allow_null=True)
        friends_to_go = serializers.IntegerField(help_text="Valid friends still needed for the next tier.")
        message = serializers.CharField(help_text="e.g. “2 more friends to go”.")
        valid_user_rule = serializers.CharField()
        tiers = MyTierSerializer(many=True)

    @extend_schema(
        summary="My task: valid friends, next tier, friends to go",
        responses={200: OutputSerializer, **ERRORS},
    )
    def get(self, request, slug: str):
        task = _task_of(slug)
        progress = selectors.progress_for(campaign=task.campaign, participant=request.user)
        return Response(self.OutputSerializer(progress).data)


@extend_schema(tags=["invite tasks"], summary="My invited friends in the task and whether each counts yet")
class MyInviteFriendsApi(ParticipantApi, ListAPIView):
    filter_backends = []

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "InviteFriendOutput"

        nickname = serializers.CharField(source="invitee.display_name")
        joined_at = serializers.DateTimeField()
        counts = serializers.SerializerMethodField(help_text="True once the friend is valid.")
        valid_at = serializers.DateTimeField(allow_null=True)

        def get_counts(self, obj) -> bool:
            return obj.status == "valid"

    serializer_class = OutputSerializer

    def get_queryset(self):
        task = _task_of(self.kwargs["slug"])
        return selectors.friends_of(campaign=task.campaign, participant=self.request.user)
