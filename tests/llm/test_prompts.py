"""Prompt templates: versioned by id + content hash, rendered with every placeholder, optional image part."""

from __future__ import annotations

import base64
import json

import pytest

from include.llm import prompts
from include.llm.prompts import PromptError, available_prompts, load_prompt

VALUES = {"symbol": "TSLA", "session_date": "2025-03-04", "price_reference": 251.5, "price_source": "snapshot_last",
          "features_json": json.dumps({"rsi_14": 22.5}), "previous_json": "{}"}  # fmt: skip


def test_shipped_prompt_renders_completely():
    template = load_prompt("signal_v1")
    assert "signal_v1" in available_prompts()
    assert template.version.startswith("signal_v1@") and len(template.version) == len("signal_v1@") + 12
    system, user = template.render(VALUES)
    assert system["role"] == "system" and '"action"' in system["content"]
    assert "Symbol: TSLA" in user["content"] and '{"rsi_14": 22.5}' in user["content"]
    assert "$" not in system["content"] + user["content"]


def test_image_part_is_base64_png():
    png = b"\x89PNG\r\n\x1a\nfake"
    _, user = load_prompt("signal_v1").render(VALUES, image_png=png)
    text, image = user["content"]
    assert text["type"] == "text" and "Symbol: TSLA" in text["text"]
    assert image["image_url"]["url"] == "data:image/png;base64," + base64.b64encode(png).decode()


def test_missing_value_and_unknown_prompt():
    with pytest.raises(PromptError, match=r"needs a value for \$features_json"):
        load_prompt("signal_v1").render({k: v for k, v in VALUES.items() if k != "features_json"})
    with pytest.raises(PromptError, match="unknown prompt 'nope'; available: signal_v1"):
        load_prompt("nope")
    with pytest.raises(PromptError, match="invalid prompt id"):
        load_prompt("../secrets")


def test_version_follows_the_content(tmp_path, monkeypatch):
    monkeypatch.setattr(prompts, "PROMPTS_DIR", tmp_path)
    path = tmp_path / "p1.md"
    path.write_text("---\nid: p1\n---\n## system\nS\n## user\nU $symbol\n")
    first = load_prompt("p1")
    assert (first.system, first.user) == ("S", "U $symbol")
    path.write_text("---\nid: p1\n---\n## system\nS2\n## user\nU $symbol\n")
    second = load_prompt("p1")
    assert second.version != first.version and second.system == "S2"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("## system\nS\n## user\nU\n", "missing front matter"),
        ("---\nid: p2\n## system\nS\n", "not closed"),
        ("---\nid: other\n---\n## system\nS\n## user\nU\n", "must equal the file name"),
        ("---\nid: p2\n---\n## system\nS\n", "exactly one '## system' and one '## user'"),
    ],
)
def test_malformed_templates(tmp_path, monkeypatch, text, error):
    monkeypatch.setattr(prompts, "PROMPTS_DIR", tmp_path)
    (tmp_path / "p2.md").write_text(text)
    with pytest.raises(PromptError, match=error):
        load_prompt("p2")
