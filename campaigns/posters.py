"""Render a card/poster: the template's background with an avatar, a nickname and a QR code.

The admin preview uses it now; the share-poster endpoint will use the same function.
"""

import io
from functools import lru_cache

import segno
from django.conf import settings
from PIL import Image, ImageDraw, ImageFont, ImageOps

from .models import PosterTemplate


@lru_cache(maxsize=32)
def _background(path: str, version: int) -> Image.Image:
    # Decoded once per template version: decoding a large JPEG costs more than the rest.
    with Image.open(path) as img:
        return img.convert("RGB")


@lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def _round_avatar(avatar: Image.Image, size: int) -> tuple[Image.Image, Image.Image]:
    avatar = ImageOps.fit(avatar.convert("RGB"), (size, size))
    mask = Image.new("L", (size, size), 0)
    ImageDraw.Draw(mask).ellipse((0, 0, size - 1, size - 1), fill=255)
    return avatar, mask


def placeholder_avatar(size: int = 128) -> Image.Image:
    """A neutral grey avatar, like the one WeChat hands out since 2022."""
    img = Image.new("RGB", (size, size), "#C8C8C8")
    draw = ImageDraw.Draw(img)
    draw.ellipse((size * 0.3, size * 0.15, size * 0.7, size * 0.55), fill="#F0F0F0")
    draw.ellipse((size * 0.15, size * 0.6, size * 0.85, size * 1.2), fill="#F0F0F0")
    return img


def qr_image(payload: str, size: int) -> Image.Image:
    qr = segno.make(payload, error="m", micro=False)
    buf = io.BytesIO()
    qr.save(buf, kind="png", scale=1, border=2)
    buf.seek(0)
    with Image.open(buf) as img:
        return img.convert("RGB").resize((size, size), Image.Resampling.NEAREST)


def render_poster(
    template: PosterTemplate, *, nickname: str, qr_payload: str, avatar: Image.Image | None = None
) -> bytes:
    """Return the poster as PNG bytes."""
    canvas = _background(template.background.path, template.version).copy()
    face, mask = _round_avatar(avatar or placeholder_avatar(template.avatar_size), template.avatar_size)
    canvas.paste(face, (template.avatar_x, template.avatar_y), mask)
    ImageDraw.Draw(canvas).text(
        (template.nickname_x, template.nickname_y),
        nickname[:24],
        fill=template.nickname_color,
        font=_font(template.nickname_size),
    )
    canvas.paste(qr_image(qr_payload, template.qr_size), (template.qr_x, template.qr_y))
    out = io.BytesIO()
    canvas.save(out, format="PNG", optimize=False, compress_level=1)
    return out.getvalue()


def render_preview(template: PosterTemplate) -> bytes:
    return render_poster(
        template,
        nickname="Preview user",
        qr_payload=share_url("PREVIEW"),
    )


def open_avatar(path: str) -> Image.Image | None:
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except (OSError, ValueError):
        return None  # a missing or broken file: the poster falls back to the grey avatar


def share_url(code: str) -> str:
    """What the poster's QR code encodes: the public share URL carrying the code."""
    return f"{settings.FISSION_PUBLIC_BASE_URL.rstrip('/')}/s/{code}"
