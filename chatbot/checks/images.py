"""Images: the file is there, is really a picture of a kind both networks take, and fits."""

from __future__ import annotations

import warnings
from pathlib import Path

from chatbot.checks.steps import slot_path
from chatbot.errors import Problem
from chatbot.plan import slots
from chatbot.script import ChatScript, NetworkName
from chatbot.source import SourceDoc

# Bluesky: images up to 2,000,000 bytes each (app.bsky.embed.images blob maxSize).
BLUESKY_MAX_IMAGE_BYTES = 2_000_000
# Mastodon's default image limit (configuration.media_attachments.image_size_limit).
MASTODON_MAX_IMAGE_BYTES = 16 * 1024 * 1024
# The file name's ending -> the picture format Pillow must find inside.
IMAGE_TYPES = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".gif": "GIF",
    ".webp": "WEBP",
}
_ENDING = {"PNG": ".png", "JPEG": ".jpg", "GIF": ".gif", "WEBP": ".webp"}


def check_images(script: ChatScript, doc: SourceDoc, base_dir: Path) -> list[Problem]:
    """Every image of every step."""
    problems = []
    for slot in slots(script):
        post = slot.post
        if post is None or post.image is None:
            continue
        path = (*slot_path(slot), "image", "path")
        if doc.is_invalid(path):
            continue
        problem = _image_problem(base_dir / post.image.path, post.image.path, script, base_dir)
        if problem is not None:
            problems.append(doc.problem(path, *problem))
    return problems


def _image_problem(
    file: Path, written: str, script: ChatScript, base_dir: Path
) -> tuple[str, str] | None:
    try:
        is_file = file.is_file()
    except (OSError, ValueError):  # a name too long, or with a NUL in it
        is_file = False
    if not is_file:
        return (
            f"image file {written} not found (looked in {base_dir})",
            "put the image next to the script or fix the path",
        )
    expected = IMAGE_TYPES.get(file.suffix.lower())
    if expected is None:
        return (
            f"{file.suffix or 'this file'} is not an image type both networks take",
            "use a .png, .jpg, .gif or .webp file",
        )
    size = file.stat().st_size
    if NetworkName.BLUESKY in script.networks and size > BLUESKY_MAX_IMAGE_BYTES:
        return (
            f"image is {size:,} bytes; Bluesky takes at most {BLUESKY_MAX_IMAGE_BYTES:,}",
            "make the image smaller (e.g. a JPEG at 1600 px wide)",
        )
    if size > MASTODON_MAX_IMAGE_BYTES:
        return (
            f"image is {size:,} bytes; Mastodon takes at most {MASTODON_MAX_IMAGE_BYTES:,}",
            "make the image smaller",
        )
    found = _picture_format(file)
    if found is None:
        return (
            f"{written} is not a picture that can be opened: its content is not "
            f"{expected} image data",
            "export the picture again from an image editor, as PNG or JPEG",
        )
    if found != expected:
        ending = _ENDING.get(found)
        fix = f"rename it to end in {ending}" if ending else "save it as PNG or JPEG"
        return (f"{written} is a {found} picture, but its name says {expected}", fix)
    return None


def _picture_format(file: Path) -> str | None:
    """The format Pillow finds in the file, if it reads as a whole, valid picture."""
    from PIL import Image, UnidentifiedImageError  # only when a script names a picture

    try:
        with warnings.catch_warnings():
            # A huge picture warns of a "decompression bomb"; it is refused below.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(file) as picture:
                found = picture.format
                picture.verify()
    except (OSError, SyntaxError, ValueError, UnidentifiedImageError, Image.DecompressionBombError):
        return None
    return found
