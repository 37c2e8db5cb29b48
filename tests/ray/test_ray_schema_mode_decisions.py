"""The job's ``auto`` schema mode decision (`ModeDecisions`), without a cluster."""

from __future__ import annotations

import pytest

from openai_compat.ray import _schema_mode
from openai_compat.ray._schema_mode import ModeDecisions


def test_one_decider_the_others_wait_then_get_its_mode() -> None:
    decisions = ModeDecisions()
    assert decisions.ask("r", "a") == ("decide", None)
    assert decisions.ask("r", "a") == ("decide", None)  # asking again keeps the turn
    assert decisions.ask("r", "b") == ("wait", None)
    assert decisions.ask("other run", "b") == ("decide", None)
    decisions.report("r", "a", "json_object")
    assert decisions.ask("r", "b") == ("mode", "json_object")
    # The first decision stands: a late report does not change the run's mode.
    decisions.report("r", "b", "prompt")
    assert decisions.ask("r", "c") == ("mode", "json_object")


def test_a_decider_without_a_mode_gives_the_turn_back() -> None:
    decisions = ModeDecisions()
    assert decisions.ask("r", "a") == ("decide", None)
    decisions.report("r", "b", None)  # not the decider: nothing changes
    assert decisions.ask("r", "c") == ("wait", None)
    decisions.report("r", "a", None)
    assert decisions.ask("r", "c") == ("decide", None)


def test_a_silent_decider_loses_the_turn(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(_schema_mode.time, "monotonic", lambda: now[0])
    decisions = ModeDecisions()
    assert decisions.ask("r", "a") == ("decide", None)
    now[0] += _schema_mode.DECIDER_LEASE_S - 1
    assert decisions.ask("r", "b") == ("wait", None)
    now[0] += 2
    assert decisions.ask("r", "b") == ("decide", None)
