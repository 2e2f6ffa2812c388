"""Printed items found on real documents, planned onto a page by its Writer: form fields (dates, phone, invoice
numbers, amounts), receipts, seven-segment meters, rows of one box per digit, cheques with a security background.

Every digit they print or write is a labelled digit; their words and signs are unlabelled marks without digits.
"""

from __future__ import annotations

import numpy as np

from augment.pages import fonts, printed, segments
from augment.pages.layout import Digit, Mark, numbers_of
from augment.pages.mix import FILLED_IN, GHOSTS, pick
from digitdet.boxes import enclosing

PRINT_INKS = np.array([[0.10, 0.10, 0.11], [0.16, 0.17, 0.24], [0.30, 0.30, 0.33]], np.float32)  # black, navy, faded
PRINT_INK_ODDS = (0.6, 0.2, 0.2)
LCD_PANELS = np.array([[0.70, 0.76, 0.66], [0.62, 0.66, 0.60], [0.80, 0.82, 0.76], [0.72, 0.74, 0.78]], np.float32)
SEGMENT_INK = np.array([0.10, 0.12, 0.10], np.float32)
FIELD_LABELS = {  # digit-free labels and how their values are written
    "date": ("Date", "DATE", "Date:", "Issued", "Due date", "Datum"),
    "phone": ("Tel.", "Phone", "TEL", "Mobile", "Fax"),
    "code": ("Invoice No.", "No.", "Ref.", "Order", "Account", "Customer ID", "INVOICE", "Policy", "Serial"),
    "amount": ("Total", "TOTAL", "Amount", "Subtotal", "VAT", "Balance", "Sum", "Price", "Due"),
    "count": ("Qty", "Page", "Room", "Seat", "Age", "Items", "Size", "Floor"),
}
GUILLOCHES = 4  # patterns of security background (each made once per process and page size)
UNITS = ("kWh", "MWh", "GJ", "L", "gal", "km", "h", "kW")
SHOP_WORDS = ("MARKET", "STORE", "CAFE", "BAKERY", "SHOP", "DELI", "KIOSK", "PHARMACY", "BISTRO")
ITEM_WORDS = ("BREAD", "MILK", "COFFEE", "APPLES", "SOAP", "TEA", "EGGS", "RICE", "JUICE", "BUTTER", "PASTA", "SALT",
              "OIL", "SUGAR", "CHEESE", "TISSUES", "BAG", "WATER", "Bread", "Milk", "Coffee", "Tea")
VALUE_FORMATS = {  # how such fields hold their values: each # is a digit
    "date": ("##/##/####", "##.##.####", "####-##-##", "##/##/##", "#/##/####"),
    "phone": ("### ### ## ##", "+## ## ### ####", "(###) ###-####", "#### ######", "###-####"),
    "code": ("####", "######", "########", "###-####", "##/#####", "00####", "A-#####"),
    "amount": ("#.##", "##.##", "###.##", "$ ##.##", "#,###.##", "##,##", "###"),
    "count": ("#", "##", "###"),
}


def digits_of(rng: np.random.Generator, n: int) -> str:
    """n random digits."""
    return "".join(str(int(u * 10)) for u in rng.random(n).tolist())


def field_value(rng: np.random.Generator, kind: str) -> str:
    """A value as fields of this kind hold it (VALUE_FORMATS), its digits drawn at random."""
    formats = VALUE_FORMATS[kind]
    draws = rng.random(16).tolist()
    pattern = formats[int(draws[0] * len(formats))]
    digits = iter(str(int(u * 10)) for u in draws[1:])
    return "".join(next(digits) if char == "#" else char for char in pattern)


def add(writer, item: str) -> None:
    """Plan one printed item of this kind (mix.ITEMS) in free space on the writer's page, if there is room."""
    {"field": add_field, "receipt": add_receipt, "meter": add_meter, "boxes": add_boxes,
     "cheque": add_cheque}[item](writer)


def typeface(writer) -> fonts.Face | None:
    faces = writer.sources.fonts.typefaces
    return faces[int(writer.rng.random() * len(faces))] if faces else None


def print_colour(writer) -> tuple[float, np.ndarray]:
    """(darkness, colour) of one print run."""
    return writer.rng.uniform(0.75, 0.97), PRINT_INKS[pick(writer.rng, PRINT_INK_ODDS)]


def print_height(writer) -> float:
    """A printed digit height: 8 to 40 pixels on a 640 page, small sizes commoner (as on documents)."""
    return float(np.exp(writer.rng.uniform(np.log(8), np.log(40)))) * writer.scale


