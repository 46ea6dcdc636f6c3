"""After a pull of a store's discounts, its reward mirrors are checked: one notice per store and unmirrored reward
(control item, EventBridge event, RewardsUnmirrored metric), raised once, cleared once the POS lists it."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Any

import boto3
import pytest
import stamina
from botocore.exceptions import ClientError

from functions.core import aws, layout, metrics
from functions.core.layout import Vendor
from functions.core.loyalty.catalogue import RewardCatalogue
from functions.core.loyalty.rewards import MirrorFinding, new_reward
from functions.core.models import Discount
from functions.core.notify import NotifyError
from functions.core.reward_mirrors import UNMIRRORED_REWARD_DETAIL_TYPE, UnmirroredNotices, stored_discounts
from functions.core.store import RecordStore
from simulators.base import utc_now
from tests.integration.pulls import PullWorld, simulator_class
from tests.integration.test_loyalty_batches import emitted

pytestmark = pytest.mark.moto_store

TENANT = "t1"
REWARD = "Birthday Treat"
COUPON_ID = 4799


@pytest.fixture(autouse=True)
def fast_pulls(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv(layout.ENV_SETTLE_SECONDS, "1")
    with stamina.set_testing(True, attempts=5):
        yield


@pytest.fixture
def world(resources: Any) -> Iterator[PullWorld]:
    simulator = simulator_class(Vendor.POSABIT)(seed=11, store_count=2, customers_per_store=3, sales_per_store=3)
    simulator.start()
    w = PullWorld(Vendor.POSABIT, simulator, resources, tenant=TENANT)
    for store in simulator.stores:
        w.register(store)
    RewardCatalogue(boto3.client("dynamodb"), resources.control_table).add(
        new_reward(tenant=TENANT, name=REWARD, kind="flat", value="3", points_cost=30, vendors=[Vendor.POSABIT])
    )
    yield w
    simulator.stop()


def subscribe(resources: Any) -> str:
    """An EventBridge rule on the default bus to a queue, as an operator subscribes to the notices."""
    events = boto3.client("events", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    queue = sqs.create_queue(QueueName=f"unmirrored-{resources.control_table}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    rule = f"unmirrored-{resources.control_table}"[:64]
    events.put_rule(Name=rule, EventPattern=json.dumps({"detail-type": [UNMIRRORED_REWARD_DETAIL_TYPE]}))
    events.put_targets(Rule=rule, Targets=[{"Id": "q", "Arn": arn}])
    return str(queue)


def announced(queue: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs", region_name="us-east-1")
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
    for m in messages:
        sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
    return [json.loads(m["Body"])["detail"] for m in messages]


def notices(resources: Any) -> list[str]:
    items = boto3.client("dynamodb").query(
        TableName=resources.control_table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": layout.control_unmirrored_pk(TENANT)}},
    )["Items"]
    return sorted(i["sk"]["S"] for i in items)


def lambda_output(world: PullWorld) -> str:
    """What the pull Lambdas wrote since the last call (their log lines and EMF metrics, as CloudWatch keeps them)."""
    log = world.runner.log
    assert isinstance(log, io.StringIO)
    out = log.getvalue()
    log.seek(0)
    log.truncate()
    return out


def list_coupon(world: PullWorld, store: str) -> None:
    """The store's POS now lists the reward's discount (changed a minute ago, so the next pull reads it)."""
    venue = world.simulator.venue(store)
    template = next(iter(venue.coupons.values()))
    venue.coupons[COUPON_ID] = {
        **template,
        "id": COUPON_ID,
        "name": REWARD,
        "updated_at": utc_now() - timedelta(seconds=60),
    }


def test_a_pull_raises_one_notice_per_store_once_and_clears_it_when_the_pos_lists_the_discount(
    world: PullWorld, resources: Any
) -> None:
    queue = subscribe(resources)
    first, second = world.simulator.stores
    # Given a reward neither store's POS lists, a pull raises one notice per store: item, event and metric
    jobs = world.tick()
    assert [j.ok for j in jobs] == [True, True]
    cred = {store: world.credentials[store] for store in (first, second)}
    assert notices(resources) == sorted(f"posabit#{cred[s]}#birthdaytreat" for s in (first, second))
    details = announced(queue)
    assert sorted((d["tenant"], d["credential_id"], d["reward"]) for d in details) == sorted(
        (TENANT, cred[s], REWARD) for s in (first, second)
    )
    assert sum(emitted(lambda_output(world), metrics.REWARDS_UNMIRRORED)) == 2
    # A second pull raises none
    world.tick()
    assert announced(queue) == []
    assert emitted(lambda_output(world), metrics.REWARDS_UNMIRRORED) == []
    assert len(notices(resources)) == 2
    # Once the first store's POS lists the discount, its notice clears; the other store's stands
    list_coupon(world, first)
    world.tick()
    assert notices(resources) == [f"posabit#{cred[second]}#birthdaytreat"]
    assert announced(queue) == []


def test_a_failing_eventbridge_leaves_the_pull_ok_is_logged_and_counted_and_the_next_pull_raises_it(
    world: PullWorld, resources: Any, caplog: pytest.LogCaptureFixture
) -> None:
    queue = subscribe(resources)

    def refused(**_: Any) -> Any:
        raise ClientError({"Error": {"Code": "InternalException", "Message": "down"}}, "PutEvents")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(aws.client("events"), "put_events", refused)
        jobs = world.tick()
    assert [j.ok for j in jobs] == [True, True]
    for store in world.simulator.stores:
        assert world.status(store)["last_outcome"] == "ok"
    out = lambda_output(world)
    failures = [r for r in caplog.records if "reward mirror check failed" in r.getMessage()]
    assert len(failures) == 2  # one per store
    assert all("unmirrored-reward event not accepted" in r.error for r in failures)  # type: ignore[attr-defined]
    assert sum(emitted(out, metrics.AWS_CALLS_FAILED)) >= 2
    assert emitted(out, metrics.REWARDS_UNMIRRORED) == []
    assert notices(resources) == []  # nothing recorded as announced
    assert announced(queue) == []
    # EventBridge is back: the next pull raises both notices
    world.tick()
    assert len(notices(resources)) == 2
    assert len(announced(queue)) == 2
    assert sum(emitted(lambda_output(world), metrics.REWARDS_UNMIRRORED)) == 2


def test_a_store_check_reads_that_stores_discounts_alone(resources: Any) -> None:
    """The check after a pull queries the index for the pulled store's discounts only (not every store's)."""
    records = RecordStore(boto3.client("dynamodb"), resources.records_table)
    at = "2026-05-01T12:00:00.000000+00:00"
    records.upsert_changed(
        [
            Discount(
                tenant=TENANT,
                vendor=Vendor.POSABIT,
                credential_id=cred,
                pos_id=pos_id,
                source_updated_at=at,
                name=name,
                active=True,
            )
            for cred, pos_id, name in (("p1", "1", "A"), ("p1", "2", "B"), ("p10", "1", "C"), ("p2", "1", "D"))
        ],
        "raw/test",
    )
    found = stored_discounts(records, TENANT, Vendor.POSABIT, credential_id="p1")
    assert {cred: sorted(d.name for d in found[cred]) for cred in found} == {"p1": ["A", "B"]}
    everyone = stored_discounts(records, TENANT, Vendor.POSABIT)
    assert sorted(everyone) == ["p1", "p10", "p2"]


class Counted:
    def __init__(self) -> None:
        self.values: list[dict[str, int]] = []

    def counts(self, values: Mapping[str, int]) -> None:
        self.values.append(dict(values))


class RefusesSecond:
    """EventBridge that takes the first event and then fails."""

    def __init__(self) -> None:
        self.calls = 0

    def put_events(self, **_: Any) -> dict[str, Any]:
        self.calls += 1
        if self.calls > 1:
            raise ClientError({"Error": {"Code": "InternalException", "Message": "down"}}, "PutEvents")
        return {"FailedEntryCount": 0, "Entries": [{"EventId": "1"}]}


def test_notices_announced_before_eventbridge_fails_are_counted_and_the_refused_one_is_retried(
    resources: Any,
) -> None:
    notices_store = UnmirroredNotices(boto3.client("dynamodb"), resources.control_table)
    findings = [MirrorFinding("missing", Vendor.POSABIT, "p1", name, None, "add it in the POS") for name in ("A", "B")]
    counted = Counted()
    with pytest.raises(NotifyError):
        notices_store.raise_notices(TENANT, findings, RefusesSecond(), counted, store=(Vendor.POSABIT, "p1"))
    assert counted.values == [{metrics.REWARDS_UNMIRRORED: 1}]  # the one announced is counted
    assert notices(resources) == ["posabit#p1#a"]  # the refused one is not recorded: the next check raises it
