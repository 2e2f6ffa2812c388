"""Page builder: synthetic photos of pages and close-ups with every digit boxed tight, handwritten or printed.

A page is paper of some tone and texture (plain, ruled, grid or a printed form) with handwritten numbers along
lines and scattered, written by MNIST's writers or (a quarter of the pages) a handwriting font; printed items
(form fields, receipts, seven-segment meters, one box per digit, cheques with a security background); signs,
printed text and letters that look like digits, pen strokes and smudges; then photographed (augment/photo.py:
slight tilt and perspective, light, blur, noise, JPEG). A close-up is a small image filled by one number or a few
digits. What pages hold and how often: augment/pages/mix.py. About 3% of pages hold no digit.

Every digit, printed or handwritten, is labelled; its box is the box of its own ink (coverage >= INK_LEVEL), not of
its cell, and nothing it draws lies outside it. Letters and signs are never digits.

Train and val pages use disjoint parts of the MNIST training digits, test pages the MNIST test digits
(digitdet/mnist.py); test pages show only the held-out fonts of augment/pages/fonts.py, train and val pages the
others. The same seed gives the same files, whatever the number of workers.

Modules, one idea each: ink (grey levels to coverage), fonts, hands (handwriting), printed, segments, layout (what
a page shows), writer (planning a page), documents (printed items), closeups, mix (the shares), render, build
(`run`, workers), preview, __main__ (the command line).

Output (ultralytics layout, built in a temporary folder and renamed into place):
    OUT/images/{train,val,test}/000000.jpg   the images: pages (size x size) and close-ups (smaller)
    OUT/labels/{split}/000000.txt            YOLO boxes, classes 0-9
    OUT/numbers/{split}/000000.json          the numbers in reading order: digits, box, digit boxes (pixels),
                                             each digit's source; the image's kind (page or close-up)
    OUT/data.yaml                            with the fonts each split shows, and those missing

Usage:
    python -m augment.pages --mnist ../shared/data/mnist --out data/pages
    python -m augment.pages --mnist DIR --out data/pages --train 8000 --val 1000 --test 1000 --size 640 --workers 2
    python -m augment.pages --mnist DIR --out /tmp/look --train 16 --val 0 --test 0 --preview look.png
"""

from augment.pages.build import run

__all__ = ["run"]
