"""Planning a page: the Writer lays out paper, lines of handwritten numbers, single digits, printed items and
distractors, keeping them from overlapping."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from augment.pages import documents, fonts
from augment.pages.hands import REFERENCE, WEIGHTS, FontHand, MnistHand
from augment.pages.ink import Pen
from augment.pages.layout import Digit, Layout, Mark, WrittenNumber, numbers_of
from augment.pages.mix import ITEM_ODDS, ITEMS, Mix, chance, pick
from digitdet import mnist
from digitdet.boxes import enclosing

BLANK_PAGES = 0.03
MARGIN = 0.07  # of the page side kept free of writing, so tilt and perspective keep every digit in the photo
HEIGHTS = (12, 120)  # digit heights in pixels on a 640 page; scaled with the page size
MAX_DIGITS = 160
LETTERS = "abcdefghijklmnopqrstuvwxyz"
PAPERS = np.array([[0.97, 0.97, 0.96], [0.98, 0.95, 0.86], [0.88, 0.88, 0.86], [0.94, 0.96, 0.99],
                   [0.99, 0.96, 0.72]], np.float32)  # white, cream, recycled grey, bluish, legal-pad yellow
INKS = np.array([[0.08, 0.08, 0.10], [0.10, 0.16, 0.52], [0.10, 0.10, 0.32], [0.34, 0.34, 0.37],
                 [0.60, 0.10, 0.12]], np.float32)  # black, blue ballpoint, dark blue, pencil, red
INK_ODDS = (0.35, 0.35, 0.12, 0.13, 0.05)
PENCIL = 3
RULE_COLORS = np.array([[0.55, 0.70, 0.90], [0.70, 0.70, 0.72], [0.90, 0.55, 0.55]], np.float32)
HERSHEY = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX, cv2.FONT_HERSHEY_TRIPLEX)
STYLES, STYLE_ODDS = ("plain", "ruled", "grid", "form"), (0.3, 0.3, 0.2, 0.2)
LENGTH_ODDS = (.16, .17, .17, .15, .12, .09, .07, .07)  # of numbers of 1 to 8 digits along the lines
# Handwritten numbers with signs: each a pattern of digit runs (a number: how many digits) and signs
SIGNED_PATTERNS = (("$", 2), ("$", 3, ".", 2), (2, ",", 2, "€"), ("€", 2), (2, "/", 2, "/", 4), (2, ".", 2, ".", 2),
                   (2, ":", 2), (2, "%"), ("-", 2), (1, "/", 2), (3, "-", 4), (1, ",", 3, ".", 2))
WORDS_LIKE_DIGITS = ("Bill", "SOLD", "Oslo", "Bob", "Zoo", "log", "big", "BIG", "OIL", "ISO", "Boss", "Lisbon",
                     "Ozzie", "gag", "Sol", "BOZO", "Liz", "Gill", "lib", "ZIGZAG", "Obi", "Bliss", "IOU", "Gob")


@dataclass(frozen=True)
class Sources:
    """What one split's images are made of: its MNIST digits, the fonts it may show, and the mix."""

    digits: mnist.Digits
    fonts: fonts.Fonts
    mix: Mix


