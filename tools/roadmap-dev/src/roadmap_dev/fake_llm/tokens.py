"""Token counts for ``usage``: ~4 ASCII characters per token, one per other character.

Close enough to real tokenizers for cost and rate-limit arithmetic, and free of the
``openai`` import (the fake starts faster without it).
"""

from __future__ import annotations

import math


def count_tokens(text: str) -> int:
    ascii_chars = sum(1 for ch in text if ch < "\x80")
    return math.ceil(ascii_chars / 4) + (len(text) - ascii_chars)
