from rest_framework import serializers

from referrals.models import Participant, Referral, Reward, ShareLink


class ParticipantOutputSerializer(serializers.ModelSerializer):
    nickname = serializers.CharField(source="display_name")
    avatar_url = serializers.SerializerMethodField()

    class Meta:
        model = Participant
        fields = ["id", "nickname", "avatar_url", "first_seen_at"]
        read_only_fields = fields

    def get_avatar_url(self, obj: Participant) -> str | None:
        if not obj.avatar:
            return None
        request = self.context.get("request")
        url = f"{obj.avatar.url}?v={obj.profile_version}"
        return request.build_absolute_uri(url) if request else url


class ShareLinkOutputSerializer(serializers.ModelSerializer):
    campaign = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    channel = serializers.SlugRelatedField(slug_field="code", read_only=True)
    scene = serializers.CharField(
        source="code", help_text="Pass as the mini-program code's `scene` (≤ 32 chars)."
    )
    path = serializers.SerializerMethodField(help_text="The mini-program page to share, with the code.")
    poster_url = serializers.SerializerMethodField()

    class Meta:
        model = ShareLink
        fields = ["code", "scene", "campaign", "channel", "path", "poster_url", "created_at"]
        read_only_fields = fields

    def get_path(self, obj: ShareLink) -> str:
        return f"/pages/campaign/index?c={obj.campaign.slug}&s={obj.code}"

    def get_poster_url(self, obj: ShareLink) -> str:
        request = self.context.get("request")
        url = f"/api/v1/share-links/{obj.code}/poster.png"
        return request.build_absolute_uri(url) if request else url


class ReferralOutputSerializer(serializers.ModelSerializer):
    campaign = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    invitee = ParticipantOutputSerializer(read_only=True)

    class Meta:
        model = Referral
        fields = ["campaign", "invitee", "status", "joined_at", "valid_at", "depth"]
        read_only_fields = fields


class JoinOutputSerializer(serializers.Serializer):
    campaign = serializers.CharField()
    joined = serializers.BooleanField()
    created = serializers.BooleanField()
    attributed = serializers.BooleanField()
    inviter = serializers.CharField(allow_null=True)
    depth = serializers.IntegerField()
    status = serializers.CharField()
    rule = serializers.CharField(
        help_text="Why this attribution: open_within_window, code_at_join, no_code, "
        "unknown_code, self_referral or open_expired."
    )
    note = serializers.CharField(allow_blank=True)


class RewardOutputSerializer(serializers.ModelSerializer):
    campaign = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    rule = serializers.CharField(source="rule.name")
    why_held = serializers.SerializerMethodField(
        help_text="Empty unless the reward is held: “under review” while a fraud reviewer looks at it, "
        "“review hold” during the rule's hold, or “until <event>”."
    )
    review_note = serializers.SerializerMethodField(
        help_text="What the fraud reviewer wrote to the participant when deciding a review in this "
        "campaign; empty if nothing."
    )
    coupon_code = serializers.SerializerMethodField(help_text="The code of a coupon reward; null otherwise.")

    class Meta:
        model = Reward
        fields = [
            "id",
            "campaign",
            "rule",
            "kind",
            "amount",
            "points",
            "status",
            "why_held",
            "review_note",
            "payable_at",
            "coupon_code",
            "created_at",
        ]
        read_only_fields = fields

    def get_why_held(self, reward) -> str:
        from referrals.services.rewards import FRAUD_HOLD

        # Which signal or check held it stays with the reviewers: a fraudster learns nothing.
        return "under review" if reward.hold_reason.startswith(FRAUD_HOLD) else reward.hold_reason

    def get_review_note(self, reward) -> str:
        return self.context.get("review_notes", {}).get(reward.campaign_id, "")

    def get_coupon_code(self, reward) -> str | None:
        if reward.kind != "coupon" or reward.status not in ("approved", "paid"):
            return None
        coupon = getattr(reward, "coupon", None)
        return coupon.code if coupon else None
