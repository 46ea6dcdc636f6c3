"""Rewards as pure rules: the catalogue's validation, how a reward is linked to a POS discount (its mirror), which
rewards a sale redeemed, and what a mirror check finds."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Literal

from functions.core.layout import Vendor
from functions.core.models import AppliedDiscount, Sale

RewardKind = Literal["flat", "percent"]
REWARD_KINDS: tuple[RewardKind, ...] = ("flat", "percent")
# Flourish links a reward by the POS's own discount id (created in Flourish first); every other POS by its name
# (created here first, then mirrored in the POS under the same name).
ID_LINKED: frozenset[Vendor] = frozenset({Vendor.FLOURISH})
MAX_NAME_LENGTH = 100
# A discount on a sale that is kept (at least in part) redeems its reward; a full refund or a cancelled or still
# pending order does not (a refund gives the points back).
REDEEMING_STATUSES = frozenset({"completed", "partially_refunded"})


class RewardError(ValueError):
    """A reward that cannot be stored as given; the message says what to do instead."""


def name_key(name: str) -> str:
    """A reward or POS discount name as mirrors are matched: case and spacing (anywhere in it) ignored, so
    "10% Off", "10 % off" and "10%OFF" are one name. Validation and the mirror check both use this one function."""
    return "".join(name.split()).casefold()


@dataclass(frozen=True)
class Reward:
    """A reward of a tenant's catalogue: what the POS gives (flat dollars or a percent) and its cost in points."""

    tenant: str
    name: str
    kind: RewardKind
    value: Decimal  # dollars for a flat reward, percent for a percent one
    points_cost: int
    vendors: tuple[Vendor, ...]
    flourish_discount_id: str | None = None
    created_at: str = ""

    @property
    def key(self) -> str:
        return name_key(self.name)

    def applies_to(self, vendor: Vendor) -> bool:
        return vendor in self.vendors

    def value_text(self) -> str:
        return f"${self.value:.2f}" if self.kind == "flat" else f"{self.value.normalize():f}%"

    def as_dict(self) -> dict[str, object]:
        return {
            "tenant": self.tenant,
            "name": self.name,
            "kind": self.kind,
            "value": str(self.value),
            "points_cost": self.points_cost,
            "vendors": [v.value for v in self.vendors],
            "flourish_discount_id": self.flourish_discount_id,
            "created_at": self.created_at,
        }


def new_reward(
    *,
    tenant: str,
    name: str,
    kind: str,
    value: str | Decimal,
    points_cost: int,
    vendors: Sequence[Vendor],
    flourish_discount_id: str | None = None,
    created_at: str = "",
) -> Reward:
    """A valid reward, or RewardError saying what is wrong and what to give instead."""
    clean = " ".join(name.split())
    if not clean:
        raise RewardError("a reward needs a name (the name its POS discount carries)")
    if len(clean) > MAX_NAME_LENGTH:
        raise RewardError(f"a reward name is at most {MAX_NAME_LENGTH} characters; shorten {clean[:20]!r}...")
    if kind not in REWARD_KINDS:
        raise RewardError(f"a reward is flat ($) or percent (%), not {kind!r}: give --flat or --percent")
    try:
        amount = Decimal(str(value).strip().lstrip("$").rstrip("%"))
    except InvalidOperation:
        raise RewardError(f"the reward's value {value!r} is not a number") from None
    if not amount.is_finite() or amount <= 0:
        raise RewardError("a reward's value must be more than 0")
    if kind == "percent" and amount > 100:
        raise RewardError(f"a percent reward is at most 100%, not {amount}%: give a percent from 0 to 100")
    if kind == "flat" and amount != amount.quantize(Decimal("0.01")):
        raise RewardError(f"a flat reward is dollars and cents: {amount} has more than two decimals")
    if points_cost < 0:
        raise RewardError(f"a reward's points cost cannot be negative ({points_cost}): give 0 or more points")
    if not vendors:
        raise RewardError("name the integrations the reward applies to (for example --vendor posabit)")
    discount_id = (flourish_discount_id or "").strip() or None
    if Vendor.FLOURISH in vendors and discount_id is None:
        raise RewardError(
            "Flourish links a reward by its POS discount id: create the discount in Flourish first, then give its id "
            "with --flourish-discount-id"
        )
    if discount_id is not None and Vendor.FLOURISH not in vendors:
        raise RewardError(
            "--flourish-discount-id is only for a reward that applies to flourish (add --vendor flourish)"
        )
    return Reward(
        tenant=tenant,
        name=clean,
        kind=kind,  # type: ignore[arg-type]  # checked against REWARD_KINDS above
        value=amount,
        points_cost=points_cost,
        vendors=tuple(dict.fromkeys(vendors)),
        flourish_discount_id=discount_id,
        created_at=created_at,
    )


def clash(reward: Reward, catalogue: Iterable[Reward]) -> RewardError | None:
    """A reward whose name equals another's but for case or spacing is the same discount in the POS: refused, as is
    a Flourish discount id another reward links already."""
    for other in catalogue:
        if other.key == reward.key:
            if other.name == reward.name:
                return RewardError(f"reward {reward.name!r} exists already: remove it first to change it")
            return RewardError(
                f"reward {reward.name!r} differs from reward {other.name!r} only by case or spacing, so a POS "
                "discount would match both: use the existing name or a different one"
            )
        if reward.flourish_discount_id and reward.flourish_discount_id == other.flourish_discount_id:
            return RewardError(
                f"Flourish discount {reward.flourish_discount_id} is linked to reward {other.name!r} already"
            )
    return None


