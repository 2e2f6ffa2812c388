"""Fonts: the handwriting and print typefaces pages use, which splits may show them, and their glyphs.

FONTS is the split table. Fonts marked HELD_OUT are shown on test pages only and test pages show no other font, as
MNIST's test digits are held out from training: a test page never shows a hand or typeface that training saw.

Fonts come from Debian packages and from matplotlib, which always ships DejaVu; `main` prints the packages still to
install (.ci/run installs them). A font that is not installed is left out with one warning naming it and its
package (`find`), and data.yaml records the fonts a dataset was built with: data is never silently different.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import warnings
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

import cv2
import numpy as np
from fontTools.ttLib import TTFont
from PIL import Image, ImageDraw, ImageFont

HAND, PRINT = "hand", "print"
HELD_OUT = True
MATPLOTLIB = "matplotlib"  # ships DejaVu with every install


@dataclass(frozen=True)
class Font:
    name: str
    file: str  # the file name as its package installs it
    package: str  # the Debian package, or matplotlib
    kind: str  # HAND or PRINT
    held_out: bool = False  # shown on test pages only
    unusable: str = ""  # characters whose glyph misleads, e.g. a % that looks like a 7


FONTS = (
    # handwriting: a quarter of the handwritten pages (augment/pages/mix.py), and handwritten signs and letters
    Font("DKG", "dkg.ttf", "fonts-dkg-handwriting", HAND, unusable="%"),  # its % is a 7 with a dot
    Font("Because We Build", "BecauseWeBuild-Regular.otf", "fonts-bwht", HAND),
    Font("Because We Connect", "BecauseWeConnect-Regular.otf", "fonts-bwht", HAND),
    Font("Because We Create", "BecauseWeCreate-Regular.otf", "fonts-bwht", HAND),
    Font("Because We Learn", "BecauseWeLearn-Regular.otf", "fonts-bwht", HAND),
    Font("Because We Mentor", "BecauseWeMentor-Regular.otf", "fonts-bwht", HAND),
    Font("Breip", "Breip.ttf", "fonts-breip", HAND),
    Font("Humor Sans", "Humor-Sans.ttf", "fonts-humor-sans", HAND),
    Font("Ecolier", "Ecolier-court.ttf", "fonts-ecolier-court", HAND),
    Font("Dancing Script", "DancingScript-Regular.otf", "fonts-dancingscript", HAND),
    Font("Comic Neue", "ComicNeue-Regular.otf", "fonts-comic-neue", HAND),
    Font("Kristi", "Kristi.ttf", "fonts-kristi", HAND),
    Font("Rufscript", "Rufscript010.ttf", "fonts-rufscript", HAND),
    Font("Havana", "Havana-Regular.otf", "fonts-havana", HAND),
    Font("Lobster", "lobster.otf", "fonts-lobster", HAND),
    Font("Leckerli One", "LeckerliOne-Regular.ttf", "fonts-leckerli-one", HAND),
    Font("Kiloji", "kiloji.ttf", "fonts-kiloji", HAND),
    Font("Because We Organize", "BecauseWeOrganize-Regular.otf", "fonts-bwht", HAND, HELD_OUT),
    Font("Kaushan Script", "KaushanScript-Regular.otf", "fonts-kaushanscript", HAND, HELD_OUT),
    Font("Klee One", "KleeOne-Regular.ttf", "fonts-klee", HAND, HELD_OUT),
    # print: labelled printed digits, and the letters and signs around them
    Font("DejaVu Sans", "DejaVuSans.ttf", MATPLOTLIB, PRINT),
    Font("DejaVu Sans Bold", "DejaVuSans-Bold.ttf", MATPLOTLIB, PRINT),
    Font("DejaVu Sans Oblique", "DejaVuSans-Oblique.ttf", MATPLOTLIB, PRINT),
    Font("DejaVu Serif", "DejaVuSerif.ttf", MATPLOTLIB, PRINT),
    Font("DejaVu Sans Mono", "DejaVuSansMono.ttf", MATPLOTLIB, PRINT),
    Font("Liberation Sans", "LiberationSans-Regular.ttf", "fonts-liberation", PRINT),
    Font("Liberation Sans Narrow Bold", "LiberationSansNarrow-Bold.ttf", "fonts-liberation", PRINT),
    Font("Liberation Serif", "LiberationSerif-Regular.ttf", "fonts-liberation", PRINT),
    Font("Liberation Mono", "LiberationMono-Regular.ttf", "fonts-liberation", PRINT),
    Font("FreeSans", "FreeSans.ttf", "fonts-freefont-ttf", PRINT),
    Font("FreeSans Bold", "FreeSansBold.ttf", "fonts-freefont-ttf", PRINT),
    Font("FreeSerif", "FreeSerif.ttf", "fonts-freefont-ttf", PRINT),
    Font("FreeMono", "FreeMono.ttf", "fonts-freefont-ttf", PRINT),
    Font("Lato", "Lato-Regular.ttf", "fonts-lato", PRINT),
    Font("Lato Bold", "Lato-Bold.ttf", "fonts-lato", PRINT),
    Font("OCR-B", "OCRB.otf", "fonts-ocr-b", PRINT),
    Font("Open Sans", "OpenSans-Regular.ttf", "fonts-open-sans", PRINT),
    Font("Cantarell", "Cantarell-Regular.otf", "fonts-cantarell", PRINT),
    Font("Cabin", "Cabin-Regular.otf", "fonts-cabin", PRINT),
    Font("Junction", "Junction.otf", "fonts-junction", PRINT),  # old-style figures: 3 4 5 7 9 descend
    Font("GNU Typewriter", "GNUTypewriter.ttf", "fonts-gnutypewriter", PRINT),
    Font("Inconsolata", "Inconsolata.otf", "fonts-inconsolata", PRINT),
    Font("Caladea", "Caladea-Regular.ttf", "fonts-crosextra-caladea", PRINT),
    Font("Karla", "Karla-Regular.otf", "fonts-karla", PRINT),
    Font("Quicksand", "Quicksand-Regular.ttf", "fonts-quicksand", PRINT),
    Font("OSP-DIN", "OSP-DIN.ttf", "fonts-opendin", PRINT),
    Font("Routed Gothic", "routed-gothic.ttf", "fonts-routed-gothic", PRINT),
    Font("Dosis", "Dosis-Book.otf", "fonts-dosis", PRINT),
    Font("Manrope", "Manrope-Regular.ttf", "fonts-manrope", PRINT),
    Font("Carlito", "Carlito-Regular.ttf", "fonts-crosextra-carlito", PRINT, HELD_OUT),
    Font("Courier Prime", "Courier Prime.otf", "fonts-courier-prime", PRINT, HELD_OUT),
    Font("Andika", "Andika-Regular.ttf", "fonts-sil-andika", PRINT, HELD_OUT),
)
FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.local/share/fonts", "~/.fonts")


def matplotlib_fonts() -> Path:
    """matplotlib's own fonts folder, found without importing matplotlib (which worker processes need not load)."""
    return Path(importlib.util.find_spec("matplotlib").submodule_search_locations[0]) / "mpl-data" / "fonts" / "ttf"


