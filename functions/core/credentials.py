"""Per-vendor credential models; secrets are SecretStr so they never render in reprs, logs or errors."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, TypeAdapter, ValidationError

from functions.core.errors import CredentialError
from functions.core.layout import Vendor


class _Credential(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    def public_fields(self) -> dict[str, Any]:
        """What may be shown back to an admin: everything but the secret values."""
        return {k: v for k, v in self.model_dump().items() if not isinstance(getattr(self, k), SecretStr)}


class PosabitCredential(_Credential):
    vendor: Literal[Vendor.POSABIT] = Vendor.POSABIT
    store_name: str = Field(min_length=1, max_length=100)
    integrator_token: SecretStr = Field(min_length=8)
    venue_token: SecretStr = Field(min_length=8)
    market: str | None = Field(default=None, min_length=2, max_length=2)


class FlourishCredential(_Credential):
    vendor: Literal[Vendor.FLOURISH] = Vendor.FLOURISH
    username: str = Field(min_length=1, max_length=200)
    key: SecretStr = Field(min_length=8)
    regions: tuple[str, ...] = ()
    facility_id: str | None = None
    auth_mode: Literal["api_key", "basic"] = "api_key"


class ThsuiteCredential(_Credential):
    vendor: Literal[Vendor.THSUITE] = Vendor.THSUITE
    integration_token: SecretStr = Field(min_length=8)
    store_name: str | None = None


class ProfitekCredential(_Credential):
    vendor: Literal[Vendor.PROFITEK] = Vendor.PROFITEK
    custom_ip_port: str | None = None
    store_name: str = Field(min_length=1, max_length=100)
    auth_key: SecretStr = Field(min_length=8)
    pinned_cert_pem: str | None = None


class AuphanCredential(_Credential):
    vendor: Literal[Vendor.AUPHAN] = Vendor.AUPHAN
    custom_ip_port: str | None = None
    api_key: SecretStr = Field(min_length=8)
    pinned_cert_pem: str | None = None


Credential = Annotated[
    PosabitCredential | FlourishCredential | ThsuiteCredential | ProfitekCredential | AuphanCredential,
    Field(discriminator="vendor"),
]
_ADAPTER: TypeAdapter[Credential] = TypeAdapter(Credential)


def parse_credential(raw: str | bytes | dict[str, Any], vendor: Vendor, credential_id: str) -> Credential:
    """Validate a credential for one vendor; the error lists the bad fields, never their values."""
    try:
        data = _ADAPTER.validate_json(raw) if isinstance(raw, str | bytes) else _ADAPTER.validate_python(raw)
    except ValidationError as exc:
        fields = ", ".join(sorted({".".join(map(str, e["loc"][1:] or e["loc"])) for e in exc.errors()}))
        raise CredentialError(
            f"credential {credential_id} for {vendor.value} is invalid (fields: {fields}); "
            f"re-add it with `possync credentials add {vendor.value}`"
        ) from None
    if data.vendor != vendor:
        raise CredentialError(f"credential {credential_id} is for {data.vendor.value}, not {vendor.value}")
    return data


def credential_json(credential: Credential) -> str:
    """The secret string stored in Secrets Manager (secret values revealed on purpose, only here)."""
    data = credential.model_dump(mode="python")
    for key, value in list(data.items()):
        if isinstance(value, SecretStr):
            data[key] = value.get_secret_value()
    import json

    return json.dumps(data, default=str)
