"""The milestone badge, checked as a picture: it opens, it has the badge's size, it is
readable by its owner only, and its alt text names the person, the series and the count."""

from __future__ import annotations

import stat
from pathlib import Path

from PIL import Image, ImageChops

from chatbot.badge import SIZE, draw_badge

ROOT = Path(__file__).resolve().parent.parent


def test_a_badge_is_a_png_of_the_badge_size(tmp_path: Path) -> None:
    path = tmp_path / "badge.png"
    draw_badge(path, name="Ana Rivera", series="#DemoChat", count=5)
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert (image.format, image.size) == ("PNG", SIZE)


def test_the_alt_text_names_the_person_the_series_and_the_count(tmp_path: Path) -> None:
    alt = draw_badge(tmp_path / "badge.png", name="Ana Rivera", series="#DemoChat", count=5)
    assert alt == "A badge for Ana Rivera: 5 chats of #DemoChat. Thank you for coming back!"


def test_a_badge_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "badges" / "badge.png"
    draw_badge(path, name="Ana Rivera", series="#DemoChat", count=3)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_name_is_drawn_so_badges_of_two_people_differ(tmp_path: Path) -> None:
    draw_badge(tmp_path / "a.png", name="Ana Rivera", series="#DemoChat", count=3)
    draw_badge(tmp_path / "b.png", name="Chidi Okafor", series="#DemoChat", count=3)
    with Image.open(tmp_path / "a.png") as a, Image.open(tmp_path / "b.png") as b:
        assert ImageChops.difference(a.convert("RGB"), b.convert("RGB")).getbbox() is not None


def test_a_very_long_name_still_gives_a_badge_of_the_same_size(tmp_path: Path) -> None:
    """A name too wide for the badge is shrunk, then cut with an ellipsis; the alt text
    keeps it whole."""
    name = "Maria-Fernanda de los Santos Villanueva-Echeverría " * 3
    alt = draw_badge(tmp_path / "long.png", name=name, series="#DemoChat", count=10)
    with Image.open(tmp_path / "long.png") as image:
        assert image.size == SIZE
    assert name in alt


def test_the_readme_shows_a_badge_from_the_demo() -> None:
    """docs/badge.png (drawn by `chatbot demo` runs) is in the README with its alt text."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "![A badge for Ana Rivera: 5 chats of #DemoChat." in readme
    assert "](docs/badge.png)" in readme
    with Image.open(ROOT / "docs" / "badge.png") as image:
        assert (image.format, image.size) == ("PNG", SIZE)