class MissingFontWarning(UserWarning):
    """Some fonts of FONTS are not installed: pages are built without them."""


def find(warn: bool = True) -> dict[str, str]:
    """The path of each installed font of FONTS by name; with `warn`, one warning names the missing ones and their
    packages."""
    files = {}
    for folder in (*FONT_DIRS, matplotlib_fonts()):
        for root, _, names in os.walk(Path(folder).expanduser()):
            for name in names:
                files.setdefault(name, os.path.join(root, name))
    found = {font.name: files[font.file] for font in FONTS if font.file in files}
    missing = [font for font in FONTS if font.name not in found]
    if missing and warn:
        packages = " ".join(sorted({font.package for font in missing} - {MATPLOTLIB}))
        warnings.warn(f"fonts not found, pages are built without them: "
                      f"{', '.join(f'{font.name} ({font.package})' for font in missing)}; "
                      f"install them with: apt-get install {packages}", MissingFontWarning, stacklevel=2)
    return found


@dataclass(frozen=True)
class Face:
    """An installed font of FONTS and the characters it draws (less its unusable ones)."""

    font: Font
    path: str
    chars: frozenset[str]

    @property
    def name(self) -> str:
        return self.font.name

    def has(self, text: str) -> bool:
        return all(char in self.chars or char == " " for char in text)


