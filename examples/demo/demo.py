"""The demo pipeline, end to end on the embedded defaults: ``bash scripts/demo.sh``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

import tdm

HERE = Path(__file__).parent


@tdm.transform
def line_totals(df: pd.DataFrame, *, quantity: str, price: str) -> pd.DataFrame:
    return df.assign(total=df[quantity] * df[price])


@tdm.transform
def drop_empty_orders(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["quantity"] > 0]


@tdm.transform
def by_customer(df: pd.DataFrame) -> pd.DataFrame:
    return df.groupby("customer", as_index=False)["total"].sum().sort_values("customer")


pipeline = (
    tdm.inputs.frame("orders")
    >> drop_empty_orders()
    >> line_totals(quantity="quantity", price="unit_price")
    >> by_customer()
)


def main() -> None:
    print(pipeline.to_text(), end="\n\n")
    report = tdm.run(pipeline, inputs={"orders": pd.read_csv(HERE / "orders.csv")})
    print(report.summary())
    print(report.output.to_string(index=False))
    raise SystemExit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
