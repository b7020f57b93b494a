import io

import pytest
from PIL import Image, ImageChops

from campaigns.posters import encode_png, qr_image, render_poster


@pytest.mark.parametrize("size", [(1, 1), (750, 1334), (333, 77)])
def test_encode_png_round_trips_every_pixel(size):
    # given an image with flat areas, gradients and noise
    image = Image.effect_noise(size, 64).convert("RGB")
    image.paste((183, 28, 28), (0, 0, size[0] // 2, size[1] // 2))
    # when
    data = encode_png(image)
    # then Pillow (any PNG reader) decodes exactly the same pixels
    decoded = Image.open(io.BytesIO(data))
    assert decoded.format == "PNG" and decoded.mode == "RGB" and decoded.size == size
    assert ImageChops.difference(decoded, image).getbbox() is None


def test_poster_has_avatar_nickname_and_a_readable_qr_area(make_campaign, make_template):
    template = make_template(make_campaign())
    avatar = Image.new("RGB", (300, 300), (10, 200, 30))
    png = render_poster(
        template, nickname="Sam", qr_payload="https://fission.example.com/s/abc", avatar=avatar
    )
    poster = Image.open(io.BytesIO(png)).convert("RGB")
    centre = (template.avatar_x + template.avatar_size // 2, template.avatar_y + template.avatar_size // 2)
    assert poster.getpixel(centre) == (10, 200, 30)  # the avatar, inside its round mask
    corner = (template.avatar_x, template.avatar_y)
    assert poster.getpixel(corner) == (0xB7, 0x1C, 0x1C)  # outside the circle: background
    qr = poster.crop(
        (template.qr_x, template.qr_y, template.qr_x + template.qr_size, template.qr_y + template.qr_size)
    )
    assert qr == qr_image("https://fission.example.com/s/abc", template.qr_size)


@pytest.mark.parametrize(
    "bands",
    [
        [(60, 200), (90, 190), (1055, 1275)],  # overlapping bands, as a real template has
        [(0, 10), (1300, 1334)],  # touching the top and the bottom
        [],  # nothing dynamic
        [(-20, 5000)],  # out of range: clipped to the whole image
    ],
)
def test_banded_encoder_gives_exactly_the_posters_pixels(bands):
    from campaigns.posters import BandedEncoder

    # given a template background and a poster that differs from it only inside the bands
    background = Image.effect_noise((750, 1334), 40).convert("RGB")
    encoder = BandedEncoder(background, bands)
    poster = background.copy()
    for top, bottom in bands:
        top, bottom = max(top, 0), min(bottom, 1334)
        if bottom > top:
            poster.paste((10, 200, 30), (0, top, 300, bottom))
    # when
    data = encoder.encode(poster)
    # then any PNG reader sees exactly the poster (checksums included: Pillow verifies them)
    decoded = Image.open(io.BytesIO(data))
    decoded.load()
    assert ImageChops.difference(decoded.convert("RGB"), poster).getbbox() is None
    assert Image.open(io.BytesIO(data)).verify() is None


def test_rendered_poster_is_exactly_the_composed_image(make_campaign, make_template):
    from campaigns.posters import compose_poster

    template = make_template(make_campaign())
    args = {
        "nickname": "分享者 Sam",
        "qr_payload": "https://fission.example.com/s/xyz",
        "avatar": Image.new("RGB", (200, 200), (1, 2, 3)),
    }
    decoded = Image.open(io.BytesIO(render_poster(template, **args))).convert("RGB")
    assert ImageChops.difference(decoded, compose_poster(template, **args)).getbbox() is None


def test_a_poster_changes_nothing_outside_its_dynamic_rows(make_campaign, make_template):
    from campaigns.posters import _background, compose_poster, dynamic_rows

    template = make_template(make_campaign(), nickname_size=60)
    canvas = compose_poster(
        template, nickname="W" * 40 + "gjpqy", qr_payload="https://x.example/s/" + "z" * 30
    )
    changed = ImageChops.difference(canvas, _background(template.background.path, template.version))
    for y in range(canvas.height):
        row = changed.crop((0, y, canvas.width, y + 1)).getbbox()
        if row is not None:
            assert any(top <= y < bottom for top, bottom in dynamic_rows(template)), y
