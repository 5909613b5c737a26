from __future__ import annotations

import pytest
from pydantic import ValidationError

from roadmap_core.settings import (
    AuthSettings,
    DatabaseSettings,
    LLMSettings,
    RedisSettings,
    normalise_postgres_url,
    plain_postgres_url,
)

STRONG = "x9" * 20


@pytest.mark.parametrize(
    "given",
    [
        "postgres://u:p@h:5432/db",
        "postgresql://u:p@h:5432/db",
        "postgresql+psycopg://u:p@h:5432/db",
        "postgresql+asyncpg://u:p@h:5432/db",
    ],
)
def test_database_url_normalised_to_asyncpg(given: str) -> None:
    assert normalise_postgres_url(given) == "postgresql+asyncpg://u:p@h:5432/db"
    assert DatabaseSettings(database_url=given).database_url == "postgresql+asyncpg://u:p@h:5432/db"
    assert plain_postgres_url(normalise_postgres_url(given)) == "postgresql://u:p@h:5432/db"


def test_railway_style_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "DATABASE_URL", "postgresql://postgres:pw@postgres.railway.internal:5432/railway"
    )
    monkeypatch.setenv("REDIS_URL", "redis://default:pw@redis.railway.internal:6379")
    assert DatabaseSettings().database_url.startswith("postgresql+asyncpg://postgres:pw@")
    redis = RedisSettings()
    assert redis.broker_url == "redis://default:pw@redis.railway.internal:6379"


@pytest.mark.parametrize("secret", ["dev-secret", "changeme", "short-but-random"])
def test_production_refuses_placeholder_jwt_secrets(secret: str) -> None:
    with pytest.raises(ValidationError, match="JWT_SECRET_KEY") as info:
        AuthSettings(app_env="production", jwt_secret_key=secret)
    assert secret not in str(info.value).split("input_value")[0]


def test_production_accepts_a_strong_secret_and_dev_accepts_the_default() -> None:
    assert AuthSettings(app_env="production", jwt_secret_key=STRONG).is_production
    assert not AuthSettings().is_production


def test_production_requires_an_openai_key_unless_a_custom_endpoint_is_set() -> None:
    with pytest.raises(ValidationError, match="OPENAI_API_KEY"):
        LLMSettings(app_env="production")
    LLMSettings(app_env="production", openai_base_url="http://127.0.0.1:11434/v1")


def test_price_table_and_model_overrides_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_PRICES", '{"m": {"input": "1.5", "output": "2"}}')
    monkeypatch.setenv("LLM_MODEL", "m")
    monkeypatch.setenv("LLM_CONTENT_MODEL", "c")
    s = LLMSettings()
    assert str(s.llm_prices["m"].input) == "1.5"
    assert (s.planning_model, s.content_model) == ("m", "c")


def test_visibility_timeout_must_exceed_task_limits() -> None:
    from roadmap_core.celery_app import create_celery_app

    with pytest.raises(ValueError, match="VISIBILITY_TIMEOUT"):
        create_celery_app("t", RedisSettings(broker_visibility_timeout_s=600))
