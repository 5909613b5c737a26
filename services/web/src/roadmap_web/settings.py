"""Settings of the web process, read from the environment (one ``WebSettings`` per process)."""

from __future__ import annotations

import secrets
from enum import StrEnum
from typing import Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIN_SECRET_LENGTH = 32


class AppEnv(StrEnum):
    development = "development"
    test = "test"
    production = "production"


class WebSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    app_env: AppEnv = AppEnv.development
    # Where the API answers, as this process reaches it (Railway: its private address).
    api_url: str = "http://127.0.0.1:8000"
    api_timeout_s: float = Field(default=15.0, gt=0)
    # Signs the cross-site request tokens. Unset outside production: a random key per
    # process, so open forms stop working after a restart, which is fine on a laptop.
    web_secret_key: SecretStr | None = None
    # Browsers drop Secure cookies sent over plain http://, so it is off for local stacks.
    cookie_secure: bool = False
    roadmaps_per_page: int = Field(default=20, ge=1, le=100)

    @model_validator(mode="after")
    def _secret_key(self) -> Self:
        if self.web_secret_key is None:
            if self.app_env is AppEnv.production:
                raise ValueError("WEB_SECRET_KEY must be set in production")
            self.web_secret_key = SecretStr(secrets.token_hex(32))
        elif len(self.web_secret_key.get_secret_value()) < MIN_SECRET_LENGTH:
            raise ValueError(f"WEB_SECRET_KEY must be at least {MIN_SECRET_LENGTH} characters")
        if self.app_env is AppEnv.production and not self.cookie_secure:
            raise ValueError("COOKIE_SECURE must be true in production (the site runs on https)")
        return self

    @property
    def is_production(self) -> bool:
        return self.app_env is AppEnv.production

    def secret(self) -> bytes:
        assert self.web_secret_key is not None
        return self.web_secret_key.get_secret_value().encode()
