"""An audit store filled by real ``tdm.run`` calls, for the run browser's tests and README shot.

Runs of ``orders-daily`` ("Orders daily"): successes with growing row counts and one schema
change, a failure on one of two parallel branches (threads executor: the branches overlap
in time; the failed branch's descendants are SKIPPED), a branch stopped by a guard, and a
pipeline whose names and error texts are HTML (``<script>``...).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pandas as pd

import tdm
from tdm.effects.state import StateStore
from tdm.transforms import concat, skip_if_empty

HOSTILE = '<script>alert("pwned")</script>'
HOSTILE_ERROR = "<img src=x onerror=alert(1)> broke"


@tdm.transform
def nap(df: pd.DataFrame, *, seconds: float, tag: str) -> pd.DataFrame:
    time.sleep(seconds)
    return df.assign(tag=tag)


@tdm.transform
def check_amounts(df: pd.DataFrame) -> pd.DataFrame:
    if (df["amount"] < 0).any():
        raise ValueError("negative amount in row 3: -5 (fix the export or filter it out)")
    return df


@tdm.transform
def add_tax(df: pd.DataFrame, *, rate: float) -> pd.DataFrame:
    return df.assign(tax=df["amount"] * rate)


@tdm.transform
def add_currency(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(currency="EUR")


@tdm.transform
def hostile_step(df: pd.DataFrame) -> pd.DataFrame:
    raise RuntimeError(HOSTILE_ERROR)


def orders_pipeline(*, currency: bool = False) -> tdm.Pipeline:
    """Two branches from one source, joined: ``eu`` and ``us`` run in parallel on threads;
    from day 3 the orders have one more column (a schema change)."""
    source = tdm.inputs.frame("orders")
    eu = (
        source
        >> nap(seconds=0.25, tag="eu").named("enrich_eu")
        >> check_amounts().named("check_eu")
    )
    us = (
        source
        >> nap(seconds=0.25, tag="us").named("enrich_us")
        >> add_tax(rate=0.2).named("tax_us")
    )
    merged = concat(eu, us) >> add_tax(rate=0.1).named("tax_all")
    if currency:
        merged = merged >> add_currency()
    return merged


@dataclass
class Filled:
    """What :func:`fill` recorded (run ids to look for)."""

    successes: list[str]
    failed: str
    skipped: str
    hostile: str
    pipeline_id: str = "orders-daily"
    pipeline_name: str = "Orders daily"


def _orders(n: int, *, bad: bool = False, channel: bool = False) -> pd.DataFrame:
    amounts = [float(10 * (i + 1)) for i in range(n)]
    if bad:
        amounts[2] = -5.0
    frame = pd.DataFrame({"id": range(n), "amount": amounts})
    return frame.assign(channel="web") if channel else frame


def fill(store: StateStore) -> Filled:
    runtime = tdm.Runtime(state=store)
    ids = {"pipeline_id": "orders-daily", "pipeline_name": "Orders daily"}
    successes = []
    for day in range(1, 5):
        report = tdm.run(
            orders_pipeline(),
            inputs={"orders": _orders(3 + day, channel=day >= 3)},
            runtime=runtime,
            executor="threads",
            params={"day": f"2026-11-0{day}", "api_token": "tok-never-shown-1234"},
            **ids,
        )
        assert report.ok, report.summary()
        successes.append(report.run_id)
    failed = tdm.run(
        orders_pipeline(currency=True),
        inputs={"orders": _orders(6, bad=True, channel=True)},
        runtime=runtime,
        executor="threads",
        params={"day": "2026-11-05"},
        **ids,
    )
    assert not failed.ok
    empty = pd.DataFrame({"id": [], "amount": []})
    skipped = tdm.run(
        tdm.inputs.frame("orders") >> skip_if_empty() >> add_tax(rate=0.1),
        inputs={"orders": empty},
        runtime=runtime,
        pipeline_id="orders-weekly",
        pipeline_name="Orders weekly",
    )
    hostile = tdm.run(
        tdm.inputs.frame("orders") >> hostile_step().named(HOSTILE),
        inputs={"orders": _orders(3)},
        runtime=runtime,
        pipeline_id="hostile",
        pipeline_name=HOSTILE,
    )
    assert not hostile.ok
    return Filled(successes, failed.run_id, skipped.run_id, hostile.run_id)
