"""Page orientation from joint classes: each box is a digit at one of the four quarter turns (40 classes).

A model trained on augment.rotate's 0/90/180/270-degree copies with plain digit labels cannot tell a 6 from a 9
turned upside down: pixel for pixel they are the same glyph. Trained with joint classes (digit x quarter turn,
JOINT_NAMES) it says which turn each glyph appears at; one page is written one way up, so the boxes vote:

- every box at least VOTE_CONF sure votes for the turn of its best class with its confidence;
- 0, 1 and 8 look the same upside down (turn t and t + 180 alike), so they carry no weight;
- a 6 at turn t is a 9 at turn t + 180, so a 6 or 9 splits its vote between the two: it tells the axis only.

The page's turn is the one with most votes; then each box gets the digit that fits it: digit d scores the larger of
"d at the page's turn" and "the digit that looks like d upside down, at the opposite turn".

Turns are counter-clockwise, as augment.rotate writes them (digitdet.turns): a page at turn 90 is its upright page
turned 90 degrees counter-clockwise, and turning it back is a turn of 270.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from digitdet.turns import TURNS

N_DIGITS = 10
JOINT_NAMES = [str(d) for d in range(N_DIGITS)] + [f"{d}@{t}" for t in TURNS[1:] for d in range(N_DIGITS)]
UPSIDE_DOWN = {0: 0, 1: 1, 6: 9, 8: 8, 9: 6}  # digit -> the digit it looks like turned 180 degrees
VOTE_CONF = 0.25  # boxes less sure than this do not vote (evaluation keeps boxes down to 0.001)


def joint_class(digit: int, turn: int) -> int:
    """The joint class of `digit` seen at quarter turn `turn` (degrees counter-clockwise)."""
    return TURNS.index(turn) * N_DIGITS + digit


def is_joint(names) -> bool:
    """Whether a model's class names are the 40 joint classes."""
    return [str(n) for n in names] == JOINT_NAMES


def vote_weights() -> np.ndarray:
    """(40, 4): how a box of each joint class, with confidence 1, votes for each turn."""
    weights = np.zeros((len(JOINT_NAMES), len(TURNS)), np.float32)
    for turn_index in range(len(TURNS)):
        for digit in range(N_DIGITS):
            cls, opposite = turn_index * N_DIGITS + digit, (turn_index + 2) % len(TURNS)
            if UPSIDE_DOWN.get(digit) == digit:
                continue  # 0, 1, 8: no evidence of the turn
            if digit in UPSIDE_DOWN:
                weights[cls, [turn_index, opposite]] = 0.5  # 6, 9: this turn or the opposite one
            else:
                weights[cls, turn_index] = 1.0
    return weights


VOTE_WEIGHTS = vote_weights()


def nms_groups() -> np.ndarray:
    """(40,): a group id per joint class; classes that can be one glyph seen two ways share a group, so that NMS
    keeps one box for it (a 6 at 0 and a 9 at 180 on the same ink are one digit)."""
    groups = np.arange(len(JOINT_NAMES))
    for turn_index in range(2, len(TURNS)):
        for digit, other in UPSIDE_DOWN.items():
            groups[turn_index * N_DIGITS + digit] = groups[(turn_index - 2) * N_DIGITS + other]
    return groups


NMS_GROUPS = nms_groups()


@dataclass(frozen=True)
class Orientation:
    """A page's quarter turn (degrees counter-clockwise), the share of the votes it won (0 when nobody voted),
    and the votes for each of TURNS."""

    turn: int
    confidence: float
    votes: tuple[float, ...]


def page_turn(scores: np.ndarray) -> Orientation:
    """The page's turn from the (N, 40) joint class scores of its boxes (see the module's docstring)."""
    scores = np.asarray(scores, np.float32).reshape(-1, len(JOINT_NAMES))
    best, confidence = scores.argmax(1), scores.max(1, initial=0)
    voters = confidence >= VOTE_CONF
    votes = (VOTE_WEIGHTS[best[voters]] * confidence[voters, None]).sum(0)
    total = float(votes.sum())
    if total == 0:
        return Orientation(0, 0.0, tuple(float(v) for v in votes))  # nothing tells: read it as it is
    winner = int(votes.argmax())
    return Orientation(TURNS[winner], float(votes[winner]) / total, tuple(float(v) for v in votes))


def digit_scores(scores: np.ndarray, turn: int) -> np.ndarray:
    """(N, 10) digit scores for boxes on a page at `turn`, from their (N, 40) joint class scores."""
    scores = np.asarray(scores, np.float32).reshape(-1, len(JOINT_NAMES))
    at = TURNS.index(turn)
    opposite = (at + 2) % len(TURNS)
    digits = scores[:, at * N_DIGITS:(at + 1) * N_DIGITS].copy()
    for digit, other in UPSIDE_DOWN.items():
        digits[:, digit] = np.maximum(digits[:, digit], scores[:, opposite * N_DIGITS + other])
    return digits
