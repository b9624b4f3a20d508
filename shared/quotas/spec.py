"""`VERTEX_QUOTAS`: the project's Vertex AI budget per model, as `model=CALLS/SECONDS` pairs.

Parsed at start-up (settings validation), so a typo stops the function with one line naming the
variable instead of pacing a model nobody meant.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Quota", "parse_quotas"]

_NUMBER = r"\d+(?:\.\d+)?"
_PAIR = re.compile(rf"^(?P<model>[A-Za-z0-9][A-Za-z0-9._@-]{{0,127}})=(?P<calls>{_NUMBER})/(?P<seconds>{_NUMBER})$")
EXPECTED = ("model=CALLS/SECONDS pairs separated by commas, CALLS and SECONDS above 0"
            " (e.g. imagen-4.0-generate-001=60/60)")


@dataclass(frozen=True)
class Quota:
    """`calls` Vertex AI calls per `seconds` for one model, across every instance of every function."""

    calls: float
    seconds: float

    @property
    def spacing(self) -> float:
        """Seconds between two calls at the full rate."""
        return self.seconds / self.calls


def parse_quotas(value: str) -> dict[str, Quota]:
    """`a=60/60,b=10/60` -> {model: Quota}; ValueError (naming no value) on anything else."""
    quotas: dict[str, Quota] = {}
    for raw in value.split(","):
        match = _PAIR.match(raw.strip())
        if match is None:
            raise ValueError(f"must be {EXPECTED}")
        calls, seconds = float(match["calls"]), float(match["seconds"])
        if calls <= 0 or seconds <= 0 or seconds > 86_400:
            raise ValueError(f"must be {EXPECTED}")
        if match["model"] in quotas:
            raise ValueError("must name each model once")
        quotas[match["model"]] = Quota(calls, seconds)
    return quotas
