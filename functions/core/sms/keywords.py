"""What an inbound text asks for: the carrier-standard keywords (any case, surrounding spaces and punctuation)."""

from __future__ import annotations

from enum import StrEnum


class Reply(StrEnum):
    CONFIRM = "confirm"
    STOP = "stop"
    HELP = "help"
    OTHER = "other"


CONFIRM_KEYWORDS = frozenset({"YES", "Y", "START"})
STOP_KEYWORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPT OUT", "OPTOUT"})
HELP_KEYWORDS = frozenset({"HELP"})


def normalize(body: str) -> str:
    """Upper-cased, punctuation around and inside removed, runs of whitespace made one space."""
    kept = "".join(ch if ch.isalnum() or ch.isspace() else " " for ch in body)
    return " ".join(kept.upper().split())


def classify(body: str) -> Reply:
    """The keyword a reply is, matched on the whole normalized text ("stop!" is STOP, "stop it" is not)."""
    text = normalize(body)
    if text in STOP_KEYWORDS:
        return Reply.STOP
    if text in CONFIRM_KEYWORDS:
        return Reply.CONFIRM
    if text in HELP_KEYWORDS:
        return Reply.HELP
    return Reply.OTHER