def charset(path: str) -> frozenset[str]:
    """The characters of a font file's character map."""
    fonttools = logging.getLogger("fontTools")
    level = fonttools.level
    fonttools.setLevel(logging.ERROR)  # some packaged fonts log harmless table quirks while they are read
    try:
        with TTFont(path, lazy=True) as font:
            return frozenset(map(chr, font.getBestCmap()))
    finally:
        fonttools.setLevel(level)


@dataclass(frozen=True)
class Fonts:
    """The faces one split may show."""

    hands: tuple[Face, ...]
    typefaces: tuple[Face, ...]


def for_split(found: dict[str, str], split: str) -> Fonts:
    """The installed faces a split may show: the held-out ones on test pages, the others on train and val pages."""
    faces = [Face(font, found[font.name], charset(found[font.name]) - set(font.unusable)) for font in FONTS
             if font.name in found and font.held_out == (split == "test")]
    return Fonts(tuple(f for f in faces if f.font.kind == HAND), tuple(f for f in faces if f.font.kind == PRINT))


@dataclass(frozen=True)
class Glyph:
    """A character as FreeType draws it: coverage 0..255 (white on black) of its box with a PAD-pixel border, where
    that image's top-left pixel lies from the pen position on the baseline, and how far the pen then moves."""

    image: np.ndarray
    left: int
    top: int
    advance: float

    @cached_property
    def coverage(self) -> np.ndarray:
        """The image as coverage 0..1 (float32)."""
        return self.image.astype(np.float32) / 255


PAD = 2
MASTER = 64  # glyphs are drawn once at this size (pixels to the em) and scaled to the sizes pages use


@lru_cache(maxsize=None)
def freetype(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


def draw_glyph(path: str, char: str, size: int) -> Glyph:
    """`char` of the font at `path`, `size` pixels to the em, as FreeType draws it."""
    font = freetype(path, size)
    x1, y1, x2, y2 = font.getbbox(char, anchor="ls")
    canvas = Image.new("L", (x2 - x1 + 2 * PAD, y2 - y1 + 2 * PAD))
    ImageDraw.Draw(canvas).text((PAD - x1, PAD - y1), char, font=font, fill=255, anchor="ls")
    return Glyph(np.asarray(canvas), x1 - PAD, y1 - PAD, font.getlength(char))


master = lru_cache(maxsize=None)(draw_glyph)


@lru_cache(maxsize=20_000)
def glyph(path: str, char: str, size: int) -> Glyph:
    """`char` at `size` pixels to the em: its MASTER glyph shrunk by averaging (about 20 times faster than FreeType
    drawing it again, and pages use many sizes); drawn anew above MASTER, which only close-ups reach."""
    if size > MASTER:
        return draw_glyph(path, char, size)
    big, scale = master(path, char, MASTER), size / MASTER
    h, w = big.image.shape
    image = cv2.resize(big.image, (max(round(w * scale), 1), max(round(h * scale), 1)), interpolation=cv2.INTER_AREA)
    return Glyph(image, round(big.left * scale), round(big.top * scale), big.advance * scale)

@lru_cache(maxsize=None)
def digit_ratio(path: str) -> float:
    """The height of the font's digits (of its 0) over its size (pixels to the em)."""
    return (master(path, "0", MASTER).image.shape[0] - 2 * PAD) / MASTER


def main() -> int:
    """Print the Debian packages of the fonts that are not installed, on one line (for apt-get install)."""
    found = find(warn=False)
    print(" ".join(sorted({font.package for font in FONTS if font.name not in found} - {MATPLOTLIB})))
    return 0
