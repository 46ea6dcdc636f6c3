"""A form signup as the endpoint accepts it: the fields, their rules, and the idempotency id of a signup."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, field_validator, model_validator

from functions.core.models import is_placeholder_email, normalize_email, normalize_phone
from functions.core.sms.rules import textable

# Cannabis retail: a shopper signs up only at 21 or older, and the form must say the shopper confirmed it.
MINIMUM_AGE = 21
NAME_MAX = 100
STORE_MAX = 100
CONSENT_TEXT_MAX = 2000
IDEMPOTENCY_KEY_MAX = 200
# The request body the handler reads at most (bytes); a bigger one is refused with 413 before it is parsed.
MAX_BODY_BYTES = 8 * 1024
FIELDS = (
    "first_name",
    "last_name",
    "phone",
    "email",
    "birth_date",
    "store",
    "age_confirmed",
    "marketing_consent",
    "consent_text",
)


@dataclass(frozen=True)
class FieldProblem:
    """One reason a request was refused: the field and why, never the value (it may be personal data)."""

    field: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "reason": self.reason}


class SignupRequestError(ValueError):
    """The body is not a valid signup; `problems` name each field and reason."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.reason}" for p in problems))
        self.problems = problems


def _text(value: str, limit: int) -> str:
    """Kept verbatim (only surrounding spaces trimmed): any script, any punctuation; no control characters."""
    text = value.strip()
    if not text:
        raise ValueError("must not be blank")
    if len(text) > limit:
        raise ValueError(f"must be at most {limit} characters")
    if not text.isprintable():
        raise ValueError("must not contain control characters (line breaks, tabs, NUL)")
    return text


def age_on(birth: date, today: date) -> int:
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


class SignupRequest(BaseModel):
    """The JSON body of POST /tenants/{tenant}/signups."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    first_name: str
    last_name: str | None = None
    phone: str | None = None
    email: str | None = None
    birth_date: date
    store: str
    age_confirmed: StrictBool
    marketing_consent: StrictBool = False
    consent_text: str | None = Field(default=None)

    @field_validator("first_name", "last_name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return None if value is None else _text(value, NAME_MAX)

    @field_validator("store")
    @classmethod
    def _store(cls, value: str) -> str:
        return _text(value, STORE_MAX)

    @field_validator("consent_text")
    @classmethod
    def _consent_text(cls, value: str | None) -> str | None:
        return None if value is None else _text(value, CONSENT_TEXT_MAX)

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if len(value) > 40:
            raise ValueError("must be a phone number, e.g. +1 206 555 0100")
        e164 = normalize_phone(value)
        if e164 is None or not textable(e164):
            raise ValueError("is not a valid phone number: give the full number, e.g. +1 206 555 0100")
        return e164

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        email = normalize_email(value)
        if email is None or len(email) > 254 or " " in email or not email.isprintable():
            raise ValueError("is not an email address, e.g. name@example.com")
        local, _, domain = email.rpartition("@")
        if not local or "." not in domain:
            raise ValueError("is not an email address, e.g. name@example.com")
        if is_placeholder_email(email):
            raise ValueError("is a placeholder address: give the shopper's own address")
        return email

    @field_validator("age_confirmed")
    @classmethod
    def _confirmed(cls, value: bool) -> bool:
        if not value:
            raise ValueError(f"must be true: the shopper confirms being {MINIMUM_AGE} or older")
        return value

    @model_validator(mode="after")
    def _contact_and_consent(self) -> SignupRequest:
        if self.phone is None and self.email is None:
            raise ValueError("phone: give a phone number or an email address (or both)")
        if self.marketing_consent and self.consent_text is None:
            raise ValueError("consent_text: required with marketing_consent: the consent wording the form showed")
        return self

    def check_age(self, today: date) -> None:
        if self.birth_date > today:
            raise SignupRequestError([FieldProblem("birth_date", "is in the future")])
        if age_on(self.birth_date, today) < MINIMUM_AGE:
            raise SignupRequestError([FieldProblem("birth_date", f"the shopper must be {MINIMUM_AGE} or older")])

    def content(self) -> dict[str, Any]:
        """The normalized signup: what two posts of the same signup have in common."""
        return {name: getattr(self, name) for name in FIELDS} | {"birth_date": self.birth_date.isoformat()}


def _problems(exc: ValidationError) -> list[FieldProblem]:
    found: list[FieldProblem] = []
    for error in exc.errors(include_input=False, include_url=False):
        location = ".".join(str(part) for part in error.get("loc", ()))
        message = str(error.get("msg", "is invalid")).removeprefix("Value error, ")
        kind = error.get("type", "")
        if kind == "missing":
            message = "is required"
        elif kind == "extra_forbidden":
            message = f"is not a signup field (the fields are {', '.join(FIELDS)})"
        elif kind in {"bool_type", "bool_parsing"}:
            message = "must be true or false"
        elif kind.startswith("date"):
            message = "must be a date as YYYY-MM-DD"
        elif kind == "string_type":
            message = "must be a string"
        if not location and ": " in message:  # a rule across fields names its field first
            location, message = message.split(": ", 1)
        found.append(FieldProblem(location or "body", message))
    return found


def parse_signup(body: bytes, today: date) -> SignupRequest:
    """The signup in a request body, or SignupRequestError naming each field at fault and why."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise SignupRequestError([FieldProblem("body", "is not JSON: send a JSON object (UTF-8)")]) from None
    if not isinstance(data, dict):
        raise SignupRequestError([FieldProblem("body", "must be a JSON object with the signup's fields")])
    try:
        request = SignupRequest.model_validate(data)
    except ValidationError as exc:
        raise SignupRequestError(_problems(exc)) from None
    request.check_age(today)
    return request


def signup_id(tenant: str, request: SignupRequest, idempotency_key: str | None = None) -> str:
    """The id that makes a signup posted twice one signup: the client's Idempotency-Key if it sent one, else the
    normalized content (a double-click or a retry sends the same)."""
    if idempotency_key is not None:
        basis = f"{tenant}\0key\0{idempotency_key}"
    else:
        basis = f"{tenant}\0content\0{json.dumps(request.content(), sort_keys=True, ensure_ascii=False)}"
    return hashlib.sha256(basis.encode("utf-8")).hexdigest()[:32]


def check_idempotency_key(value: str) -> str:
    text = value.strip()
    if not text or len(text) > IDEMPOTENCY_KEY_MAX or not text.isascii() or not text.isprintable():
        raise SignupRequestError(
            [FieldProblem("Idempotency-Key", f"must be 1-{IDEMPOTENCY_KEY_MAX} printable ASCII characters")]
        )
    return text
