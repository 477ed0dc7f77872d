"""The demo pipeline written in Python; equal (==) to the one in pipeline.yml.

Run it with ``python examples/demo/demo.py`` from the repository root.
"""

from __future__ import annotations

import tdm
from tdm import files
from tdm.transforms import (
    aggregate,
    append_date_column,
    assign,
    filter_rows,
    rename_columns,
    standardize_us_state,
)

pipeline = tdm.pipe(
    files.read("examples/demo/orders.csv", label="Read Orders"),
    standardize_us_state(column="state").named("Normalise States"),
    filter_rows("quantity > 0").named("Drop Empty Orders"),
    assign({"total": "quantity * unit_price"}).named("Line Totals"),
    aggregate(["state"], {"total": "sum", "order_id": "count"}).named("Totals by State"),
    rename_columns({"order_id": "orders"}).named("Tidy Names"),
    append_date_column("load_date").named("Load Date"),
    files.write("output/demo/totals_by_state.csv", label="Write Report", float_format="%.2f"),
)


def main() -> None:
    print(pipeline.to_text(), end="\n\n")
    report = tdm.run(pipeline, pipeline_id="orders-demo")
    print(report.summary())
    raise SystemExit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