class Occupancy:
    """Which parts of the image are written on, in 4-pixel cells."""

    CELL = 4

    def __init__(self, width: int, height: int):
        self.grid = np.zeros((height // self.CELL + 1, width // self.CELL + 1), bool)

    def _cells(self, box, pad: float):
        cell = self.CELL
        x1, y1 = max(int((box[0] - pad) // cell), 0), max(int((box[1] - pad) // cell), 0)
        x2, y2 = max(int((box[2] + pad) // cell) + 1, 0), max(int((box[3] + pad) // cell) + 1, 0)
        return slice(y1, y2), slice(x1, x2)

    def free(self, box, pad: float = 0) -> bool:
        return not self.grid[self._cells(box, pad)].any()

    def take(self, box) -> None:
        self.grid[self._cells(box, 0)] = True


@lru_cache(maxsize=None)
def cap_height(font: int) -> int:
    """The height of a capital letter in Hershey `font` at scale 1 (measuring costs about 0.1 ms)."""
    return cv2.getTextSize("H", font, 1.0, 1)[0][1]


def random_word(rng: np.random.Generator) -> str:
    """2 to 9 random letters, capitalized 3 times in 10; drawn in one call to `rng`."""
    draws = rng.random(11).tolist()
    word = "".join(LETTERS[int(u * len(LETTERS))] for u in draws[1: 3 + int(draws[0] * 8)])
    return word.capitalize() if draws[10] < 0.3 else word


def mix(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    return (1 - t) * a + t * b


class Writer:
    """Plans one image: paper, lines of numbers, singles, printed items and distractors, keeping them from
    overlapping. `size` is the page side that sizes are relative to; a close-up is smaller (`width` x `height`)."""

    def __init__(self, rng: np.random.Generator, sources: Sources, size: int, width: int | None = None,
                 height: int | None = None, font_hand: bool | None = None):
        self.rng, self.sources, self.size = rng, sources, size
        self.width, self.height = width or size, height or size
        self.scale = size / 640
        self.margin = int(MARGIN * size)
        self.occupied = Occupancy(self.width, self.height)
        self.paper = PAPERS[rng.integers(len(PAPERS))] * rng.uniform(0.88, 1.0)
        self.layout = Layout(self.width, self.height, self.paper, int(rng.integers(2**31)))
        pen = pick(rng, INK_ODDS)
        self.ink = INKS[pen]
        hands = sources.fonts.hands
        if font_hand is None:
            font_hand = bool(hands) and chance(rng, sources.mix.font_hands)
        if font_hand and hands:  # a pen as wide as the font hand's weight: no thinning
            self.hand = FontHand(hands[int(rng.random() * len(hands))], rng.uniform(*WEIGHTS))
            self.pen = Pen(rng.uniform(0.3, 0.6), rng.uniform(0.1, 0.3), 0.0)
        else:
            self.hand = MnistHand(sources.digits)
            self.pen = Pen(rng.uniform(0.15, 0.6), rng.uniform(0.1, 0.4), rng.uniform(0, 0.06))
        self.darkness = rng.uniform(0.45, 0.7) if pen == PENCIL else rng.uniform(0.65, 0.97)
        self.letters: FontHand | None = self.hand if isinstance(self.hand, FontHand) else None
        self.n_digits = 0

    @property
    def smallest(self) -> float:
        """The smallest handwritten digit height on this page."""
        return HEIGHTS[0] * self.scale

    def digit_height(self) -> float:
        low, high = HEIGHTS
        return float(np.exp(self.rng.uniform(np.log(low), np.log(high)))) * self.scale

    def plan(self) -> Layout:
        rng, mix = self.rng, self.sources.mix
        style = STYLES[pick(rng, STYLE_ODDS)]
        height = self.digit_height()
        pitch = max(height * rng.uniform(1.4, 2.2), 8 * self.scale)
        first = self.margin + pitch * rng.uniform(0.8, 1.5)  # the first line: digits sit on it, and on the rules
        if chance(rng, mix.guilloche):
            documents.add_guilloche(self, (0, 0, self.width, self.height))
        if style == "ruled":
            self.add_rules(first, pitch)
        elif style == "grid":
            self.add_grid(first, pitch / rng.choice([1, 2]))
        if rng.random() >= BLANK_PAGES:
            for _ in range(pick(rng, mix.printed_items) if len(mix.printed_items) > 1 else 0):  # first: large
                documents.add(self, ITEMS[pick(rng, ITEM_ODDS)])
            self.write_lines(first, height, pitch, slope=0.0 if style in ("ruled", "grid") else rng.normal(0, 0.015),
                             labelled=style == "form")
            for _ in range(rng.integers(0, 12)):  # numbers and single digits written anywhere, of any size
                self.write_number(self.digit_height(), *self.random_spot(), n=int(rng.choice([1, 1, 2, 3, 4])))
        if chance(rng, mix.words):
            for _ in range(rng.integers(1, 4)):
                self.write_word(WORDS_LIKE_DIGITS[int(rng.random() * len(WORDS_LIKE_DIGITS))], self.digit_height(),
                                *self.random_spot())
        for _ in range(rng.integers(0, 3)):
            self.add_text_block()
        for _ in range(rng.integers(0, 4)):
            self.add_stroke(height)
        for _ in range(rng.integers(0, 3)):
            self.layout.smudges.append((*self.random_spot(), rng.uniform(8, 60) * self.scale, rng.uniform(0.03, 0.15),
                                        rng.uniform(0.3, 1), rng.uniform(0, 180)))
        return self.layout

    def random_spot(self) -> tuple[float, float]:
        """A point inside the margins: (x, baseline y)."""
        return (self.rng.uniform(self.margin, self.width - self.margin),
                self.rng.uniform(self.margin, self.height - self.margin))

    def write_lines(self, y: float, height: float, pitch: float, slope: float, labelled: bool) -> None:
        """Numbers along lines `pitch` apart from baseline `y` down; on a form, each after a printed label."""
        rng, right = self.rng, self.width - self.margin
        while y < self.height - self.margin and self.n_digits < MAX_DIGITS:
            if rng.random() < 0.85:  # some lines stay empty
                x = self.margin + rng.uniform(0, 0.3) * (self.width - 2 * self.margin)
                while x < right:
                    if labelled and rng.random() < 0.6:
                        x = self.write_text(random_word(rng) + ":", x, y, height * rng.uniform(0.4, 0.7))
                        x += height * rng.uniform(0.2, 0.6)
                    h = height * rng.uniform(0.85, 1.15)
                    n = 1 + pick(rng, LENGTH_ODDS)
                    baseline = y + slope * x - rng.uniform(0, 0.1) * h  # on the line or just above it
                    if chance(rng, self.sources.mix.signed):
                        x = self.write_signed(h, x, baseline) + h * rng.uniform(0.7, 3)
                    else:
                        x = self.write_number(h, x, baseline, n) + h * rng.uniform(0.7, 3)
            y += pitch

    def write_number(self, height: float, x: float, baseline: float, n: int) -> float:
        """Write up to n digits from (x, baseline), as many as fit in free space; return the x after them."""
        n = min(n, int((self.width - self.margin - x) / (0.8 * height)))  # digits are about 0.7 as wide as tall
        guess = (x, baseline - 1.3 * height, x + n * 0.8 * height, baseline + 0.2 * height)  # before writing
        if n < 1 or not self.occupied.free(guess, pad=0.15 * height):
            return guess[2]
        digits, x = self.handwrite(n, height, x, baseline, self.ink)
        if not digits:
            return x
        colour = self.number_colour()  # drawn after the digits: the "mnist" mix draws as MNIST pages always drew
        for digit in digits:
            digit.colour = colour
        # one number: its gaps are narrower than the reader's (digitdet.reading.GAP_FACTOR) by construction
        if self.place(digits, [], pad=0.15 * height, numbers=[WrittenNumber(digits)]) and self.rng.random() < 0.08:
            self.underline(enclosing([d.box for d in digits]), height)
        return x

    def number_colour(self) -> np.ndarray:
        """The page's pen, or now and then another one."""
        return self.ink if self.rng.random() < 0.9 else INKS[pick(self.rng, INK_ODDS)]

    def handwrite(self, n: int, height: float, x: float, baseline: float, colour: np.ndarray) -> tuple[list, float]:
        """n handwritten digits from (x, baseline) in the page's hand, and the x after them; nothing is placed."""
        rng, hand = self.rng, self.hand
        # All of the number's draws in two calls, then plain Python per digit: a call to `rng` or a numpy operation
        # on a few numbers costs more than the arithmetic
        uniforms, normals = rng.random((5, n)).tolist(), rng.standard_normal((3, n)).tolist()
        digits = []
        for which, size, shade, gap, touch, shear, angle, drop in zip(*uniforms, *normals):
            h = height * (0.9 + 0.2 * size)
            if written := hand.digit(which, h, 0.12 * shear, 4 * angle, self.pen, rng):
                cls, source, coverage, hull = written
                top = int(round(baseline + 0.04 * drop * height)) - coverage.shape[0]
                digits.append(Digit(cls, source, int(round(x)), top, coverage, (0.9 + 0.1 * shade) * self.darkness,
                                    hull, colour))
                touching = touch < 0.1  # the next digit touches or overlaps this one
                x += coverage.shape[1] + height * (-0.12 * gap if touching else 0.04 + 0.31 * gap)
        return digits, x

    def lettering(self) -> FontHand | None:
        """The hand that writes signs and letters: the page's font hand, or on an MNIST page one drawn for them
        (None when no handwriting font is installed)."""
        hands = self.sources.fonts.hands
        if self.letters is None and hands:
            self.letters = FontHand(hands[int(self.rng.random() * len(hands))], self.rng.uniform(*WEIGHTS))
        return self.letters

    def handwrite_text(self, text: str, height: float, x: float, baseline: float,
                       colour: np.ndarray) -> tuple[Mark | None, float]:
        """Letters and signs (no digit) in the lettering hand, sized for digits `height` tall, as one mark; and the x
        after them. None when no hand draws them all."""
        hand = self.lettering()
        if hand is None or not hand.face.has(text):
            return None, x
        scale = height / REFERENCE
        pieces = []
        for char in text:
            if char != " " and (written := hand.write(char, scale, 0.12 * self.rng.standard_normal(), self.pen)):
                coverage, left, top = written
                pieces.append((int(round(x + left)), int(round(baseline + top)), coverage))
            x += hand.advance(char) * scale
        return Mark.composed(text, f"hand:{hand.name}", pieces, self.darkness, colour), x

    def write_signed(self, height: float, x: float, baseline: float) -> float:
        """A handwritten amount, date, time or percentage: digit runs with signs between them; return the x after."""
        rng = self.rng
        pattern = SIGNED_PATTERNS[int(rng.random() * len(SIGNED_PATTERNS))]
        width = sum(part if isinstance(part, int) else 0.6 for part in pattern) * 0.8 * height
        guess = (x, baseline - 1.3 * height, x + width, baseline + 0.3 * height)  # before writing
        if guess[2] > self.width - self.margin or not self.occupied.free(guess, pad=0.15 * height):
            return guess[2]
        colour, digits, marks = self.number_colour(), [], []
        for part in pattern:
            if isinstance(part, int):
                written, x = self.handwrite(part, height, x, baseline, colour)
                digits += written
            else:
                mark, x = self.handwrite_text(part, height, x + 0.1 * height, baseline, colour)
                marks += [mark] if mark else []
            x += height * rng.uniform(0.05, 0.25)
        self.place(digits, marks, pad=0.15 * height)
        return x

    def write_word(self, word: str, height: float, x: float, baseline: float) -> None:
        """A handwritten word of letters that look like digits, unlabelled."""
        mark, _ = self.handwrite_text(word, height, x, baseline, self.number_colour())
        if mark is not None:
            self.place([], [mark], pad=0.2 * height)

    def place(self, digits: list[Digit], marks: list[Mark], pad: float,
              numbers: list[WrittenNumber] | None = None) -> bool:
        """Put digits and marks written together on the page if they lie inside the margins in free space; the
        digits are grouped into numbers as the reader groups them, unless `numbers` are given."""
        boxes = [d.box for d in digits] + [m.box for m in marks]
        if not boxes:
            return False
        x1, y1, x2, y2 = box = enclosing(boxes)
        inside = min(x1, y1) >= self.margin and x2 <= self.width - self.margin and y2 <= self.height - self.margin
        if not inside or not self.occupied.free(box, pad=pad):
            return False
        self.occupied.take(box)
        self.layout.marks += marks
        self.layout.numbers += numbers_of(digits) if numbers is None else numbers
        self.n_digits += len(digits)
        return True

    def write_text(self, text: str, x: float, baseline: float, height: float) -> float:
        """Print `text` (letters only) with cap height about `height` if it fits; return the x after it."""
        font = HERSHEY[int(self.rng.random() * len(HERSHEY))]
        scale = height / cap_height(font)
        thickness = max(1, int(round(scale * self.rng.uniform(1.0, 2.0))))
        (w, h), descent = cv2.getTextSize(text, font, scale, thickness)
        box = (x, baseline - h, x + w, baseline + descent)
        if box[2] <= self.width - self.margin and box[3] <= self.height - self.margin and \
                self.occupied.free(box, pad=2):
            self.occupied.take(box)
            self.layout.texts.append((text, int(x), int(baseline), font, scale, thickness))
        return x + w

    def add_text_block(self) -> None:
        rng = self.rng
        height = rng.uniform(5, 12) * self.scale
        x, y = self.random_spot()
        for _ in range(rng.integers(1, 6)):
            words = " ".join(random_word(rng) for _ in range(rng.integers(2, 8)))
            self.write_text(words, x, y, height)
            y += height * rng.uniform(1.8, 2.4)

    def add_rules(self, y: float, pitch: float) -> None:
        colour = mix(self.paper, RULE_COLORS[self.rng.integers(len(RULE_COLORS))], self.rng.uniform(0.4, 0.8))
        y -= np.floor(y / pitch) * pitch  # the rules cover the page, through y
        while y < self.height:
            self.layout.rules.append((0, int(y), self.width, int(y), colour))
            y += pitch
        if self.rng.random() < 0.5:  # the red margin line
            x = int(self.margin * self.rng.uniform(0.5, 1.0))
            self.layout.rules.append((x, 0, x, self.height, mix(self.paper, RULE_COLORS[2], 0.7)))

    def add_grid(self, y: float, cell: float) -> None:
        colour = mix(self.paper, RULE_COLORS[self.rng.integers(2)], self.rng.uniform(0.3, 0.7))
        for v in np.arange(y % cell, max(self.width, self.height), cell):
            if v < self.height:
                self.layout.rules.append((0, int(v), self.width, int(v), colour))
            if v < self.width:
                self.layout.rules.append((int(v), 0, int(v), self.height, colour))

    def add_stroke(self, height: float) -> None:
        """A long wavy line, arc or cross-out in free space: pen marks that are no digit (so never short)."""
        rng = self.rng
        length = max(rng.uniform(3, 8) * height, 40 * self.scale)
        t = np.linspace(0, 1, 24)[:, None]
        kind = rng.integers(3)
        if kind == 0:  # wavy line
            points = np.hstack([t * length, np.sin(t * rng.uniform(2, 12)) * rng.uniform(0.02, 0.1) * length])
        elif kind == 1:  # arc of an ellipse
            angle = rng.uniform(0, 2 * np.pi) + t * rng.uniform(1, 2.5)
            points = np.hstack([np.cos(angle), rng.uniform(0.3, 1) * np.sin(angle)]) * length / 2
        else:  # cross-out scribble
            points = np.hstack([t * length, (np.arange(24)[:, None] % 2) * rng.uniform(0.2, 0.4) * length])[:8]
        turn = rng.uniform(-0.3, 0.3)
        points = points @ np.array([[np.cos(turn), np.sin(turn)], [-np.sin(turn), np.cos(turn)]])
        points += np.array(self.random_spot()) - points.min(axis=0)
        lo, hi = points.min(axis=0), points.max(axis=0)
        if hi[0] <= self.width - self.margin and hi[1] <= self.height - self.margin and \
                self.occupied.free((*lo, *hi), 4):
            self.occupied.take((*lo, *hi))
            self.layout.strokes.append((points, self.stroke_width(), self.pen_colour()))

    def underline(self, box, height: float) -> None:
        x1, _, x2, y2 = box
        y = y2 + height * self.rng.uniform(0.12, 0.3)
        points = np.array([[x1, y], [x2, y + self.rng.normal(0, 0.05) * height]])
        if self.occupied.free((x1, y - 1, x2, y + 1)):
            self.layout.strokes.append((points, self.stroke_width(), self.pen_colour()))

    def stroke_width(self) -> int:
        return max(1, int(round(self.rng.uniform(1, 3) * self.scale)))

    def pen_colour(self) -> np.ndarray:
        """What the pen leaves on this paper: cv2 draws strokes in one colour over the paper."""
        return mix(self.paper, self.ink * self.paper, self.darkness)


