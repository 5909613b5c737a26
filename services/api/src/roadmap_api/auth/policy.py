"""Password policy (NIST SP 800-63B style: length over composition rules, no obvious picks)."""

from __future__ import annotations

MIN_LENGTH = 12
MAX_LENGTH = 128
MIN_DISTINCT = 5

# Obvious picks that pass the length rule; a short list, not a breach corpus.
COMMON = frozenset(
    {
        "password1234",
        "password12345",
        "password123456",
        "passwordpassword",
        "123456789012",
        "1234567890123",
        "12345678901234",
        "qwertyuiopasdf",
        "qwertyuiop123",
        "qwerty123456",
        "iloveyou1234",
        "letmein12345",
        "administrator",
        "welcome12345",
        "changeme1234",
        "abcdefghijkl",
        "abc123456789",
        "roadmapagent",
        "roadmap-agent",
    }
)


def password_problems(password: str, *, email: str | None = None) -> list[str]:
    """Human-readable reasons the password is refused (empty when it is acceptable)."""
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append(f"must be at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        problems.append(f"must be at most {MAX_LENGTH} characters")
    if len(set(password)) < MIN_DISTINCT:
        problems.append(f"must use at least {MIN_DISTINCT} different characters")
    lowered = password.lower()
    if lowered in COMMON:
        problems.append("is too common")
    if email:
        address = email.strip().lower()
        local = address.partition("@")[0]
        if lowered in (address, local) or (len(local) >= 4 and local in lowered):
            problems.append("must not contain the email address")
    return problems
