from django.conf import settings
from django.db import models


class Participant(models.Model):
    """A mini-program user. Not a Django user: it logs in with WeChat and holds a token."""

    app_id = models.CharField(max_length=32)
    openid = models.CharField(max_length=64)
    unionid = models.CharField(max_length=64, blank=True, default="", db_index=True)
    nickname = models.CharField(max_length=64, blank=True, default="")
    avatar = models.ImageField(upload_to="avatars/%Y/%m/", blank=True)
    # Bumped when the avatar or nickname changes: cached posters are keyed on it.
    profile_version = models.PositiveIntegerField(default=1)
    # WeChat's session key, needed to decrypt data the mini program sends later. It
    # never leaves the server: no serializer, no admin field, no log line shows it.
    session_key = models.CharField(max_length=64, blank=True, default="", editable=False)
    first_seen_at = models.DateTimeField(auto_now_add=True)
    first_device_id = models.CharField(max_length=64, blank=True, default="", db_index=True)
    first_ip = models.GenericIPAddressField(null=True, blank=True)
    # With first_ip, what fraud scoring compares an invitee's open with ("same IP and UA").
    first_user_agent = models.CharField(max_length=300, blank=True, default="")
    # WeChat's getUserRiskRank (scene 1, campaigns), 0 low … 4 high; null until checked.
    risk_rank = models.PositiveSmallIntegerField(null=True, blank=True, editable=False)
    risk_checked_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_login_at = models.DateTimeField(null=True, blank=True)
    # Raising it signs the participant out everywhere (every token carries it).
    token_version = models.PositiveIntegerField(default=1)
    is_blocked = models.BooleanField(default=False)
    # When a member of staff also uses the mini program: they may not decide fraud cases
    # about themselves or their identity ring. Set by a superuser.
    staff_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="participants",
        help_text="The staff account of this person, if they also use the mini program. "
        "Nobody reviews a fraud case about themselves or their identity ring.",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["app_id", "openid"], name="participant_openid_unique_per_app"),
        ]

    def __str__(self) -> str:
        return self.nickname or f"participant {self.pk}"

    def __repr__(self) -> str:  # never the session key
        return f"<Participant {self.pk} {self.openid[:6]}…>"

    # DRF treats the authenticated principal like a user.
    is_authenticated = True
    is_anonymous = False

    @property
    def display_name(self) -> str:
        return self.nickname or "WeChat user"
