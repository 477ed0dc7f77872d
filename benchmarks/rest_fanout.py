"""REST fan-out: ``rest.fetch_each`` at concurrency 32 against the original tdm's sequential loop.

Run: ``python benchmarks/rest_fanout.py`` (``--rows 1000 --latency 0.02 --concurrency 32
--repeat 5 --baseline-repeat 3``; ``--quick`` for a short smoke run; ``--s1`` for the issue's
scenario: 2,505 rows, without the slow original loop).

A local HTTP server (a separate process, 127.0.0.1, asyncio, keep-alive) answers every request
after ``latency`` seconds with a small JSON body. In the same session, the same rows are fetched:

1. baseline: the original tdm README's "iterative read": for each row, ``requests.request("GET",
   url, headers=..., data={})`` (no session, like the original), ``json.loads``, a frame per
   response, appended to one frame. If ``requests`` is missing, an ``httpx.Client`` used
   sequentially stands in (the output says which).
2. tdm: ``inputs.frame("devices") >> rest.fetch_each(url, records=..., concurrency=32)`` run by
   ``tdm.run``, with JSON logs at INFO to ``os.devnull`` as the CLI configures them
   (``--no-logs``: logging not configured).
3. hand-written httpx: ``concurrency`` asyncio workers, each with its own ``httpx.AsyncClient``
   (one TLS context shared),
   ``json.loads`` per response, one frame at the end: what a user writes without tdm.
4. with ``--wires``: tdm again, its requests sent through httpx (``Runtime(http=
   httpx.AsyncHTTPTransport(limits=...))`` with a keep-alive connection per worker, tdm's wire
   when a transport is injected) instead of its default aiohttp session: the transport choice
   measured in the same session.

tdm and the baselines alternate, repetition by repetition. For each, the client's CPU time
per request (``time.process_time``; the server is another process) and the wall time against
the ideal are printed.

Prints medians, the speed-up (target >= 15x) and the ratio to the ideal
``rows x latency / concurrency`` (target <= 2x).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tdm
from tdm import rest


# ---- the server (runs in its own process: python rest_fanout.py --serve PORT LATENCY) -------
async def _serve(port: int, latency: float) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                path = head.split(b" ", 2)[1].decode()
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        await reader.readexactly(int(line.split(b":")[1]))
                await asyncio.sleep(latency)
                uuid = path.rstrip("/").split("/")[-2]
                body = json.dumps(
                    {
                        "SecurityInfo": [
                            {"Check": "encryption", "Status": {"Ok": True}, "Device": uuid}
                        ]
                    }
                ).encode()
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


# ---- the two clients ------------------------------------------------------------------------
def original_loop(base: str, devices: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The original README's loop, with pandas 2's concat in place of the removed append."""
    headers = {"aw-tenant-code": "SECRET_CODE", "Accept": "application/json"}
    try:
        import requests

        def get(url: str) -> str:
            return str(requests.request("GET", url, headers=headers, data={}).text)

        client = "requests.request (no session, as in the original)"
        close = None
    except ImportError:  # pragma: no cover - requests is usually installed
        import httpx

        session = httpx.Client()

        def get(url: str) -> str:
            return session.get(url, headers=headers).text

        client, close = "httpx.Client, sequential (requests is not installed)", session
    security_df = pd.DataFrame()
    for _, row in devices.iterrows():
        url = f"{base}/devices/{row['Uuid']}/security"
        data = json.loads(get(url))["SecurityInfo"]
        some_df = pd.json_normalize(data, sep="_")
        some_df["Uuid"] = row["Uuid"]
        security_df = pd.concat([security_df, some_df], sort=False)
    if close is not None:
        close.close()
    return security_df.reset_index(drop=True), client


def tdm_fanout(
    base: str, devices: pd.DataFrame, concurrency: int, runtime: tdm.Runtime | None = None
) -> pd.DataFrame:
    step = rest.fetch_each(
        base + "/devices/{Uuid}/security",
        records="SecurityInfo",
        concurrency=concurrency,
        include_parent=["Uuid"],
    )
    report = tdm.run(
        tdm.inputs.frame("devices") >> step, inputs={"devices": devices}, runtime=runtime
    )
    report.raise_for_status()
    return report.output


def httpx_fanout(base: str, devices: pd.DataFrame, concurrency: int) -> pd.DataFrame:
    """The hand-written baseline: one AsyncClient per worker (sharing one TLS context, which
    httpx would otherwise build per client at ~0.1 s each), results in input order."""
    import ssl

    import httpx

    tls = ssl.create_default_context()
    uuids = devices["Uuid"].tolist()
    results: list[list[dict[str, Any]]] = [[] for _ in uuids]
    headers = {"Accept": "application/json"}

    async def worker(start: int) -> None:
        async with httpx.AsyncClient(headers=headers, verify=tls) as client:
            for i in range(start, len(uuids), concurrency):
                response = await client.get(f"{base}/devices/{uuids[i]}/security")
                response.raise_for_status()
                results[i] = [
                    {**record, "Uuid": uuids[i]}
                    for record in json.loads(response.content)["SecurityInfo"]
                ]

    async def main() -> None:
        await asyncio.gather(*(worker(k) for k in range(concurrency)))

    asyncio.run(main())
    return pd.json_normalize([r for rows in results for r in rows], sep="_")


