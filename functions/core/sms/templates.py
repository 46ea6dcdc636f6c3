"""Per-tenant SMS texts: the required wording, and their length in segments (GSM-7 or UCS-2) checked when set."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType


class Kind(StrEnum):
    """The kinds of text possync sends (the outbox and the consent evidence name them)."""

    OPTIN_REQUEST = "optin_request"
    CONFIRMATION = "confirmation"
    HELP = "help"
    STOP_ACK = "stop_ack"


# GSM 03.38 default alphabet, and its extension table (each extension character takes two septets).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")
GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67
# A text longer than this many segments is refused: carriers filter long marketing texts and each segment is billed.
MAX_SEGMENTS = 3

REQUIRED_PHRASES: Mapping[Kind, tuple[str, ...]] = {
    Kind.OPTIN_REQUEST: ("{brand}", "Reply YES", "Msg & data rates may apply", "Reply STOP to cancel, HELP for help"),
    Kind.CONFIRMATION: ("{brand}", "STOP"),
    Kind.HELP: ("{brand}", "STOP", "Msg & data rates may apply"),
    Kind.STOP_ACK: ("{brand}",),
}
DEFAULT_PROGRAM = "loyalty texts: deals and points updates, up to 4 msgs/month"
DEFAULT_TEMPLATES: Mapping[Kind, str] = MappingProxyType(
    {
        Kind.OPTIN_REQUEST: (
            "{brand}: join our {program}? Reply YES to join. Msg & data rates may apply. "
            "Reply STOP to cancel, HELP for help."
        ),
        Kind.CONFIRMATION: ("{brand}: you're in for {program}. Msg & data rates may apply. Reply STOP to cancel."),
        Kind.HELP: ("{brand} {program}. Msg & data rates may apply. Reply STOP to cancel. Questions? Ask us in store."),
        Kind.STOP_ACK: "{brand}: you're unsubscribed and will get no more texts from us.",
    }
)


class TemplateError(ValueError):
    """A template is missing required wording or is too long; the message says which and how to fix it."""


@dataclass(frozen=True)
class Length:
    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int


def measure(text: str) -> Length:
    """How a text is encoded and how many segments it takes (a multi-part text loses room to its headers)."""
    if all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text):
        units = sum(2 if ch in GSM7_EXTENSION else 1 for ch in text)
        single, part, encoding = GSM7_SINGLE, GSM7_PART, "GSM-7"
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, part, encoding = UCS2_SINGLE, UCS2_PART, "UCS-2"
    segments = 1 if units <= single else math.ceil(units / part)
    return Length(encoding, units, segments)


@dataclass(frozen=True)
class Templates:
    """A tenant's texts: the brand, the program description, one template per kind, and their version (stored with
    each request as its evidence)."""

    brand: str
    program: str = DEFAULT_PROGRAM
    texts: Mapping[Kind, str] = field(default_factory=lambda: dict(DEFAULT_TEMPLATES))
    version: int = 1

    def render(self, kind: Kind) -> str:
        return self.texts.get(kind, DEFAULT_TEMPLATES[kind]).format(brand=self.brand, program=self.program)


def check_templates(brand: str, program: str, overrides: Mapping[str, str]) -> None:
    """Every template, rendered with this brand and program, carries its required wording and fits MAX_SEGMENTS.
    Raises TemplateError naming the template, its encoding and segment count, and what to do."""
    unknown = sorted(set(overrides) - {k.value for k in Kind})
    if unknown:
        raise TemplateError(f"unknown SMS template {', '.join(unknown)}; use one of {', '.join(k.value for k in Kind)}")
    for kind in Kind:
        template = overrides.get(kind.value, DEFAULT_TEMPLATES[kind])
        for phrase in REQUIRED_PHRASES[kind]:
            if phrase not in template:
                raise TemplateError(f"SMS template {kind.value} must contain {phrase!r} (carrier and TCPA wording)")
        try:
            text = template.format(brand=brand, program=program)
        except (KeyError, IndexError, ValueError):
            raise TemplateError(
                f"SMS template {kind.value} may only use the placeholders {{brand}} and {{program}}"
            ) from None
        length = measure(text)
        if length.segments > MAX_SEGMENTS:
            raise TemplateError(
                f"SMS template {kind.value} is {length.units} {length.encoding} characters, {length.segments} "
                f"segments; at most {MAX_SEGMENTS} are allowed. Shorten it"
                + (" or replace the characters GSM-7 lacks (emoji, curly quotes)" if length.encoding == "UCS-2" else "")
            )
