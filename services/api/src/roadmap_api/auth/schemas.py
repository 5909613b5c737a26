"""Request and response bodies of the auth endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    SecretStr,
    StringConstraints,
    model_validator,
)

from roadmap_api.auth.policy import MAX_LENGTH, password_problems
from roadmap_core.text import STORABLE

DisplayName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), STORABLE
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterRequest(Strict):
    email: Annotated[EmailStr, Field(max_length=320)]
    password: Annotated[SecretStr, Field(min_length=1, max_length=MAX_LENGTH)]
    display_name: DisplayName | None = None

    @model_validator(mode="after")
    def _policy(self) -> Self:
        problems = password_problems(self.password.get_secret_value(), email=self.email)
        if problems:
            raise ValueError("password " + "; ".join(problems))
        return self


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    display_name: str | None
    is_admin: bool
    created_at: datetime


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth2 token type
    expires_in: int = Field(description="seconds until the token expires")


class PasswordChange(Strict):
    current_password: Annotated[SecretStr, Field(min_length=1, max_length=MAX_LENGTH)]
    new_password: Annotated[
        SecretStr,
        Field(
            min_length=1,
            max_length=MAX_LENGTH,
            description="the same policy as at registration (12+ characters, not trivial)",
        ),
    ]


class ApiKeyCreate(Strict):
    name: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), STORABLE
    ]


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    prefix: str = Field(description="the first characters of the key, to recognise it")
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="the full key; shown only in this response")


class ApiKeyList(BaseModel):
    items: list[ApiKeyOut]