def _timed(fn: Any) -> tuple[float, float, Any]:
    """Wall and CPU seconds of ``fn()`` in this process, and its result."""
    cpu, wall = time.process_time(), time.perf_counter()
    result = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def _median_time(fn: Any, repeat: int) -> tuple[float, list[float], Any]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), times, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--baseline-repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="200 rows, fewer repetitions")
    parser.add_argument(
        "--s1", action="store_true", help="2,505 rows and no original loop (the issue's S1)"
    )
    parser.add_argument("--no-logs", action="store_true", help="leave logging unconfigured")
    parser.add_argument(
        "--wires", action="store_true", help="also time tdm sending through httpx's transport"
    )
    parser.add_argument("--serve", nargs=2, metavar=("PORT", "LATENCY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve(int(args.serve[0]), float(args.serve[1])))
        return
    if args.quick:
        args.rows, args.repeat, args.baseline_repeat = 200, 3, 1
    if args.s1:
        args.rows, args.baseline_repeat = 2505, 0
    if not args.no_logs:
        import os

        tdm.logging.configure("INFO", "json", open(os.devnull, "w"))  # noqa: SIM115

    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", "0", str(args.latency)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        base = f"http://127.0.0.1:{int(server.stdout.readline())}"
        devices = pd.DataFrame(
            {"Uuid": [f"dev-{i:05d}" for i in range(args.rows)], "SerialNumber": range(args.rows)}
        )
        clients: dict[str, Any] = {"tdm": tdm_fanout, "httpx": httpx_fanout}
        labels = {"tdm": "tdm rest.fetch_each", "httpx": "httpx by hand"}
        if args.wires:
            import httpx

            # a pool that keeps every worker's connection alive (httpx keeps 20 by default)
            pool = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=None)
            over_httpx = tdm.Runtime(http=httpx.AsyncHTTPTransport(limits=pool))
            clients["tdm/httpx"] = lambda *a: tdm_fanout(*a, runtime=over_httpx)
            labels["tdm/httpx"] = "tdm over httpx"
        for fn in clients.values():  # warm-up (imports, TLS context)
            fn(base, devices.head(50), args.concurrency)
        walls: dict[str, list[float]] = {name: [] for name in clients}
        cpus: dict[str, list[float]] = {name: [] for name in clients}
        frames: dict[str, pd.DataFrame] = {}
        for _ in range(args.repeat):  # interleaved
            for name, fn in clients.items():
                wall, cpu, frames[name] = _timed(lambda fn=fn: fn(base, devices, args.concurrency))
                walls[name].append(wall)
                cpus[name].append(cpu)
        for name in clients:
            pd.testing.assert_frame_equal(
                frames["tdm"].sort_index(axis=1),
                frames[name].sort_index(axis=1),
                check_dtype=False,
            )
        ideal = args.rows * args.latency / args.concurrency
        print(
            f"rows={args.rows} latency={args.latency * 1000:.0f} ms concurrency={args.concurrency}"
            f", logs {'off' if args.no_logs else 'JSON at INFO'}; medians of {args.repeat}"
        )
        for name, label in labels.items():
            wall, cpu = statistics.median(walls[name]), statistics.median(cpus[name])
            print(
                f"{label:<20} wall {wall:6.3f} s = {wall / ideal:4.2f}x ideal ({ideal:.3f} s);"
                f" client CPU {cpu / args.rows * 1e3:5.2f} ms/request;"
                f" runs {[round(t, 2) for t in walls[name]]}"
            )
        for other in [name for name in clients if name != "tdm"]:
            print(
                f"tdm / {labels[other]}: wall "
                f"{statistics.median(walls['tdm']) / statistics.median(walls[other]):.2f}x, CPU "
                f"{statistics.median(cpus['tdm']) / statistics.median(cpus[other]):.2f}x"
            )
        if args.baseline_repeat:
            fast = statistics.median(walls["tdm"])
            slow, slow_times, (slow_df, client) = _median_time(
                lambda: original_loop(base, devices), args.baseline_repeat
            )
            pd.testing.assert_frame_equal(
                frames["tdm"].sort_index(axis=1), slow_df.sort_index(axis=1), check_dtype=False
            )
            print(
                f"original loop ({client}): median {slow:.2f} s"
                f"  runs {[round(t, 2) for t in slow_times]}"
            )
            print(f"speed-up over the original: {slow / fast:.1f}x (target >= 15x)")
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
