"""Configuration of the fake LLM: latency, faults (by rate or by script), seed."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class FaultKind(StrEnum):
    rate_limit = "rate_limit"  # 429 with retry-after / retry-after-ms
    server_error = "server_error"  # 500
    timeout = "timeout"  # no answer until the client gives up (or timeout_s passes)
    malformed = "malformed"  # 200 whose content is not JSON
    length = "length"  # 200, content cut off, finish_reason="length"
    refusal = "refusal"  # 200, message.refusal set, no content
    invalid = "invalid"  # 200, JSON our models/validation reject (a broken framework…)
    kill = "kill"  # SIGKILL the client process (found from the TCP peer port)


# The mix used by ``fault_rate`` unless configured: transient faults the client retries.
DEFAULT_FAULT_MIX: dict[FaultKind, float] = {
    FaultKind.rate_limit: 0.4,
    FaultKind.server_error: 0.4,
    FaultKind.malformed: 0.2,
}


class FaultRule(BaseModel):
    """A scripted fault: applies to requests matching every given condition, ``times`` times."""

    model_config = ConfigDict(extra="forbid")

    fault: FaultKind
    # json_schema.name of the request (IntentAnalysis, Framework, Tutorial, ResourceList, Quiz).
    match_schema: str | None = None
    # Case-insensitive substring of the prompt (e.g. a concept title).
    match_prompt: str | None = None
    # Let this many matching requests through before the rule starts firing.
    skip: int = Field(default=0, ge=0)
    # How many requests the rule fires on; None = every matching request.
    times: int | None = Field(default=1, ge=1)
    retry_after_s: float | None = Field(default=None, ge=0)


class FakeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # From a request's arrival to its answer (to the first token when streaming).
    latency_ms: float = Field(default=0.0, ge=0)
    jitter_ms: float = Field(default=0.0, ge=0)
    # Extra delay of completion_tokens / tokens_per_s, like a model producing tokens.
    tokens_per_s: float | None = Field(default=None, gt=0)
    fault_rate: float = Field(default=0.0, ge=0, le=1)
    fault_mix: dict[FaultKind, float] = Field(default_factory=lambda: dict(DEFAULT_FAULT_MIX))
    rules: list[FaultRule] = Field(default_factory=list)
    retry_after_s: float = Field(default=1.0, ge=0)
    # How long a "timeout" fault holds the request when the client does not hang up.
    timeout_s: float = Field(default=600.0, ge=0)
    seed: int = 0
    # Exact number of concepts in generated frameworks (bounded by the prompt's maximum).
    concepts: int | None = Field(default=None, ge=1, le=200)
    # Resolve the client's pid for every request (cached per connection); kill always does.
    track_client_pid: bool = True
    max_log: int = Field(default=100_000, ge=100)
    # Prompt caching as the real API reports it (usage.prompt_tokens_details.cached_tokens):
    # a prompt of at least cache_min_tokens whose leading messages were sent before gets
    # that prefix counted as cached, rounded down to cache_increment tokens.
    cache_min_tokens: int = Field(default=1024, ge=0)
    cache_increment: int = Field(default=128, ge=1)
    # Every tutorial ends with ``generate.HOSTILE_MARKDOWN`` (script, event handler,
    # javascript: link, raw HTML): what a UI must render inert.
    hostile_markdown: bool = False