def add_field(writer, x: float | None = None, baseline: float | None = None, height: float | None = None) -> None:
    """A printed label and its value, printed or written in by hand: 'Date: 12/03/2024', 'Total 45.20'. Placed
    at random unless given the label's pen position (x, baseline); `height`: of the printed digits."""
    rng, face = writer.rng, typeface(writer)
    if face is None:
        return
    kind = list(FIELD_LABELS)[int(rng.random() * len(FIELD_LABELS))]
    labels = FIELD_LABELS[kind]
    label, value = labels[int(rng.random() * len(labels))], field_value(rng, kind)
    height = height or print_height(writer)
    if x is None:
        x, baseline = writer.random_spot()
    size = printed.size_for(face, height)
    darkness, colour = print_colour(writer)
    digits, label_mark, x = printed.typeset(face, label, size, x, baseline, darkness, colour)
    x += height * rng.uniform(0.8, 2.5)  # wider than the reader's gap: the label is no part of the number
    marks = [label_mark] if label_mark else []
    if rng.random() < FILLED_IN:  # the value written in by hand, larger, on the same line
        handwriting = max(height * rng.uniform(1.1, 1.8), writer.smallest)
        written, mark, _ = handwrite_value(writer, value, handwriting, x, baseline)
        digits += written
        marks += [mark] if mark else []
    else:
        written, mark, _ = printed.typeset(face, value, size, x, baseline, darkness, colour)
        digits += written
        marks += [mark] if mark else []
    writer.place(digits, marks, pad=0.7 * height)


def handwrite_value(writer, value: str, height: float, x: float, baseline: float):
    """A value written by hand in the shape of `value` (its runs of digits and signs; the digits are the hand's):
    digit runs in the page's hand, signs in the lettering hand; (digits, one mark for the signs, x after)."""
    colour, digits, marks = writer.number_colour(), [], []
    for run in split_runs(value):
        if run[0] in printed.DIGIT_CHARS:
            written, x = writer.handwrite(len(run), height, x, baseline, colour)
            digits += written
        elif run.strip():
            mark, x = writer.handwrite_text(run.strip(), height, x + 0.1 * height, baseline, colour)
            marks += [mark] if mark else []
        else:
            x += 0.3 * height
        x += height * writer.rng.uniform(0.05, 0.2)
    pieces = [(m.x, m.y, m.coverage) for m in marks]
    mark = Mark.composed("".join(m.text for m in marks), marks[0].source, pieces, writer.darkness, colour) \
        if marks else None
    return digits, mark, x


def split_runs(text: str) -> list[str]:
    """'12/03 45' -> ['12', '/', '03', ' ', '45']: runs of digits and of other characters."""
    runs = []
    for char in text:
        if runs and (char in printed.DIGIT_CHARS) == (runs[-1][0] in printed.DIGIT_CHARS):
            runs[-1] += char
        else:
            runs.append(char)
    return runs


def add_receipt(writer) -> None:
    """A receipt-like block: shop name, date and time, item lines with right-aligned prices, a rule, the total."""
    rng, face = writer.rng, typeface(writer)
    if face is None:
        return
    height = float(np.exp(rng.uniform(np.log(7), np.log(16)))) * writer.scale
    size = printed.size_for(face, height)
    pitch = height * rng.uniform(1.6, 2.1)
    n_items = int(rng.integers(2, 8))
    column = height * rng.uniform(12, 20)  # the block's width
    x, y = writer.random_spot()
    box = (x, y - height, x + column, y + pitch * (n_items + 3))
    if box[2] > writer.width - writer.margin or box[3] > writer.height - writer.margin or \
            not writer.occupied.free(box, pad=0.7 * height):
        return
    darkness, colour = print_colour(writer)
    lines = [SHOP_WORDS[int(rng.random() * len(SHOP_WORDS))], (field_value(rng, "date"), f"{digits_of(rng, 2)}:"
                                                                f"{digits_of(rng, 2)}")]
    for _ in range(n_items):
        lines.append((ITEM_WORDS[int(rng.random() * len(ITEM_WORDS))], f"{int(rng.integers(0, 100))}."
                                                                         f"{digits_of(rng, 2)}"))
    lines.append(("TOTAL", f"{int(rng.integers(1, 1000))}.{digits_of(rng, 2)}"))
    digits, marks, numbers = [], [], []
    for row, line in enumerate(lines):
        baseline = y + row * pitch
        left, right = (line, "") if isinstance(line, str) else line
        for text, start in ((left, x), (right, x + column - printed.width(face, right, size))):
            written, mark, _ = printed.typeset(face, text, size, start, baseline, darkness, colour)
            digits += written
            marks += [mark] if mark else []
            numbers += numbers_of(written) if written else []  # run by run: the reader never joins two lines
    if writer.place(digits, marks, pad=0.7 * height, numbers=numbers):  # and a rule above the total
        rule = int(y + (len(lines) - 2) * pitch + (pitch - height) / 2)
        writer.layout.rules.append((int(x), rule, int(x + column), rule, colour * 0.5 + writer.paper * 0.5))


