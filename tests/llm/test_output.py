"""Validation of the model's JSON answer: anything off is an error reason, never a clipped or guessed value."""

from __future__ import annotations

import pytest

from include.llm.output import parse_signal_output


@pytest.mark.parametrize(
    "content",
    [
        '{"action": "BUY", "confidence": 0.8, "rationale": "oversold"}',
        '```json\n{"action": "BUY", "confidence": 0.8, "rationale": "oversold"}\n```',
        '  {"action": "buy ", "confidence": 0.8, "rationale": "oversold", "extra": 1}  ',
    ],
)
def test_valid(content):
    output, error = parse_signal_output(content)
    assert error is None and (output.action, output.confidence, output.rationale) == ("BUY", 0.8, "oversold")


def test_integer_confidence_bounds_are_valid():
    assert parse_signal_output('{"action": "HOLD", "confidence": 0, "rationale": "x"}')[0].confidence == 0.0
    assert parse_signal_output('{"action": "SELL", "confidence": 1, "rationale": "x"}')[0].confidence == 1.0


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (None, "empty response content"),
        ("   ", "empty response content"),
        ("BUY it now {", "response is not valid JSON"),
        ('["BUY", 0.8]', "response JSON is a list, expected an object"),
        ('{"action": "BUY", "confidence": 1.7, "rationale": "x"}', "less than or equal to 1"),
        ('{"action": "BUY", "confidence": -0.1, "rationale": "x"}', "greater than or equal to 0"),
        ('{"action": "BUY", "confidence": "0.8", "rationale": "x"}', "confidence must be a number"),
        ('{"action": "BUY", "confidence": true, "rationale": "x"}', "confidence must be a number"),
        ('{"action": "BUY", "confidence": NaN, "rationale": "x"}', "confidence"),
        ('{"action": "BUY"}', "confidence: Field required; rationale: Field required"),
        ('{"action": "BUY_MORE", "confidence": 0.8, "rationale": "x"}', "action: Input should be 'BUY', 'SELL' or"),
        ('{"action": "BUY", "confidence": 0.8, "rationale": ""}', "rationale: String should have at least 1"),
    ],
)
def test_invalid(content, reason):
    output, error = parse_signal_output(content)
    assert output is None and reason in error
