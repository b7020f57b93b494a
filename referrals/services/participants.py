"""Participants: WeChat login, profile and avatar."""

import io
import logging

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from PIL import Image, ImageOps, UnidentifiedImageError

from config.errors import ApplicationError
from referrals import wechat
from referrals.models import Participant
from referrals.tokens import token_issue, ttl

log = logging.getLogger(__name__)

# WeChat errcodes that are a normal outcome of a bad or abusive request: answered 4xx.
WECHAT_ERRORS = {
    40029: (400, "wechat_code_invalid", "The login code is invalid or has expired; call wx.login() again."),
    40163: (400, "wechat_code_used", "The login code was already used; call wx.login() again."),
    45011: (429, "wechat_rate_limited", "Too many logins for this user in a minute; wait a minute."),
    40226: (403, "wechat_user_blocked", "WeChat blocked this user as high-risk."),
}

AVATAR_SIZE = 256
AVATAR_FORMATS = {"JPEG", "PNG", "WEBP"}


class WeChatUnavailableError(ApplicationError):
    status_code = 503

    def __init__(self, retry_after: int):
        super().__init__("wechat_unavailable", "WeChat did not answer; try again shortly.")
        self.retry_after = retry_after


def participant_login(*, code: str, device_id: str = "", ip: str | None = None, user_agent: str = "") -> dict:
    """Exchange a wx.login() code for a participant and an access token.

    Idempotent for the participant (get or create by app id + openid, safe under
    concurrent logins); each successful call issues a fresh token. The session key is
    stored and never returned.
    """
    try:
        session = wechat.code2session(code)
    except wechat.WeChatError as exc:
        status, err_code, message = WECHAT_ERRORS.get(
            exc.errcode, (502, "wechat_error", "WeChat refused the login; try again.")
        )
        log.info("wechat login refused: errcode=%s", exc.errcode)
        error = ApplicationError(err_code, message, status=status)
        if status == 429:
            error.retry_after = 60  # WeChat's limit is per user per minute
        raise error from exc
    except wechat.WeChatUnavailable as exc:
        raise WeChatUnavailableError(exc.retry_after) from exc

    now = timezone.now()
    app_id = settings.WECHAT_APP_ID
    defaults = {
        "unionid": session.unionid,
        "session_key": session.session_key,
        "first_device_id": device_id[:64],
        "first_ip": ip,
        "first_user_agent": user_agent[:300],
        "last_login_at": now,
    }
    try:
        with transaction.atomic():
            participant, created = Participant.objects.get_or_create(
                app_id=app_id, openid=session.openid, defaults=defaults
            )
    except IntegrityError:  # a concurrent first login won the insert
        participant, created = Participant.objects.get(app_id=app_id, openid=session.openid), False
    if not created:
        updates = {"session_key": session.session_key, "last_login_at": now}
        if session.unionid and not participant.unionid:
            updates["unionid"] = session.unionid
        Participant.objects.filter(pk=participant.pk).update(**updates)
        participant.refresh_from_db()
    if participant.is_blocked:
        raise ApplicationError("participant_blocked", "This account is blocked.", status=403)
    return {
        "participant": participant,
        "created": created,
        "token": token_issue(participant_id=participant.pk, token_version=participant.token_version),
        "expires_at": now + ttl(),
    }


def participant_update_profile(*, participant: Participant, nickname: str) -> Participant:
    """Set the nickname shown on posters. Idempotent."""
    nickname = nickname.strip()
    if nickname != participant.nickname:
        Participant.objects.filter(pk=participant.pk).update(
            nickname=nickname, profile_version=F("profile_version") + 1
        )
        participant.refresh_from_db()
    return participant


def participant_set_avatar(*, participant: Participant, upload) -> Participant:
    """Check, re-encode (256×256 JPEG, no metadata) and store an uploaded avatar."""
    limit = settings.FISSION_AVATAR_MAX_BYTES
    if upload.size > limit:
        raise ApplicationError(
            "avatar_too_large",
            f"The avatar may be at most {limit // 1024} KB.",
            status=413,
            fields={"avatar": [f"{upload.size // 1024} KB is too large."]},
        )
    try:
        with Image.open(upload) as probe:
            kind = probe.format
            probe.verify()  # cheap structural check before decoding
        upload.seek(0)
        with Image.open(upload) as img:
            if img.width * img.height > 40_000_000:  # a decompression bomb, not a photo
                raise ApplicationError("avatar_invalid", "The image is too large in pixels.")
            img = ImageOps.exif_transpose(img).convert("RGB")
            face = ImageOps.fit(img, (AVATAR_SIZE, AVATAR_SIZE))
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ApplicationError(
            "avatar_invalid",
            "The file is not a readable JPEG, PNG or WebP image.",
            fields={"avatar": ["Not a readable image."]},
        ) from exc
    if kind not in AVATAR_FORMATS:
        raise ApplicationError(
            "avatar_invalid",
            f"{kind} images are not accepted; send JPEG, PNG or WebP.",
            fields={"avatar": [f"{kind} is not accepted."]},
        )
    out = io.BytesIO()
    face.save(out, format="JPEG", quality=88)
    old = participant.avatar.name if participant.avatar else ""
    participant.avatar.save(f"{participant.pk}.jpg", ContentFile(out.getvalue()), save=False)
    Participant.objects.filter(pk=participant.pk).update(
        avatar=participant.avatar.name, profile_version=F("profile_version") + 1
    )
    if old and old != participant.avatar.name:
        participant.avatar.storage.delete(old)
    participant.refresh_from_db()
    return participant
