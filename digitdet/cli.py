"""What every command line shares: argparse types that check a value's range at the door, and a main() wrapper
that ends each error in one line naming the file at fault, and Ctrl-C (or a kill's SIGTERM) without a traceback.

    parser.add_argument("--conf", type=cli.number(0, 1), default=0.25)
    parser.add_argument("--batch", type=cli.integer(1), default=8)

    @cli.one_line_errors
    def main(argv=None) -> int: ...
"""

from __future__ import annotations

import argparse
import functools
import signal
import sys
import threading
from collections.abc import Callable
from contextlib import contextmanager

from digitdet.precision import PRECISIONS

# What bad input raises in this project (DatasetError, ModelError, ImageReadError, FileExistsError, ...), each with a
# message that names the file; anything else is a bug, and keeps its traceback.
INPUT_ERRORS = (ValueError, OSError)
INTERRUPTED = 130  # 128 + SIGINT, as shells report it
TERMINATED = 128 + signal.SIGTERM


def integer(low: int | None = None, high: int | None = None, multiple: int = 1) -> Callable[[str], int]:
    """An argparse type: a whole number in [low, high] (None: unbounded), a multiple of `multiple`."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        check_range(value, text, low, high)
        if value % multiple:
            raise argparse.ArgumentTypeError(f"must be a multiple of {multiple}, got {text}")
        return value

    return parse


def number(low: float | None = None, high: float | None = None) -> Callable[[str], float]:
    """An argparse type: a finite number in [low, high] (None: unbounded)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text}")
        check_range(value, text, low, high)
        return value

    return parse


def check_range(value: float, text: str, low: float | None, high: float | None) -> None:
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = (f"between {low} and {high}" if low is not None and high is not None
                  else f"at least {low}" if low is not None else f"at most {high}")
        raise argparse.ArgumentTypeError(f"must be {bounds}, got {text}")


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that the same cleanup runs (a folder being built is removed)."""


def add_tile_options(parser: argparse.ArgumentParser) -> None:
    """--tile / --no-tile into `tile` (None: the Detector decides per image), as detect.py and evaluate.py take it."""
    tiling = parser.add_mutually_exclusive_group()
    tiling.add_argument("--tile", dest="tile", action="store_true", default=None,
                        help="always run overlapping tiles too (default: for images too large for imgsz and for "
                             "images of small digits)")
    tiling.add_argument("--no-tile", dest="tile", action="store_false", help="never tile")


def add_precision_option(parser: argparse.ArgumentParser) -> None:
    """--precision of a .pt model's inference, as detect.py and evaluate.py take it."""
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="arithmetic of a .pt model: auto (default) is bf16 on a CPU with avx512_bf16/amx_bf16 "
                             "(about 1.7x faster there), else fp32")


def one_line_errors(main: Callable[..., int]) -> Callable[..., int]:
    """Wrap a script's main(): bad input ends in `error: <message>` (exit 1), Ctrl-C in `interrupted` (exit 130)
    and SIGTERM in `terminated` (exit 143), each one line on stderr; cleanup code runs in all three cases."""
    @functools.wraps(main)
    def wrapped(*args, **kwargs) -> int:
        with handling(signal.SIGTERM, raise_terminated):  # not an end on the spot: cleanup runs
            try:
                return main(*args, **kwargs)
            except Terminated:
                print("terminated", file=sys.stderr)
                return TERMINATED
            except KeyboardInterrupt:
                print("interrupted", file=sys.stderr)
                return INTERRUPTED
            except INPUT_ERRORS as error:
                print(f"error: {error}", file=sys.stderr)
                return 1

    return wrapped


@contextmanager
def handling(signum: int, handler):
    """`handler` for signal `signum` while the block runs, then the previous one again (main thread only: signal
    handlers live there; elsewhere nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signum, handler)
    try:
        yield
    finally:
        signal.signal(signum, previous)


def raise_terminated(signum, frame):
    raise Terminated()
