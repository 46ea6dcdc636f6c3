"""The stream consumers' FilterCriteria and the filter-pattern matcher the local pump applies them with."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from functions.core.layout import RULE_FUNCTIONS, RecordKind
from functions.core.streams import (
    CONSUMERS,
    MAX_BATCHING_WINDOW_SECONDS,
    StreamConsumer,
    matches,
    read_batch,
    validate_pattern,
)

# Records table changes as Lambda delivers them (eventVersion 1.1, NEW_AND_OLD_IMAGES): RecordStore items
# written under moto (shopper insert, sale insert, product insert, loyalty balance insert, shopper edit, sale
# refund, product removal), read back from the moto stream.
EVENT = json.loads((Path(__file__).parents[1] / "fixtures" / "streams" / "records_stream_event.json").read_text())
RECORDS: list[dict[str, Any]] = EVENT["Records"]


def _kind(record: dict[str, Any]) -> str:
    image = record["dynamodb"].get("NewImage") or record["dynamodb"]["OldImage"]
    return str(image["kind"]["S"])


def _delivered(consumer: str) -> list[tuple[str, str]]:
    return [(r["eventName"], _kind(r)) for r in RECORDS if CONSUMERS[consumer].wants(r)]


def test_the_fixture_holds_every_kind_and_event_name() -> None:
    assert {(r["eventName"], _kind(r)) for r in RECORDS} >= {
        ("INSERT", "shopper"),
        ("MODIFY", "shopper"),
        ("INSERT", "sale"),
        ("MODIFY", "sale"),
        ("INSERT", "product"),
        ("INSERT", "loyalty_balance"),
        ("REMOVE", "product"),
    }


def test_personas_gets_inserted_and_modified_shoppers_only() -> None:
    assert _delivered("personas") == [("INSERT", "shopper"), ("MODIFY", "shopper")]


def test_enroll_gets_sales_and_loyalty_balances_only() -> None:
    assert _delivered("enroll") == [("INSERT", "sale"), ("INSERT", "loyalty_balance"), ("MODIFY", "sale")]


def test_no_consumer_gets_products_or_removals() -> None:
    for record in RECORDS:
        if _kind(record) == "product" or record["eventName"] == "REMOVE":
            assert not any(c.wants(record) for c in CONSUMERS.values()), record["eventName"]


def test_a_removed_shopper_reaches_no_one() -> None:
    # Given a shopper removal: it has only an OldImage
    removal = copy.deepcopy(RECORDS[0])
    removal["eventName"] = "REMOVE"
    removal["dynamodb"]["OldImage"] = removal["dynamodb"].pop("NewImage")

    assert not CONSUMERS["personas"].wants(removal)


def test_consumers_are_the_rule_functions_and_their_filters_are_lambda_filter_criteria() -> None:
    assert tuple(CONSUMERS) == RULE_FUNCTIONS
    personas = CONSUMERS["personas"].filter_criteria
    assert personas == {
        "Filters": [
            {
                "Pattern": json.dumps(
                    {"eventName": ["INSERT", "MODIFY"], "dynamodb": {"NewImage": {"kind": {"S": ["shopper"]}}}}
                )
            }
        ]
    }
    [enroll] = CONSUMERS["enroll"].filter_criteria["Filters"]
    assert json.loads(enroll["Pattern"])["dynamodb"]["NewImage"]["kind"]["S"] == [
        RecordKind.SALE.value,
        RecordKind.LOYALTY_BALANCE.value,
    ]


def test_mapping_settings_are_bounded_and_fresh() -> None:
    for consumer in CONSUMERS.values():
        assert consumer.bisect_batch_on_function_error is True
        assert 0 < consumer.max_retry_attempts <= 10
        assert consumer.max_record_age_seconds <= 24 * 3600, "beyond the stream's retention it means nothing"
        assert consumer.max_batching_window_seconds <= 60, "rule effects within 60 s of a page landing"
        assert consumer.function_response_types == ("ReportBatchItemFailures",)
        assert consumer.starting_position in {"TRIM_HORIZON", "LATEST"}
    assert MAX_BATCHING_WINDOW_SECONDS <= 60


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"batch_size": 0}, "batch size"),
        ({"max_batching_window_seconds": 300}, "batching window"),
        ({"max_record_age_seconds": 7 * 86400}, "record age"),
        ({"parallelization_factor": 11}, "parallelization"),
        ({"patterns": ()}, "at least one"),
        ({"patterns": ({"kind": "sale"},)}, "list of values"),
    ],
)
def test_a_consumer_with_settings_lambda_would_reject_is_refused(change: dict[str, Any], message: str) -> None:
    settings: dict[str, Any] = {"name": "x", "patterns": ({"eventName": ["INSERT"]},), **change}
    with pytest.raises(ValueError, match=message):
        StreamConsumer(**settings)


# --- the matcher -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "record", "expected"),
    [
        ({"a": ["x"]}, {"a": "x"}, True),
        ({"a": ["x"]}, {"a": "y"}, False),
        ({"a": ["x", "y"]}, {"a": "y"}, True),  # a list is OR
        ({"a": ["x"], "b": ["y"]}, {"a": "x", "b": "z"}, False),  # keys are AND
        ({"a": ["x"]}, {"b": "x"}, False),  # a named field must be there
        ({"a": ["x"]}, {"a": "x", "b": "anything"}, True),  # unnamed fields are ignored
        ({"a": {"b": ["x"]}}, {"a": {"b": "x"}}, True),
        ({"a": {"b": ["x"]}}, {"a": "x"}, False),  # nested pattern, flat value
        ({"a": ["x"]}, {"a": {"b": "x"}}, False),  # flat pattern, nested value
        ({"a": ["x"]}, {"a": ["y", "x"]}, True),  # a record array matches when any element does
        ({"a": [1]}, {"a": 1.0}, True),
        ({"a": [1]}, {"a": "1"}, False),
        ({"a": [True]}, {"a": 1}, False),
        ({"a": [None]}, {"a": None}, True),
        ({"a": [None]}, {}, False),
        ({"a": [{"prefix": "sh"}]}, {"a": "shopper"}, True),
        ({"a": [{"prefix": "sh"}]}, {"a": "sale"}, False),
        ({"a": [{"suffix": "balance"}]}, {"a": "loyalty_balance"}, True),
        ({"a": [{"exists": True}]}, {"a": "x"}, True),
        ({"a": [{"exists": True}]}, {}, False),
        ({"a": [{"exists": False}]}, {}, True),
        ({"a": [{"exists": False}]}, {"a": "x"}, False),
        ({"a": [{"anything-but": ["product"]}]}, {"a": "sale"}, True),
        ({"a": [{"anything-but": ["product"]}]}, {"a": "product"}, False),
        ({"a": [{"anything-but": "product"}]}, {}, False),  # anything-but needs the field
        ({"a": [{"numeric": [">", 0, "<=", 5]}]}, {"a": 5}, True),
        ({"a": [{"numeric": [">", 0, "<=", 5]}]}, {"a": 6}, False),
        ({"a": [{"numeric": [">", 0]}]}, {"a": "3"}, False),  # DynamoDB's {"N": "3"} is a string
    ],
)
def test_matcher_follows_lambda_filter_rules(pattern: dict[str, Any], record: dict[str, Any], expected: bool) -> None:
    validate_pattern(pattern)
    assert matches(pattern, record) is expected


@pytest.mark.parametrize(
    "pattern",
    [{}, {"a": "x"}, {"a": []}, {"a": [{"prefix": 1}]}, {"a": [{"wildcard": "*"}]}, {"a": [{"numeric": ["~", 1]}]}],
)
def test_invalid_patterns_are_rejected(pattern: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="filter pattern"):
        validate_pattern(pattern)


_kinds = st.sampled_from([k.value for k in RecordKind] + ["", "Shopper", "sale "])
_events = st.sampled_from(["INSERT", "MODIFY", "REMOVE"])


@given(kind=_kinds, event_name=_events)
def test_each_change_reaches_the_consumers_that_act_on_its_kind(kind: str, event_name: str) -> None:
    # Given any records table change
    image = {"kind": {"S": kind}, "pk": {"S": "t#posabit#c#x#1"}}
    dynamodb: dict[str, Any] = {"Keys": {"pk": image["pk"]}, "SequenceNumber": "1", "SizeBytes": 10}
    dynamodb["OldImage" if event_name == "REMOVE" else "NewImage"] = image
    record = {"eventName": event_name, "eventSource": "aws:dynamodb", "dynamodb": dynamodb}

    # Then exactly the consumers whose rule reads that kind get it, and never a removal
    changed = event_name != "REMOVE"
    assert CONSUMERS["personas"].wants(record) is (changed and kind == "shopper")
    assert CONSUMERS["enroll"].wants(record) is (changed and kind in {"sale", "loyalty_balance"})


# --- what a consumer reads of a batch (functions.core.streams.read_batch) ----------------------------------------


def _with_data(record: dict[str, Any], change: Any) -> dict[str, Any]:
    copied = copy.deepcopy(record)
    data = json.loads(copied["dynamodb"]["NewImage"]["data"]["S"])
    change(data)
    copied["dynamodb"]["NewImage"]["data"] = {"S": json.dumps(data)}
    return copied


def test_read_batch_gives_the_changes_of_its_kinds_in_stream_order() -> None:
    batch = read_batch(EVENT, {RecordKind.SALE, RecordKind.LOYALTY_BALANCE})
    assert [(c.change.kind.value, c.change.version) for c in batch.changes] == [
        ("sale", 1),
        ("loyalty_balance", 1),
        ("sale", 2),
    ]
    assert len(batch.failures) == 0 and batch.ignored == len(RECORDS) - 3
    assert batch.changes[0].key == RECORDS[1]["dynamodb"]["Keys"]["pk"]["S"]


def test_read_batch_accepts_fields_it_does_not_know_and_misses_optional_ones() -> None:
    shopper = RECORDS[0]
    newer = _with_data(shopper, lambda d: d.update(loyalty_tier="gold", consents={"sms": True}))
    older = _with_data(shopper, lambda d: [d.pop(k) for k in ("location_id", "phone_raw", "state", "pos_created_at")])
    batch = read_batch({"Records": [newer, older]}, {RecordKind.SHOPPER})
    assert len(batch.failures) == 0
    assert [c.change.record.pos_id for c in batch.changes] == ["c-1001", "c-1001"]
    assert batch.changes[1].change.record.location_id is None


def test_a_record_that_cannot_be_read_fails_and_so_do_later_ones_of_the_same_item() -> None:
    shopper = RECORDS[0]
    broken = _with_data(shopper, lambda d: d.pop("tenant"))
    later = copy.deepcopy(shopper)
    later["dynamodb"]["SequenceNumber"] = "1100000000017454423999"
    other = next(r for r in RECORDS if r["eventName"] == "MODIFY" and _kind(r) == "shopper")
    other = copy.deepcopy(other)
    other["dynamodb"]["Keys"]["pk"]["S"] += "-another"
    batch = read_batch({"Records": [broken, later, other]}, {RecordKind.SHOPPER})
    assert batch.failures.response() == {
        "batchItemFailures": [
            {"itemIdentifier": broken["dynamodb"]["SequenceNumber"]},
            {"itemIdentifier": later["dynamodb"]["SequenceNumber"]},
        ]
    }
    assert [c.item_id for c in batch.changes] == [other["dynamodb"]["SequenceNumber"]]
    # the reason names the field, never a value
    [reason] = [r for r in batch.failures.reasons() if "tenant" in r]
    assert "greenleaf" not in reason and "Ana" not in reason


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda image: image.pop("data"), id="no data at all"),
        pytest.param(lambda image: image.update(data={"B": "eyJ0ZW5hbnQiOiAidDEifQ=="}), id="data as binary"),
        pytest.param(lambda image: image.update(data={"N": "1"}), id="data as a number"),
    ],
)
def test_a_record_item_without_readable_record_json_fails_instead_of_being_skipped(damage: Any) -> None:
    # Given a shopper item whose record JSON is gone or of the wrong type, between two good records
    shopper = RECORDS[0]
    broken = copy.deepcopy(shopper)
    damage(broken["dynamodb"]["NewImage"])
    other = copy.deepcopy(next(r for r in RECORDS if r["eventName"] == "MODIFY" and _kind(r) == "shopper"))
    other["dynamodb"]["Keys"]["pk"]["S"] += "-another"
    # When the consumer reads the batch
    batch = read_batch({"Records": [broken, other]}, {RecordKind.SHOPPER})
    # Then the damaged one is reported (retried, then dead-lettered), not counted as "not a record"
    assert batch.failures.response() == {
        "batchItemFailures": [{"itemIdentifier": broken["dynamodb"]["SequenceNumber"]}]
    }
    assert batch.ignored == 0
    assert [c.item_id for c in batch.changes] == [other["dynamodb"]["SequenceNumber"]]
    [reason] = batch.failures.reasons()
    assert "holds no record JSON" in reason


@pytest.mark.parametrize("version", ["1E+2", "1.5", "", "two"])
def test_a_version_that_is_no_whole_number_fails_with_a_reason_that_says_so(version: str) -> None:
    broken = copy.deepcopy(RECORDS[0])
    broken["dynamodb"]["NewImage"]["version"] = {"N": version}
    _assert_version_fails(broken)


@pytest.mark.parametrize("version", [{"S": "2"}, {"B": "Mg=="}, {"NULL": True}, "2", 2])
def test_a_version_of_another_type_fails_rather_than_reading_as_zero(version: Any) -> None:
    broken = copy.deepcopy(RECORDS[0])
    broken["dynamodb"]["NewImage"]["version"] = version
    _assert_version_fails(broken)


def _assert_version_fails(broken: dict[str, Any]) -> None:
    batch = read_batch({"Records": [broken]}, {RecordKind.SHOPPER})
    assert batch.failures.response() == {
        "batchItemFailures": [{"itemIdentifier": broken["dynamodb"]["SequenceNumber"]}]
    }
    assert batch.failures.reasons() == {"the stream record's shopper version is not a whole number": 1}
