from django.urls import path, register_converter

from . import views


class ShareCode:
    """Share codes are URL-safe base64 (≤ 32 characters); anything else is not a code."""

    regex = r"[A-Za-z0-9_\-]{1,32}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(ShareCode, "sharecode")

urlpatterns = [
    path("auth/wechat/", views.LoginApi.as_view(), name="auth-wechat"),
    path("me/", views.MeApi.as_view(), name="me"),
    path("me/avatar/", views.AvatarApi.as_view(), name="me-avatar"),
    path("me/referrals/", views.MyReferralsApi.as_view(), name="me-referrals"),
    path("me/rewards/", views.MyRewardsApi.as_view(), name="me-rewards"),
    path("me/campaigns/<slug:slug>/progress", views.ProgressApi.as_view(), name="me-progress"),
    path("campaigns/<slug:slug>/share-links/", views.ShareLinkCreateApi.as_view(), name="share-link-create"),
    path("campaigns/<slug:slug>/join", views.CampaignJoinApi.as_view(), name="campaign-join"),
    path("share-links/<sharecode:code>/", views.ShareLinkDetailApi.as_view(), name="share-link-detail"),
    path("share-links/<sharecode:code>/poster.png", views.PosterApi.as_view(), name="share-link-poster"),
    path("share-links/<sharecode:code>/open", views.ShareLinkOpenApi.as_view(), name="share-link-open"),
    path("events/", views.EventBatchApi.as_view(), name="events"),
    path("server/events/", views.ServerEventBatchApi.as_view(), name="server-events"),
    path("wechatpay/callback", views.WeChatPayCallbackApi.as_view(), name="wechatpay-callback"),
]
