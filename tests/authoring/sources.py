"""A custom source and sink as a user would write them (importable, for YAML and pickling)."""

from __future__ import annotations

import sqlite3

import httpx
import pandas as pd

import tdm


@tdm.source
def api_items(*, base_url: str, page_size: int = 50, secrets: tdm.Secrets) -> pd.DataFrame:
    """Every item of the fake API, page by page, with a bearer token from the secret."""
    rows: list[dict[str, object]] = []
    page = 1
    headers = {"Authorization": f"Bearer {secrets['token']}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=10) as client:
        while True:
            body = client.get("/items/page", params={"page": page, "per_page": page_size}).json()
            rows.extend(body["data"])
            if body["next_page"] is None:
                return pd.DataFrame(rows)
            page = body["next_page"]


@tdm.source
def stamped(*, n: int, ctx: tdm.RunContext) -> list[dict[str, object]]:
    return [{"i": i, "run": ctx.run_id} for i in range(n)]


@tdm.sink
def to_sqlite(df: pd.DataFrame, *, path: str, table: str) -> None:
    """Replace ``table`` in the SQLite file at ``path`` with the frame, in one transaction."""
    with sqlite3.connect(path) as db:
        df.to_sql(table, db, if_exists="replace", index=False)


@tdm.source
def echo_secret(*, base_url: str, secrets: tdm.Secrets) -> pd.DataFrame:
    """Fails with the server's answer, which echoes the key (a leak a careless step makes)."""
    answer = httpx.get(f"{base_url}/echo", params={"key": secrets["token"]}).json()
    raise RuntimeError(f"server said {answer['query']}")