def add_meter(writer, x: float | None = None, baseline: float | None = None, height: float | None = None,
              n: int | None = None, pad: float | None = None) -> bool:
    """A seven-segment display: a tinted window with a frame, 3 to 8 digits (leading zeros), maybe a decimal
    point, faint unlit segments and a printed unit. Placed at random unless given its first digit's bottom-left
    (x, baseline), digit height, number of digits and padding (a fraction of the height); False if it did not fit."""
    rng = writer.rng
    height = height or float(np.exp(rng.uniform(np.log(14), np.log(80)))) * writer.scale
    n = n or int(rng.integers(3, 9))
    cell_w = int(round(height * rng.uniform(0.45, 0.6)))
    # in steps of half a pixel and of 0.05: the same few cells are drawn once (segments.digit keeps them)
    thickness = round(2 * max(1.5, height * rng.uniform(0.1, 0.17))) / 2
    slant = round(20 * float(rng.choice([0.0, rng.uniform(0.05, 0.18)]))) / 20
    pitch = cell_w + height * rng.uniform(0.15, 0.35)
    other_style, ghosts = rng.random() < 0.3, rng.random() < GHOSTS
    pad = height * (rng.uniform(0.25, 0.5) if pad is None else pad)
    if x is None:
        x, baseline = writer.random_spot()
    top = baseline - height
    window = (x - pad, top - pad, x + n * pitch - (pitch - cell_w) + slant * height + pad, baseline + pad)
    if window[2] > writer.width - writer.margin or window[3] > writer.height - writer.margin or \
            min(window[:2]) < writer.margin or not writer.occupied.free(window, pad=0.6 * height):
        return False
    h, point = int(round(height)), int(rng.integers(1, n)) if n > 1 and rng.random() < 0.4 else 0
    darkness = rng.uniform(0.8, 0.97)
    value = digits_of(rng, n)
    digits, marks = [], []
    for k, char in enumerate(value):
        cx, cy = int(round(x + k * pitch)), int(round(top))
        coverage, hull, (dx, dy) = segments.digit(int(char), cell_w, h, thickness, slant, other_style)
        digits.append(Digit(int(char), "segments", cx + dx, cy + dy, coverage, darkness, hull, SEGMENT_INK))
        if ghosts:
            marks.append(Mark("", "segments", cx - segments.BORDER, cy - segments.BORDER,
                              segments.ghost(cell_w, h, thickness, slant),
                              rng.uniform(0.06, 0.14), SEGMENT_INK))
        if k + 1 == point:  # the decimal point, in the gap after this digit
            side = max(int(round(thickness)), 2)
            marks.append(Mark(".", "segments", int(round(x + k * pitch + cell_w + (pitch - cell_w - side) / 2)),
                              int(round(baseline)) - side, np.ones((side, side), np.float32), darkness,
                              SEGMENT_INK))
    writer.layout.panels.append((*(int(round(v)) for v in window),
                                 LCD_PANELS[int(rng.random() * len(LCD_PANELS))] * writer.paper))
    add_frame(writer, window, writer.paper * 0.3)
    writer.occupied.take(window)
    writer.layout.marks += marks
    writer.layout.numbers += numbers_of(digits)
    writer.n_digits += len(digits)
    if (face := typeface(writer)) is not None:  # the unit, printed beside the window
        unit_h = height * rng.uniform(0.3, 0.5)
        _, mark, _ = printed.typeset(face, UNITS[int(rng.random() * len(UNITS))], printed.size_for(face, unit_h),
                                     window[2] + 0.8 * height, baseline, darkness, PRINT_INKS[0])
        if mark is not None:
            writer.place([], [mark], pad=2)
    return True


