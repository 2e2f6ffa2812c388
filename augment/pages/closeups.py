"""Close-ups: small images filled by one number or a few digits, as a phone photo of a meter, a cheque amount or a
sticky note, or a crop of an amount field (150 x 50 pixels, say).

They are written at their own small size and shape, not placed on a square page: ultralytics' loader letterboxes
an image (its long side scaled to the model's input, the rest padded grey), and detect.py too, enlarging it at most
1.5x (digitdet.detector.MAX_GAIN), so a close-up reaches the model as a user's crop will: enlarged from its few
pixels, with grey bars beside it. Drawn on a letterboxed page instead, it would be sharp where a real crop is
blurred by the enlarging.
"""

from __future__ import annotations

import numpy as np

from augment.pages import documents, printed
from augment.pages.layout import Layout
from augment.pages.mix import ASPECTS, CLOSE_UP_KINDS, CLOSE_UP_ODDS, pick
from augment.pages.writer import LENGTH_ODDS, PAPERS, Sources, Writer

SIDES = (0.2, 1.0)  # the long side, a fraction of the page size: from a 128 x 43 crop to a full 640 x 480 photo
FILL = (0.35, 0.72)  # digit height over the image's (digits vary by +-10%: the tallest reach about 0.8)
STICKY_NOTE = np.array([0.99, 0.93, 0.55], np.float32)


class CloseUp(Writer):
    """Plans one close-up: a few large digits of one kind (mix.CLOSE_UP_KINDS) on a small image."""

    def __init__(self, rng: np.random.Generator, sources: Sources, size: int):
        kind = CLOSE_UP_KINDS[pick(rng, CLOSE_UP_ODDS)]
        aspect = ASPECTS[int(rng.random() * len(ASPECTS))]
        long = size * float(np.exp(rng.uniform(*np.log(SIDES))))
        width, height = (long, long / aspect) if aspect >= 1 else (long * aspect, long)
        super().__init__(rng, sources, size, max(int(round(width)), 32), max(int(round(height)), 32),
                         font_hand=kind == "hand")
        self.kind = kind
        self.margin = max(2, int(0.04 * min(self.width, self.height)))
        self.layout.kind = "close-up"
        draws = rng.random(3).tolist()
        if kind in ("mnist", "hand") and draws[0] < 0.3:  # a sticky note
            self.layout.paper = self.paper = STICKY_NOTE * rng.uniform(0.9, 1.0)
        elif kind in ("mnist", "hand") and draws[0] < 0.55:  # a cheque's amount, on its security background
            documents.add_guilloche(self, (0, 0, self.width, self.height))
        elif kind == "print":
            self.layout.paper = self.paper = PAPERS[0] * rng.uniform(0.85, 1.0)
        if kind != "segments" and draws[1] < 0.3:  # the crop of a field: its box shows at the edges
            inset = self.margin / 2 + draws[2] * self.margin / 2
            documents.add_frame(self, (inset, inset, self.width - 1 - inset, self.height - 1 - inset),
                                self.paper * 0.4)

    def plan(self) -> Layout:
        rng = self.rng
        lines = 2 if self.height > 0.6 * self.width and rng.random() < 0.3 else 1
        room = self.height - 2 * self.margin
        for line in range(lines):
            fill = rng.uniform(*FILL) / lines
            baseline = self.margin + room * (line + 1) / lines - (room / lines - fill * self.height) / 2
            for _ in range(4):  # smaller until it fits
                if self.write(fill * self.height, baseline):
                    break
                fill *= 0.85
        if rng.random() < 0.3:
            self.add_stroke(0.3 * self.height)
        return self.layout

    def write(self, height: float, baseline: float) -> bool:
        """One number of this close-up's kind, `height` tall, on `baseline`; False if it did not fit."""
        rng, room = self.rng, self.width - 2 * self.margin
        n = 1 + pick(rng, LENGTH_ODDS[:6])
        n = max(1, min(n, int(room / (0.8 * height))))
        before = self.n_digits
        if self.kind == "segments":
            height = min(height, room / (0.8 * n + 0.4))
            x = self.margin + 0.1 * height + rng.uniform(0, max(room - (0.8 * n + 0.3) * height, 0))
            return documents.add_meter(self, x, baseline, height, n=n, pad=0.1)
        if self.kind == "print":
            return self.print_value(height, baseline)
        x = self.margin + rng.uniform(0, max(room - 0.8 * n * height, 0))
        if rng.random() < 0.3:
            self.write_signed(height, x, baseline)
        else:
            self.write_number(height, x, baseline, n)
        return self.n_digits > before

    def print_value(self, height: float, baseline: float) -> bool:
        """A printed amount, date, code or phone number, as large as fits."""
        face = documents.typeface(self)
        if face is None:
            return False
        kind = ("amount", "date", "code", "phone", "count")[int(self.rng.random() * 5)]
        value = documents.field_value(self.rng, kind)
        size = printed.size_for(face, height)
        room = self.width - 2 * self.margin
        size = min(size, int(size * room / max(printed.width(face, value, size), 1)))
        x = self.margin + self.rng.uniform(0, max(room - printed.width(face, value, size), 0))
        darkness, colour = documents.print_colour(self)
        digits, mark, _ = printed.typeset(face, value, size, x, baseline, darkness, colour)
        return self.place(digits, [mark] if mark else [], pad=0)
