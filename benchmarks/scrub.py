"""Cost of scrubbing secrets from text: tdm's scrubber against the literal scrubber it replaced.

Run: ``python benchmarks/scrub.py`` (``--quick`` for fewer repetitions).

Twenty secret values (an API token, passwords with ``/``, ``+``, ``"`` and ``\\``, a 3-line PEM-like
key, ...) are registered with both. The baseline is what tdm did before: one alternation of the
values and their three percent-encoded forms, as plain literals, which misses JSON, repr, lower
case percent-encoding, Base64 and single lines. tdm's scrubber matches all of those.
Texts: 10,000 clean log lines (the common case), the same lines with a secret in 1 of 10, and one
100 kB response body. Prints the median of the repetitions and the ratio to the baseline.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, quote_plus

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tdm.effects.scrubbing import Scrubber

SECRETS = [
    "tok-3f9a0c7e2b1d4e5f8a6b",
    'p@ss/w0rd+with="quotes\\and\\slashes',
    "client-s3cret-77a1",
    "AKIAIOSFODNN7EXAMPLE",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "BEGIN-KEY-0123456789abcdef\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\nEND-KEY",
    *(f"service-{i}-secret-{i * 7919:06d}" for i in range(14)),
]


def literal_scrubber(values: list[str]) -> Callable[[str], str]:
    forms = {f for v in values for f in (v, quote(v, safe=""), quote(v), quote_plus(v))}
    rx = re.compile("|".join(map(re.escape, sorted(forms, key=len, reverse=True))))
    return lambda text: rx.sub("***", text)


def median_time(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    repeat = 3 if parser.parse_args().quick else 9
    scrubber = Scrubber()
    for value in SECRETS:
        scrubber.add(value)
    baseline = literal_scrubber(SECRETS)
    clean = [
        f"run {i:08d} node load_orders_{i % 17}: 1,234 rows in 0.{i % 1000:03d} s from "
        f"https://api.example.com/v2/orders?page={i}"
        for i in range(10_000)
    ]
    dirty = [
        line + (f" token={SECRETS[i % len(SECRETS)]}" if i % 10 == 0 else "")
        for i, line in enumerate(clean)
    ]
    body = ('{"id": 12345, "name": "widget", "tags": ["a", "b"], "price": 9.99}, ' * 1500)[
        :100_000
    ] + SECRETS[1]
    cases = {
        "10,000 clean log lines": lambda f: [f(t) for t in clean],
        "10,000 lines, 1 in 10 with a secret": lambda f: [f(t) for t in dirty],
        "one 100 kB body": lambda f: f(body),
    }
    print(f"{len(SECRETS)} secrets; median of {repeat} runs")
    for name, case in cases.items():
        old = median_time(lambda case=case: case(baseline), repeat)
        new = median_time(lambda case=case: case(scrubber.scrub), repeat)
        print(
            f"{name:40s} literal {old * 1000:8.1f} ms   tdm {new * 1000:8.1f} ms   {new / old:.2f}x"
        )


if __name__ == "__main__":
    main()
