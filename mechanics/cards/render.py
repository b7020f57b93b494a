"""Render a card: the poster renderer's avatar, nickname and QR code, plus the message.

Composition and PNG encoding reuse campaigns.posters: the background is decoded once per
template version and the rows no card changes are deflated once (BandedEncoder), so a
card costs about what a poster costs. Rendered PNGs are cached by `card_cache_key`.
"""

import hashlib
from functools import lru_cache

from django.conf import settings
from django.core.cache import cache
from PIL import Image, ImageDraw, ImageFont

from campaigns import posters

from .models import Card, CardTemplate

CACHE_SECONDS = 24 * 3600


@lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    # FISSION_CARD_FONT_PATH names a TrueType/OpenType font with CJK glyphs (e.g. Noto Sans
    # CJK) for production; the built-in font covers Latin text only.
    path = getattr(settings, "FISSION_CARD_FONT_PATH", "")
    if path:
        try:
            return ImageFont.truetype(path, size)
        except OSError:
            pass
    return ImageFont.load_default(size=size)


@lru_cache(maxsize=32)
def _background(path: str, version: int) -> Image.Image:
    with Image.open(path) as img:
        return img.convert("RGB")


@lru_cache(maxsize=4096)
def _char_width(font, char: str) -> float:
    return font.getlength(char)


def wrap(text: str, *, font, width: int, max_lines: int) -> list[str]:
    """Break `text` into at most `max_lines` lines no wider than `width` pixels; an explicit
    newline starts a new line; what does not fit ends in an ellipsis. Works per character,
    so Chinese text (no spaces) wraps too; Latin text breaks at spaces where it can.

    Widths are summed per character (cached per font), one lookup a character instead of
    measuring every growing prefix; kerning, which this ignores, only narrows a line."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line, used = "", 0.0
        for char in paragraph:
            w = _char_width(font, char)
            if used + w <= width or not line:
                line, used = line + char, used + w
                continue
            head, space, tail = line.rpartition(" ")
            if space and head:
                lines.append(head)
                line = tail + char
            else:
                lines.append(line)
                line = char.lstrip()
            used = sum(_char_width(font, c) for c in line)
        lines.append(line)
    if len(lines) > max_lines:
        last = lines[max_lines - 1]
        while last and sum(_char_width(font, c) for c in last + "…") > width:
            last = last[:-1]
        lines = [*lines[: max_lines - 1], last + "…"]
    return lines


def dynamic_rows(template: CardTemplate, max_lines: int) -> tuple[tuple[int, int], ...]:
    """The rows a card may change: the poster's rows plus the message box."""
    top = template.message_y - template.message_size // 2
    return (
        *posters.dynamic_rows(template),
        (top, template.message_y + template.message_box_height(max_lines) + template.message_size // 2),
    )


@lru_cache(maxsize=16)
def _encoder(template_id: int, version: int, path: str, rows: tuple) -> posters.BandedEncoder:
    return posters.BandedEncoder(_background(path, version), list(rows))


def render_card(
    template: CardTemplate,
    *,
    nickname: str,
    message: str,
    qr_payload: str,
    avatar: Image.Image | None = None,
    max_lines: int = 3,
) -> bytes:
    """The card as PNG bytes. Not cached: see card_png."""
    canvas = posters.compose_poster(template, nickname=nickname, qr_payload=qr_payload, avatar=avatar)
    font = _font(template.message_size)
    draw = ImageDraw.Draw(canvas)
    y = template.message_y
    for line in wrap(message, font=font, width=template.message_width, max_lines=max_lines):
        draw.text((template.message_x, y), line, fill=template.message_color, font=font)
        y += template.message_size + template.message_size // 4
    rows = dynamic_rows(template, max_lines)
    return _encoder(template.pk or 0, template.version, template.background.path, rows).encode(canvas)


def card_qr_payload(card: Card) -> str:
    """What the card's QR code opens: the sharer's public share URL, as on their poster.
    Scanning it attributes a join to the sharer exactly like the card's link; a shorter
    payload is a smaller QR code, which renders about twice as fast."""
    return posters.share_url(card.link.code)


def card_cache_key(card: Card) -> str:
    """Everything the image depends on: the template's version, the message, the sharer's
    avatar and nickname (profile_version), and the link in the QR code."""
    digest = hashlib.sha256(card.message.encode()).hexdigest()[:16]
    template = card.template
    return (
        f"card:{template.pk}:{template.version}:{digest}:{card.sharer_id}:"
        f"{card.sharer.profile_version}:{card.code}"
    )


def card_png(card: Card, *, max_lines: int) -> tuple[bytes, str]:
    """(PNG, cache key) of a card: from the cache, or rendered and cached."""
    key = card_cache_key(card)
    png = cache.get(key)
    if png is None:
        sharer = card.sharer
        avatar = posters.open_avatar(sharer.avatar.path) if sharer.avatar else None
        png = render_card(
            card.template,
            nickname=sharer.display_name,
            message=card.message or card.template.caption,
            qr_payload=card_qr_payload(card),
            avatar=avatar,
            max_lines=max_lines,
        )
        cache.set(key, png, timeout=CACHE_SECONDS)
    return png, key


def render_template_preview(template: CardTemplate, *, max_lines: int = 3) -> bytes:
    sample = "Happy New Year! Wishing you and your family health and luck."
    if getattr(settings, "FISSION_CARD_FONT_PATH", ""):  # the built-in font has no CJK glyphs
        sample = "新春快乐！" + sample
    message = template.caption or sample
    return render_card(
        template,
        nickname="Preview user",
        message=message,
        qr_payload=posters.share_url("PREVIEW"),
        max_lines=max_lines,
    )
