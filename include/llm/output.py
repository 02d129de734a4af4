"""Validation of the model's answer: one JSON object ``{"action", "confidence", "rationale"}``."""

from __future__ import annotations

import json
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

_FENCE_RE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL | re.IGNORECASE)


class LLMSignalOutput(BaseModel):
    """Extra keys are ignored (models add them); the three fields are strict: confidence outside 0..1 is
    invalid, not clipped, because a model that says 1.7 is not calibrated."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    action: Literal["BUY", "SELL", "HOLD"]
    confidence: float = Field(ge=0.0, le=1.0, strict=False)
    rationale: str = Field(min_length=1, max_length=4000)

    @field_validator("action", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("confidence", mode="before")
    @classmethod
    def _number(cls, value: object) -> object:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"confidence must be a number, got {value!r}")
        return value


def parse_signal_output(content: str | None) -> tuple[LLMSignalOutput | None, str | None]:
    """(output, None) when valid, else (None, reason). A ```json fence around the object is tolerated."""
    if content is None or not content.strip():
        return None, "empty response content"
    text = content.strip()
    fenced = _FENCE_RE.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        data = json.loads(text)
    except ValueError as exc:
        return None, f"response is not valid JSON ({exc.msg} at char {exc.pos}): {content[:200]!r}"
    if not isinstance(data, dict):
        return None, f"response JSON is a {type(data).__name__}, expected an object"
    try:
        return LLMSignalOutput.model_validate(data), None
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'output'}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors(include_url=False)
        )
        return None, f"response JSON failed validation: {problems}"
