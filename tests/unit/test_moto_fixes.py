"""The local runtime's moto fixes: DynamoDB semantics kept (also checked against unpatched moto), version pinned."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from possync.local import moto_fixes
from tests.conftest import UNPATCHED_MOTO

# The semantic tests here also run against unpatched moto (make test); a patch must not change what they see.
pytestmark = pytest.mark.moto_store

TABLE = "fix-test"


@pytest.fixture
def ddb(moto_aws: None) -> Any:
    client = boto3.client("dynamodb", region_name="us-east-1")
    client.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    client.put_item(TableName=TABLE, Item={"pk": {"S": "a"}, "sk": {"S": "1"}, "n": {"N": "1"}})
    client.put_item(TableName=TABLE, Item={"pk": {"S": "b"}, "sk": {"S": "1"}, "n": {"N": "5"}})
    return client


def _items(ddb: Any) -> dict[tuple[str, str], str]:
    items = ddb.scan(TableName=TABLE)["Items"]
    return {(i["pk"]["S"], i["sk"]["S"]): i["n"]["N"] for i in items}


def _stream_length(ddb: Any) -> int:
    streams = boto3.client("dynamodbstreams", region_name="us-east-1")
    arn = ddb.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    return len(streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"])


def test_a_cancelled_transaction_restores_every_item_it_touched_and_emits_no_stream_record(ddb: Any) -> None:
    before, stream_before = _items(ddb), _stream_length(ddb)
    with pytest.raises(ClientError) as raised:
        ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": TABLE, "Item": {"pk": {"S": "c"}, "sk": {"S": "1"}, "n": {"N": "9"}}}},
                {
                    "Update": {
                        "TableName": TABLE,
                        "Key": {"pk": {"S": "a"}, "sk": {"S": "1"}},
                        "UpdateExpression": "SET n = :n",
                        "ExpressionAttributeValues": {":n": {"N": "2"}},
                    }
                },
                {"Delete": {"TableName": TABLE, "Key": {"pk": {"S": "b"}, "sk": {"S": "1"}}}},
                {
                    "ConditionCheck": {
                        "TableName": TABLE,
                        "Key": {"pk": {"S": "missing"}, "sk": {"S": "1"}},
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                },
            ]
        )
    assert raised.value.response["Error"]["Code"] == "TransactionCanceledException"
    reasons = [r["Code"] for r in raised.value.response["CancellationReasons"]]
    assert reasons == ["None", "None", "None", "ConditionalCheckFailed"]
    assert _items(ddb) == before
    assert _stream_length(ddb) == stream_before


def test_a_committed_transaction_applies_every_action(ddb: Any) -> None:
    ddb.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": TABLE, "Item": {"pk": {"S": "c"}, "sk": {"S": "1"}, "n": {"N": "9"}}}},
            {"Delete": {"TableName": TABLE, "Key": {"pk": {"S": "b"}, "sk": {"S": "1"}}}},
        ]
    )
    assert _items(ddb) == {("a", "1"): "1", ("c", "1"): "9"}


def _sort_keys_paged(ddb: Any, condition: str, values: dict[str, Any]) -> list[str]:
    """The sort keys a key query returns, read two items per page (so paging is exercised)."""
    seen: list[str] = []
    start: dict[str, Any] | None = None
    while True:
        page = ddb.query(
            TableName=TABLE,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=values,
            Limit=2,
            **({"ExclusiveStartKey": start} if start else {}),
        )
        seen += [item["sk"]["S"] for item in page["Items"]]
        start = page.get("LastEvaluatedKey")
        if not start:
            return seen


def test_a_key_query_reads_its_partition_in_order_with_paging(ddb: Any) -> None:
    for n in range(7):
        ddb.put_item(TableName=TABLE, Item={"pk": {"S": "p"}, "sk": {"S": f"{6 - n:02d}"}, "n": {"N": str(n)}})
    seen = _sort_keys_paged(ddb, "pk = :p AND sk >= :s", {":p": {"S": "p"}, ":s": {"S": "02"}})
    assert seen == ["02", "03", "04", "05", "06"]
    backwards = ddb.query(
        TableName=TABLE,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "p"}},
        ScanIndexForward=False,
    )
    assert [item["sk"]["S"] for item in backwards["Items"]] == ["06", "05", "04", "03", "02", "01", "00"]
    empty = ddb.query(TableName=TABLE, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "x"}})
    assert empty["Items"] == []


@pytest.mark.moto_patch
def test_a_begins_with_query_sizes_only_the_items_with_the_prefix(ddb: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.dynamodb.models.dynamo_type import Item

    for n in range(300):
        ddb.put_item(TableName=TABLE, Item={"pk": {"S": "q"}, "sk": {"S": f"LEDGER#{n:04d}"}, "n": {"N": str(n)}})
    for n in range(3):
        ddb.put_item(TableName=TABLE, Item={"pk": {"S": "q"}, "sk": {"S": f"VISIT#{n}"}, "n": {"N": str(n)}})
    sized = 0
    original = Item.size

    def counting(self: Any) -> int:
        nonlocal sized
        sized += 1
        return original(self)

    monkeypatch.setattr(Item, "size", counting)
    seen = _sort_keys_paged(ddb, "pk = :p AND begins_with(sk, :v)", {":p": {"S": "q"}, ":v": {"S": "VISIT#"}})

    assert seen == ["VISIT#0", "VISIT#1", "VISIT#2"]
    assert sized < 20  # moto alone sizes all 303 items of the partition on every page


# --- the pinned moto release -----------------------------------------------------------------------------------


def test_this_run_patches_moto_unless_it_is_the_unpatched_run() -> None:
    from moto.dynamodb.models.table import Table

    assert moto_fixes.is_installed() is not UNPATCHED_MOTO
    assert (Table.query.__module__ == moto_fixes.__name__) is not UNPATCHED_MOTO


def test_the_pin_is_the_moto_this_environment_installs() -> None:
    assert moto_fixes.installed_moto_version() == moto_fixes.MOTO_VERSION == "5.2.5"
    moto_fixes.check_moto_version()


@pytest.mark.parametrize("other", ["5.2.6", "5.1.0", "6.0.0"])
def test_another_moto_release_is_refused_with_what_to_do(other: str) -> None:
    with pytest.raises(moto_fixes.MotoVersionError) as refused:
        moto_fixes.check_moto_version(other)

    message = str(refused.value)
    assert f"moto {other} is installed" in message and "written for moto 5.2.5" in message
    assert "Re-check each patch" in message and "set MOTO_VERSION" in message


def test_install_refuses_to_patch_another_moto_release(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    before = (Table.query, Table.all_items, DynamoDBBackend.transact_write_items)
    monkeypatch.setattr(moto_fixes, "installed_moto_version", lambda: "5.3.0")
    monkeypatch.setattr(moto_fixes, "_installed", False)

    with pytest.raises(moto_fixes.MotoVersionError, match=r"moto 5\.3\.0 is installed"):
        moto_fixes.install()

    assert (Table.query, Table.all_items, DynamoDBBackend.transact_write_items) == before
    assert not moto_fixes.is_installed()


def test_a_missing_moto_is_refused_too() -> None:
    with pytest.raises(moto_fixes.MotoVersionError, match="moto is not installed"):
        moto_fixes.check_moto_version("")


@pytest.mark.moto_patch
@pytest.mark.usefixtures("moto_aws")
def test_two_conditional_puts_of_one_new_item_at_once_let_exactly_one_through(monkeypatch: pytest.MonkeyPatch) -> None:
    import contextlib
    import threading

    from moto.dynamodb.models.table import Table

    # Given two threads that each read the item as absent at the same moment (a barrier right after moto's read)
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    ddb.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    barrier = threading.Barrier(2)
    read = Table.get_item

    def get_item(self: Any, *args: Any, **kwargs: Any) -> Any:
        found = read(self, *args, **kwargs)
        with contextlib.suppress(threading.BrokenBarrierError):  # a held lock keeps the other thread out: no meeting
            barrier.wait(timeout=0.5)  # both threads past the read before either writes, if nothing holds them
        return found

    monkeypatch.setattr(Table, "get_item", get_item)
    outcomes: list[str] = []

    def put(writer: str) -> None:
        try:
            ddb.put_item(
                TableName="t",
                Item={"pk": {"S": "marker"}, "writer": {"S": writer}},
                ConditionExpression="attribute_not_exists(pk)",
            )
            outcomes.append("written")
        except ClientError as exc:
            outcomes.append(exc.response["Error"]["Code"])

    # When both put the same new item, conditionally, at once
    threads = [threading.Thread(target=put, args=(w,)) for w in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then, as in DynamoDB, one write succeeds and the other fails its condition
    assert sorted(outcomes) == ["ConditionalCheckFailedException", "written"]
