"""A run as the application stores it: options as given, read back as the run's RunSpec."""

from __future__ import annotations

import pytest

from openai_compat.app.runs.stored import BudgetFrom, StoredRun
from openai_compat.batch.scheduler import Rate
from openai_compat.errors import ConfigurationError

CONFIG = {
    "url": "http://127.0.0.1:9/v1/chat/completions",
    "request_format": '{"model": "m", "messages": [{"role": "user", "content": "{{body}}"}]}',
}


def test_a_row_written_before_reads_back_as_a_run_spec() -> None:
    # The shape every stored run has had: flat options, the input, the app's own fields.
    row = {
        "input": {"upload_id": "u1"},
        "mapping": None,
        "outputs": None,
        "key": "id",
        "concurrency": 4,
        "rate": "10/s",
        "prices": "input=1,output=2",
        "max_cost": 5.0,
        "max_tokens": None,
        "placeholders": {"body": "text"},
        "budget_from": {"cost": 1.5, "tokens": 30},
        "a_name_of_a_later_version": True,
    }
    stored = StoredRun.model_validate(row)
    spec = stored.run_spec(CONFIG)
    assert (spec.key, spec.concurrency, spec.rate) == ("id", 4, Rate(10, 1.0))
    assert spec.max_cost == 5.0 and spec.price_table is not None
    assert stored.budget_from == BudgetFrom(cost=1.5, tokens=30)
    # What is left of a budget replaces the budget; everything else stays.
    left = stored.run_spec(CONFIG, max_cost=3.5)
    assert left.max_cost == 3.5 and left.key == "id"


def test_it_is_stored_as_given_and_only_with_the_fields_it_has() -> None:
    stored = StoredRun(input={"upload_id": "u1"}, rate="10/s", prices={"input": 1, "output": 2})
    data = stored.to_json()
    assert data["rate"] == "10/s" and data["prices"] == {"input": 1, "output": 2}
    assert "database_url_encrypted" not in data and "budget_from" not in data
    assert StoredRun.model_validate(data) == stored


def test_options_that_no_longer_fit_the_connector_are_refused() -> None:
    # A mapping into an object the connector's request format now has as text.
    stored = StoredRun(
        input={"upload_id": "u1"},
        mapping=[{"name": "model.name", "value": "body", "value_type": "dynamic"}],
    )
    with pytest.raises(ConfigurationError) as caught:
        stored.run_spec(CONFIG)
    assert [p.field for p in caught.value.problems] == ["mapping[0].name"]
    assert "model is a string" in caught.value.reason
