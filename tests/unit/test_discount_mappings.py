"""The POS discounts a sale carries, as each vendor mapping reads them: each applied discount once."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from functions.core.layout import Stream
from functions.core.models import AppliedDiscount, Sale
from functions.pull_flourish import mapping as flourish
from functions.pull_posabit import mapping as posabit
from functions.pull_thsuite import mapping as thsuite
from tests.unit import test_flourish_mapping as flourish_tests
from tests.unit import test_posabit_mapping as posabit_tests
from tests.unit import test_thsuite_mapping as thsuite_tests

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def test_posabit_coupons_of_the_discount_list_are_the_sale_discounts_each_once() -> None:
    item = copy.deepcopy(
        next(i for i in posabit_tests.page_items("sales_histories_page.json", Stream.SALES) if i["id"] == 5001)
    )
    # the same coupon on a second line, and a coupon given by name alone
    item["items"][1]["discount_list"] = [{"coupon_id": 47370, "coupon_name": "B - Student 5% Off"}, "Birthday $5"]
    sale = posabit.map_record(Stream.SALES, item, posabit_tests.CTX)
    assert isinstance(sale, Sale)
    assert sale.discounts == (
        AppliedDiscount(pos_discount_id="47370", name="B - Student 5% Off"),
        AppliedDiscount(name="Birthday $5"),
    )


def test_flourish_applied_discounts_are_taken_once_however_many_lines_list_them() -> None:
    order: dict[str, Any] = copy.deepcopy(flourish_tests.ORDERS["700001"])
    happy_hour = order["order_lines"][0]["applied_discounts"][0]
    order["order_lines"][1]["applied_discounts"] = [{**happy_hour, "discount_value": 2.0}]
    sale = flourish.map_record(Stream.SALES, order, flourish_tests.CTX)
    assert isinstance(sale, Sale)
    assert sale.discounts == (AppliedDiscount(pos_discount_id="14", name="Happy Hour"),)
    # and the discount money is still taken once (the double-count quirk handling is unchanged)
    assert sale.discount_cents == 450


def test_thsuite_line_discounts_are_the_sale_discounts() -> None:
    receipt = copy.deepcopy(json.loads((FIXTURES / "thsuite" / "receipts_page.json").read_text())["data"][0])
    receipt["lines"][0]["discounts"] = [{"discount_id": 77, "name": " Loyalty $5 "}]
    receipt["lines"][1]["discounts"] = [{"discount_id": 77, "name": "Loyalty $5"}]
    store = thsuite.ThsuiteStore.model_validate(thsuite_tests.load("store_iana_bare.json"))
    sale = thsuite.map_record(Stream.SALES, receipt, thsuite.mapping_context(store, tenant="t1", credential_id="c1"))
    assert isinstance(sale, Sale)
    assert sale.discounts == (AppliedDiscount(pos_discount_id="77", name="Loyalty $5"),)