def add_boxes(writer) -> None:
    """A printed label and a row of boxes, one handwritten digit in each (some left empty at the end)."""
    rng, face = writer.rng, typeface(writer)
    height = writer.digit_height() * 0.8 + 6 * writer.scale
    n = int(rng.integers(4, 11))
    box_w, box_h = height * rng.uniform(1.15, 1.5), height * rng.uniform(1.35, 1.7)
    x, baseline = writer.random_spot()
    darkness, colour = print_colour(writer)
    digits, marks = [], []
    if face is not None:
        label = FIELD_LABELS["code"][int(rng.random() * len(FIELD_LABELS["code"]))]
        size = printed.size_for(face, height * rng.uniform(0.4, 0.7))
        _, mark, x = printed.typeset(face, label, size, x, baseline, darkness, colour)
        marks += [mark] if mark else []
        x += height * 0.5
    top = baseline - box_h + height * 0.2
    row = (x, top, x + n * box_w, top + box_h)
    if row[2] > writer.width - writer.margin or row[3] > writer.height - writer.margin or \
            not writer.occupied.free(enclosing([row] + [m.box for m in marks]), pad=0.3 * height):
        return
    ink, filled = writer.number_colour(), n - int(rng.integers(0, 3))
    for k in range(filled):
        written, _ = writer.handwrite(1, height * rng.uniform(0.8, 1.0), 0, 0, ink)
        if written:  # centred in its box, with a little jitter
            digit = written[0]
            w, h = digit.coverage.shape[1], digit.coverage.shape[0]
            digit.x = int(round(x + k * box_w + (box_w - w) / 2 + rng.normal(0, 0.05) * box_w))
            digit.y = int(round(top + (box_h - h) / 2 + rng.normal(0, 0.05) * box_h))
            digits.append(digit)
    if writer.place(digits, marks, pad=0.3 * height):
        writer.occupied.take(row)  # the empty boxes too
        line = colour * 0.6 + writer.paper * 0.4
        x1, y1, x2, y2 = (int(round(v)) for v in row)
        writer.layout.rules += [(x1, y1, x2, y1, line), (x1, y2, x2, y2, line)]
        writer.layout.rules += [(int(round(x + k * box_w)), y1, int(round(x + k * box_w)), y2, line)
                                for k in range(n + 1)]


def add_frame(writer, box: tuple[float, float, float, float], colour: np.ndarray) -> None:
    """A printed rectangle around `box`."""
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    writer.layout.rules += [(x1, y1, x2, y1, colour), (x1, y2, x2, y2, colour), (x1, y1, x1, y2, colour),
                            (x2, y1, x2, y2, colour)]


def add_guilloche(writer, region: tuple[float, float, float, float]) -> None:
    """A security background over `region` in a light tint."""
    rng = writer.rng
    tint = np.clip(writer.paper - rng.uniform(0.1, 0.35) * rng.dirichlet((1, 1, 1)), 0, 1)
    x1, y1, x2, y2 = (int(round(v)) for v in region)
    writer.layout.guilloche.append((x1, y1, x2, y2, tint, int(rng.integers(GUILLOCHES)), writer.size))


def add_cheque(writer) -> None:
    """A cheque: a band with a security background, a field at its top right (printed, or filled in by hand), and
    an amount box with a printed currency sign and a handwritten amount."""
    rng = writer.rng
    width = (writer.width - 2 * writer.margin) * rng.uniform(0.6, 1.0)
    height = width * rng.uniform(0.3, 0.45)
    x1, y1 = writer.margin + rng.uniform(0, writer.width - 2 * writer.margin - width), writer.random_spot()[1]
    band = (x1, y1, x1 + width, y1 + height)
    if band[3] > writer.height - writer.margin or not writer.occupied.free(band, pad=4):
        return
    add_guilloche(writer, band)
    add_field(writer, x1 + width * 0.5, y1 + height * 0.25, min(print_height(writer), 0.1 * height))  # top right
    value = field_value(rng, "amount").replace("$ ", "")
    # handwriting takes about one digit height per character, and the sign and margins 1.6 more
    digit_h = min(height * rng.uniform(0.15, 0.25), 0.38 * width / (len(value) + 1.6))
    box = (x1 + width * 0.55, y1 + height * 0.45, x1 + width * 0.55 + digit_h * (len(value) + 1.6),
           y1 + height * 0.45 + digit_h * 1.8)
    add_frame(writer, box, writer.paper * 0.35)
    baseline = (box[1] + box[3]) / 2 + digit_h / 2
    sign = "$€"[int(rng.random() * 2)]
    digits, marks = [], []
    if (face := typeface(writer)) is not None and face.has(sign):
        darkness, colour = print_colour(writer)
        _, mark, _ = printed.typeset(face, sign, printed.size_for(face, digit_h), box[0] + 0.2 * digit_h, baseline,
                                     darkness, colour)
        marks += [mark] if mark else []
    written, mark, _ = handwrite_value(writer, value, digit_h, box[0] + 1.3 * digit_h, baseline)
    digits += written
    marks += [mark] if mark else []
    writer.place(digits, marks, pad=0)
    writer.occupied.take(band)
