"""Render a card/poster: the template's background with an avatar, a nickname and a QR code.

The admin preview uses it now; the share-poster endpoint will use the same function.
"""

import struct
import zlib
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
    # A fixed mask pattern: valid for any reader, and it skips scoring all eight masks,
    # which is most of segno's time.
    qr = segno.make(payload, error="m", micro=False, mask=0)
    n = len(qr.matrix)
    modules = Image.frombytes("L", (n, n), bytes(0 if dark else 255 for row in qr.matrix for dark in row))
    quiet = ImageOps.expand(modules, border=2, fill=255)  # the quiet zone readers need
    return quiet.convert("RGB").resize((size, size), Image.Resampling.NEAREST)


def render_poster(
    template: PosterTemplate, *, nickname: str, qr_payload: str, avatar: Image.Image | None = None
) -> bytes:
    """Return the poster as PNG bytes."""
    canvas = compose_poster(template, nickname=nickname, qr_payload=qr_payload, avatar=avatar)
    encoder = _encoder(template.pk or 0, template.version, template.background.path, dynamic_rows(template))
    return encoder.encode(canvas)


def compose_poster(
    template: PosterTemplate, *, nickname: str, qr_payload: str, avatar: Image.Image | None = None
) -> Image.Image:
    canvas = _background(template.background.path, template.version).copy()
    face, mask = _round_avatar(avatar or placeholder_avatar(template.avatar_size), template.avatar_size)
    canvas.paste(face, (template.avatar_x, template.avatar_y), mask)
    ImageDraw.Draw(canvas).text(
        (template.nickname_x, template.nickname_y),
        (nickname.splitlines() or [""])[0][:24],  # one line: the encoder re-encodes only its rows
        fill=template.nickname_color,
        font=_font(template.nickname_size),
    )
    canvas.paste(qr_image(qr_payload, template.qr_size), (template.qr_x, template.qr_y))
    return canvas


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def _png_rows(image: Image.Image) -> bytes:
    """PNG scanlines of an RGB image: each row a filter byte 0 ("none") and its pixels.

    Pillow tries every row filter on every row; a poster is mostly flat colour, which
    deflate compresses well unfiltered. Built in Pillow's C code: the RGB bytes viewed
    as a one-byte-per-pixel image, pasted one column in."""
    width, height = image.size
    stride = width * 3
    rows = Image.frombuffer("L", (stride, height), image.tobytes(), "raw", "L", 0, 1)
    framed = Image.new("L", (stride + 1, height), 0)
    framed.paste(rows, (1, 0))
    return framed.tobytes()


def _png(width: int, height: int, zlib_stream: bytes) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib_stream) + _chunk(b"IEND", b"")
    )


def encode_png(image: Image.Image) -> bytes:
    """An RGB image as PNG: unfiltered rows deflated at level 1, about twice as fast as
    Pillow's encoder on posters, with the same pixels and a similar size."""
    image = image if image.mode == "RGB" else image.convert("RGB")
    return _png(*image.size, zlib.compress(_png_rows(image), 1))


def _deflate_segment(raw: bytes) -> bytes:
    # Raw deflate ending in a full flush: byte-aligned, and with no reference to earlier
    # data, so segments made separately (some long ago) concatenate into one stream.
    compressor = zlib.compressobj(1, zlib.DEFLATED, -15)
    return compressor.compress(raw) + compressor.flush(zlib.Z_FULL_FLUSH)


class BandedEncoder:
    """PNG encoding of posters that differ from their template only in some rows.

    The rows of the background that no poster changes (everything above, between and
    below the avatar, nickname and QR code) are deflated once per template version;
    each poster deflates only its own rows, about a quarter of the image. The result is
    one valid zlib stream: header, segments, an empty final block, Adler-32 of all rows.
    """

    ZLIB_HEADER = b"\x78\x01"  # deflate, 32 KB window, fastest level
    FINAL_BLOCK = b"\x03\x00"  # an empty fixed-Huffman block with BFINAL set

    def __init__(self, background: Image.Image, dynamic_rows: list[tuple[int, int]]):
        self.size = background.size
        height = self.size[1]
        bands, y = [], 0
        for top, bottom in sorted((max(0, a), min(height, b)) for a, b in dynamic_rows if b > a):
            if bands and top <= bands[-1][1]:  # overlapping or touching: merge
                bands[-1] = (bands[-1][0], max(bands[-1][1], bottom))
            else:
                bands.append((top, bottom))
        self.segments: list[tuple[int, int, bytes | None, bytes | None]] = []
        for top, bottom in bands:
            if top > y:
                self._static(background, y, top)
            self.segments.append((top, bottom, None, None))
            y = bottom
        if y < height:
            self._static(background, y, height)

    def _static(self, background: Image.Image, top: int, bottom: int) -> None:
        raw = _png_rows(background.crop((0, top, self.size[0], bottom)))
        self.segments.append((top, bottom, raw, _deflate_segment(raw)))

    def encode(self, canvas: Image.Image) -> bytes:
        width = self.size[0]
        parts, adler = [self.ZLIB_HEADER], 1
        for top, bottom, raw, packed in self.segments:
            if packed is None:
                raw = _png_rows(canvas.crop((0, top, width, bottom)))
                packed = _deflate_segment(raw)
            parts.append(packed)
            adler = zlib.adler32(raw, adler)
        parts += [self.FINAL_BLOCK, struct.pack(">I", adler)]
        return _png(*self.size, b"".join(parts))


@lru_cache(maxsize=16)
def _encoder(template_id: int, version: int, path: str, dynamic_rows: tuple) -> BandedEncoder:
    return BandedEncoder(_background(path, version), list(dynamic_rows))


def dynamic_rows(template: PosterTemplate) -> tuple[tuple[int, int], ...]:
    """The rows a poster may change: avatar, nickname (with room for descenders), QR code."""
    return (
        (template.avatar_y, template.avatar_y + template.avatar_size),
        (template.nickname_y - template.nickname_size // 2, template.nickname_y + 2 * template.nickname_size),
        (template.qr_y, template.qr_y + template.qr_size),
    )


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
