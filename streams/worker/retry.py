"""Waiting before trying again: one backoff for every retry loop of the worker."""

from __future__ import annotations

import random


def backoff(attempt: int, cap: float, base: float = 0.2) -> float:
    """Full-jitter exponential backoff: processes retrying together spread out."""
    return random.uniform(0, min(cap, base * 2**attempt))
