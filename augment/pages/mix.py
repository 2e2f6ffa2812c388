"""The page mix: what the images hold and how often, in one block (shares are of images unless said otherwise),
and `pick`, which draws from such odds.

MIXES names the mixes a dataset can be built with: "full" (the default) and "mnist": pages of MNIST handwriting
alone, without print, font hands, signs or close-ups, to compare with models trained on such pages.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np


@dataclass(frozen=True)
class Mix:
    close_ups: float  # images that are close-ups (augment/pages/closeups.py), not pages
    font_hands: float  # pages with handwriting whose hand is a handwriting font, not MNIST's writers
    printed_items: tuple[float, ...]  # the odds of 0, 1, 2, ... printed items on a page
    signed: float  # handwritten numbers along the lines written with a sign or separator
    words: float  # pages with a few handwritten words of letters that look like digits
    guilloche: float  # pages with a cheque's security background all over
    fonts: bool = True  # whether the images show fonts at all (handwriting fonts and print)


FULL = Mix(
    # A close-up is a small image filled by one number or a few digits (a meter, a cheque amount, a sticky note, a
    # crop of a field). Users send such photos as often as whole pages, and on whole pages no digit is taller than
    # a fifth of the image; a sixth of the images teaches large digits without taking many of the pages' digits.
    close_ups=0.15,
    # Font hands add hands that MNIST's writers lack, but MNIST stays the majority (about three digits in four), as
    # its 70,000 digits hold far more hands than a dozen fonts.
    font_hands=0.25,
    # Most documents mix print and handwriting; a third of the pages still hold handwriting only.
    printed_items=(0.35, 0.30, 0.20, 0.15),
    # Amounts, dates and times are written with their signs; the signs are not digits and stay unlabelled.
    signed=0.15,
    # Letters like digits (O l I S B Z g) must not be read as digits: a few words on a third of the pages.
    words=0.35,
    # Fine wavy lines that must not look like digits; cheques bring them too (ITEMS).
    guilloche=0.05,
)
MIXES = {"full": FULL, "mnist": Mix(close_ups=0.0, font_hands=0.0, printed_items=(1.0,), signed=0.0, words=0.0,
                                     guilloche=0.0, fonts=False)}
# Which printed item: form fields are the commonest printed numbers on what users photograph (dates, phone, invoice
# and amount fields); receipts bring dense small print; meters the seven-segment digits; boxes and cheques are
# rarer documents with their own look (one box per digit, security backgrounds).
ITEMS = ("field", "receipt", "meter", "boxes", "cheque")
ITEM_ODDS = (0.40, 0.20, 0.15, 0.15, 0.10)
# Printed field values that are written by hand instead (a form filled in): digits printed next to handwritten ones.
FILLED_IN = 0.5
# Meters whose unlit segments still show faintly, as on many LCDs: a faint 8 behind every digit, unlabelled.
GHOSTS = 0.4
# What a close-up shows: handwriting from MNIST or a font hand (the page's pen), print, or a seven-segment meter.
CLOSE_UP_KINDS = ("mnist", "hand", "print", "segments")
CLOSE_UP_ODDS = (0.40, 0.15, 0.25, 0.20)
# Close-up shapes: width over height, from a long amount field (3:1) to a portrait sticky note (3:4).
ASPECTS = (3.0, 2.5, 2.0, 1.5, 4 / 3, 1.0, 0.75)


@lru_cache(maxsize=None)
def cumulative(odds: tuple[float, ...]) -> np.ndarray:
    total = np.cumsum(odds)
    return total / total[-1]


def pick(rng: np.random.Generator, odds: tuple[float, ...]) -> int:
    """An index drawn with these odds: what rng.choice(len(odds), p=odds) draws from the same random number, without
    the checks of `odds` that make that call cost about 20 us (a page draws about 30 times)."""
    return int(cumulative(odds).searchsorted(rng.random(), side="right"))


def chance(rng: np.random.Generator, share: float) -> bool:
    """True with probability `share`; draws nothing when it is 0, so that a mix without something draws the same
    numbers as a builder that never had it."""
    return share > 0 and rng.random() < share