# --- redemptions ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Redemption:
    """One reward redeemed on one sale: the reward (by name key), the POS discount that carried it (its id for an
    id-linked POS, else its name key) and the points it cost when it was first booked."""

    reward: str
    name: str
    pos_discount: str
    points: int


def discount_link(vendor: Vendor, discount: AppliedDiscount) -> str | None:
    """How a POS discount on a sale names its reward: the POS discount id (Flourish) or its name key."""
    if vendor in ID_LINKED:
        return discount.pos_discount_id or None
    return name_key(discount.name) if discount.name else None


class Catalogue:
    """A tenant's rewards, indexed the two ways POS discounts link to them."""

    def __init__(self, rewards: Iterable[Reward] = ()) -> None:
        self.rewards = tuple(rewards)
        self._by_name = {r.key: r for r in self.rewards}
        self._by_id = {r.flourish_discount_id: r for r in self.rewards if r.flourish_discount_id}

    def __len__(self) -> int:
        return len(self.rewards)

    def for_link(self, vendor: Vendor, link: str) -> Reward | None:
        reward = self._by_id.get(link) if vendor in ID_LINKED else self._by_name.get(link)
        return reward if reward is not None and reward.applies_to(vendor) else None


def redemptions_of(sale: Sale, catalogue: Catalogue, booked: Sequence[Redemption] = ()) -> tuple[Redemption, ...]:
    """The rewards a sale redeems: each mirrored discount on it once (however many lines carry it), while the sale
    is kept at least in part. A discount already booked on the sale keeps the reward and cost it was booked with
    (editing or removing the reward later changes no past redemption), and a reward redeems no sale ordered before
    it was created (a re-evaluation or a late version of an old sale never charges points for a coupon that was no
    reward then)."""
    if sale.status not in REDEEMING_STATUSES:
        return ()
    held = {r.pos_discount: r for r in booked}
    found: dict[str, Redemption] = {}
    for discount in sale.discounts:
        link = discount_link(sale.vendor, discount)
        if link is None or link in found:
            continue
        if link in held:
            found[link] = held[link]
            continue
        reward = catalogue.for_link(sale.vendor, link)
        if reward is not None and not (
            reward.created_at and sale.ordered_at < datetime.fromisoformat(reward.created_at)
        ):
            found[link] = Redemption(reward.key, reward.name, link, reward.points_cost)
    return tuple(found[k] for k in sorted(found))


# --- the mirror check ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PosDiscount:
    """A discount as a POS store lists it."""

    vendor: Vendor
    credential_id: str
    pos_id: str
    name: str
    active: bool = True


MirrorProblem = Literal["missing", "name_differs", "unknown_id", "inactive", "no_reward"]


@dataclass(frozen=True)
class MirrorFinding:
    problem: MirrorProblem
    vendor: Vendor
    credential_id: str
    reward: str | None  # the reward's name
    pos_discount: str | None  # the POS discount's name (and id, for an id-linked POS)
    advice: str

    @property
    def unmirrored(self) -> bool:
        """The reward cannot be redeemed at this store (what raises the store's notice)."""
        return self.problem in ("missing", "unknown_id", "inactive")


def check_mirrors(
    rewards: Iterable[Reward], vendor: Vendor, credential_id: str, discounts: Sequence[PosDiscount]
) -> list[MirrorFinding]:
    """One store's mirrors: each reward for this POS must have its discount there (Flourish: the discount id exists
    and is active; others: a discount of the same name, where a name differing only by case or spacing is
    reported so it can be made the same), and each POS discount should have a reward here."""
    findings: list[MirrorFinding] = []
    mine = [r for r in rewards if r.applies_to(vendor)]
    linked: set[str] = set()

    def finding(problem: MirrorProblem, reward: str | None, pos: str | None, advice: str) -> None:
        findings.append(MirrorFinding(problem, vendor, credential_id, reward, pos, advice))

    if vendor in ID_LINKED:
        by_id = {d.pos_id: d for d in discounts}
        for reward in mine:
            found = by_id.get(reward.flourish_discount_id or "")
            if found is None:
                finding(
                    "unknown_id",
                    reward.name,
                    reward.flourish_discount_id,
                    "no discount with this id in the POS: check the id in Flourish and add the reward again with it",
                )
                continue
            linked.add(found.pos_id)
            if not found.active:
                finding("inactive", reward.name, f"{found.name} ({found.pos_id})", "activate the discount in Flourish")
        for discount in discounts:
            if discount.pos_id not in linked and discount.active:
                finding("no_reward", None, f"{discount.name} ({discount.pos_id})", "add a reward with this discount id")
        return findings

    by_key: dict[str, list[PosDiscount]] = {}
    for discount in discounts:
        by_key.setdefault(name_key(discount.name), []).append(discount)
    for reward in mine:
        candidates = by_key.get(reward.key, [])
        if not candidates:
            finding("missing", reward.name, None, f"create a discount named exactly {reward.name!r} in the POS")
            continue
        linked.add(reward.key)
        exact = [d for d in candidates if d.name.strip() == reward.name]
        if not exact:
            finding(
                "name_differs",
                reward.name,
                candidates[0].name,
                f"rename the POS discount to exactly {reward.name!r} (names differ only by case or spacing)",
            )
        if not any(d.active for d in candidates):
            finding("inactive", reward.name, candidates[0].name, "activate the discount in the POS")
    for key, group in sorted(by_key.items()):
        if key not in linked and any(d.active for d in group):
            finding("no_reward", None, group[0].name, "add a reward of this name, or retire the POS discount")
    return findings


def overdrawn(balance_after: int, redeemed_now: Mapping[str, int]) -> bool:
    """A redemption that takes the balance below zero is kept (the POS gave the discount) and flagged."""
    return balance_after < 0 and any(points > 0 for points in redeemed_now.values())
