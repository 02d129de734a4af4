"""The accepted-questions policy: documented defaults, the IBKR_ACCEPTED_QUESTIONS override, and the hook
handing it to the client."""

from __future__ import annotations

import pytest

from include.config.order_questions import ACCEPTED_QUESTIONS, DEFAULT_ACCEPTED_QUESTIONS, REFUSED_QUESTIONS
from include.settings import Settings, SettingsError
from tests.conftest import REPO


def test_defaults_are_documented_and_never_both_accepted_and_refused():
    assert DEFAULT_ACCEPTED_QUESTIONS == ("o163", "o354", "o383", "o451")
    assert not set(ACCEPTED_QUESTIONS) & set(REFUSED_QUESTIONS)
    doc = (REPO / "docs" / "order-questions.md").read_text()
    for message_id in (*ACCEPTED_QUESTIONS, *REFUSED_QUESTIONS):
        assert message_id in doc, message_id
    assert "o10151" in REFUSED_QUESTIONS  # a market order has no price cap: never confirmed by default


def test_settings_default_and_env_override():
    assert Settings().ibkr_accepted_questions == DEFAULT_ACCEPTED_QUESTIONS
    assert Settings.from_env({}).ibkr_accepted_questions == DEFAULT_ACCEPTED_QUESTIONS
    assert Settings.from_env({"IBKR_ACCEPTED_QUESTIONS": " "}).ibkr_accepted_questions == DEFAULT_ACCEPTED_QUESTIONS
    env = {"IBKR_ACCEPTED_QUESTIONS": "O163, o10151,,o163"}
    assert Settings.from_env(env).ibkr_accepted_questions == ("o163", "o10151")
    assert Settings.from_env({"IBKR_ACCEPTED_QUESTIONS": "none"}).ibkr_accepted_questions == ()
    with pytest.raises(SettingsError, match="IBKR_ACCEPTED_QUESTIONS: 'yes' is not an IBKR message id"):
        Settings.from_env({"IBKR_ACCEPTED_QUESTIONS": "o163,yes"})


def test_the_hook_gives_the_client_the_configured_policy(monkeypatch):
    from include.ibkr.hook import IBKRHook

    monkeypatch.setenv("IBKR_GATEWAY_URL", "http://127.0.0.1:9/v1/api")
    monkeypatch.setenv("IBKR_ACCEPTED_QUESTIONS", "o451")
    with IBKRHook().get_conn() as client:
        assert client.accepted_questions == frozenset({"o451"})
    monkeypatch.delenv("IBKR_ACCEPTED_QUESTIONS")
    with IBKRHook().get_conn() as client:
        assert client.accepted_questions == frozenset(DEFAULT_ACCEPTED_QUESTIONS)
