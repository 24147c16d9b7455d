"""A milestone badge: a picture the bot draws for someone's 3rd, 5th or 10th chat of a series.

Drawn with Pillow's own scalable font (no font files to install), written as a PNG
that is readable by its owner only, and described by alt text that names the person,
the series and the count, for people using screen readers.
"""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

SIZE = (800, 420)  # 1.9:1, how Mastodon and Bluesky show a single image whole
BACKGROUND = (27, 94, 125)
RIBBON = (242, 169, 0)
INK = (255, 255, 255)
MARGIN = 40


def alt_text(name: str, series: str, count: int) -> str:
    return f"A badge for {name}: {count} chats of {series}. Thank you for coming back!"


def draw_badge(path: Path, *, name: str, series: str, count: int) -> str:
    """Draw the badge into ``path`` (a PNG of :data:`SIZE`); returns its alt text."""
    image = Image.new("RGB", SIZE, BACKGROUND)
    draw = ImageDraw.Draw(image)
    width, height = SIZE
    draw.rectangle((0, height - 70, width, height), fill=RIBBON)
    # The count in a circle on the left, the words on the right.
    radius = 120
    centre = (MARGIN + radius, height // 2 - 30)
    draw.ellipse(
        (centre[0] - radius, centre[1] - radius, centre[0] + radius, centre[1] + radius),
        fill=RIBBON,
    )
    draw.text(centre, str(count), fill=BACKGROUND, font=_font(130), anchor="mm")
    left = centre[0] + radius + MARGIN
    room = width - left - MARGIN
    draw.text(
        (left, 70), _fit(draw, name, room, 56), fill=INK, font=_font(_size(draw, name, room, 56))
    )
    draw.text((left, 160), f"{count} chats of", fill=INK, font=_font(36))
    draw.text(
        (left, 205),
        _fit(draw, series, room, 44),
        fill=INK,
        font=_font(_size(draw, series, room, 44)),
    )
    draw.text(
        (width // 2, height - 35),
        "Thank you for coming back!",
        fill=BACKGROUND,
        font=_font(32),
        anchor="mm",
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    image.save(tmp, format="PNG")
    tmp.chmod(0o600)
    tmp.replace(path)
    return alt_text(name, series, count)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _size(draw: ImageDraw.ImageDraw, text: str, room: int, largest: int) -> int:
    """The largest font size, down to a third of ``largest``, at which ``text`` fits."""
    size = largest
    while size > largest // 3 and draw.textlength(text, font=_font(size)) > room:
        size -= 2
    return size


def _fit(draw: ImageDraw.ImageDraw, text: str, room: int, largest: int) -> str:
    """``text``, cut with an ellipsis if even the smallest size is too wide."""
    font = _font(_size(draw, text, room, largest))
    if draw.textlength(text, font=font) <= room:
        return text
    while text and draw.textlength(text + "…", font=font) > room:
        text = text[:-1]
    return text + "…"
