"""API throughput and latency through nginx on loopback, as ratios to an anchor route.

    .venv/bin/python -m bench.api [--seconds 10] [--connections 16] [--api-workers N]
        [--rounds 3]

Needs wrk (Debian: apt-get install -y wrk) and nginx. The real app runs in uvicorn as
``botmgr api --workers`` runs it, plus ``GET /bench/bare`` (a route that does nothing:
the floor set by nginx + uvicorn + the load generator on this machine). The anchor is
``bench/api_anchor.py``: the same GET /bots/ page, byte for byte (checked before the
run), from a bare FastAPI route with an asyncpg pool and one query, in as many processes
as the app, behind its own nginx with the same configuration. nginx runs the project's
nginx.conf with one change: the per-client ``limit_req`` line is removed, since it caps a
client at 20 req/s by design and would measure only the limiter.

Measured in interleaved rounds (every case in turn, ``--rounds`` times, so slow drifts of
a shared machine's load reach each case alike), first with 1 app (and 1 anchor) process,
then with N (``--api-workers``, default: the CPU count): the anchor, GET /bench/bare, GET /bots/
(100 rows), GET /channels/ (100 rows), GET /channels/{id} (with binding, bot and stats),
POST /messages (enqueue only: no worker runs). req/s, p50, p99, and each endpoint's
ratio to the anchor and to the bare route with the same number of processes.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from bench.common import report
from botmgr.models import Binding, BindingStatus, Channel, ChannelStats
from tests.harness.db import fresh_database, insert_bot
from tests.harness.env import ROOT, scoped_env, settings_from
from tests.harness.processes import ApiProcess, free_port, wait_http

CHANNEL_TG_ID = 1_234_567_890
ANCHOR = "GET /bots/ anchor (asyncpg, 1 query)"


def bare_app() -> FastAPI:
    """The real app (settings from the environment) with one do-nothing route."""
    from botmgr.app import create_app

    app = create_app()

    @app.get("/bench/bare", include_in_schema=False)
    async def bare() -> dict[str, str]:
        return {"status": "ok"}

    return app


def _uvicorn(factory: str, port: int, loglevel: str, workers: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        factory,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--proxy-headers",
        "--forwarded-allow-ips",
        "*",
        "--log-level",
        loglevel.lower(),
    ]


class BareApi(ApiProcess):
    """uvicorn as ``botmgr api --workers N`` runs it, serving ``bare_app``."""

    def __init__(self, env: dict[str, str], log_path: Path, workers: int) -> None:
        self.workers = workers
        # As botmgr api tells its processes: each sizes its part of the pool by N.
        super().__init__({**env, "BOTMGR_API_WORKERS": str(workers)}, log_path, "WARNING")

    def command(self, loglevel: str) -> list[str]:
        return _uvicorn("bench.api:bare_app", self.port, loglevel, self.workers)


def start_nginx(workdir: Path, upstream_port: int) -> tuple[subprocess.Popen[bytes], int]:
    workdir.mkdir(parents=True)
    port = free_port()
    conf = (ROOT / "nginx.conf").read_text()
    conf = conf.replace("${NGINX_LISTEN}", f"127.0.0.1:{port}")
    conf = conf.replace("${NGINX_UPSTREAM}", f"127.0.0.1:{upstream_port}")
    conf, removed = re.subn(r"^\s*limit_req zone=per_client.*;\n", "", conf, flags=re.M)
    assert removed == 1, "nginx.conf changed: adapt the benchmark"
    (workdir / "nginx.conf").write_text(conf)
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    with (workdir / "nginx.log").open("ab") as log:
        process = subprocess.Popen(
            [nginx, "-e", "stderr", "-p", f"{workdir}/", "-c", "nginx.conf", "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    time.sleep(0.5)
    if process.poll() is not None:
        raise RuntimeError((workdir / "nginx.log").read_text())
    return process, port


async def seed(env: dict[str, str]) -> None:
    """100 bots (the GET /bots/ page) and 100 channels (the GET /channels/ page), each
    bound to one bot, round robin, with a stats row; CHANNEL_TG_ID is the first."""
    engine = create_async_engine(env["BOTMGR_DATABASE_URL"])
    settings = settings_from(env)
    async with AsyncSession(engine, expire_on_commit=False) as session:
        bots = [await insert_bot(session, settings) for _ in range(100)]
        for i in range(100):
            channel = Channel(
                tg_id=CHANNEL_TG_ID + i,
                title=f"Bench {i}",
                username=f"bench_channel_{i}",
                reference=f"@bench_channel_{i}",
            )
            session.add(channel)
            await session.flush()
            session.add(
                Binding(bot_id=bots[i].id, channel_id=channel.id, status=BindingStatus.active)
            )
            session.add(ChannelStats(channel_id=channel.id, day=date.today(), posts=3, views=120))
        await session.commit()
    await engine.dispose()


def wrk(
    url: str,
    auth: str,
    seconds: int,
    connections: int,
    body: Any = None,
    workdir: Path | None = None,
) -> dict[str, float]:
    args = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "-H",
        f"Authorization: Basic {auth}",
    ]
    if body is not None:
        assert workdir is not None
        script = workdir / "post.lua"
        script.write_text(
            'wrk.method = "POST"\nwrk.headers["Content-Type"] = '
            f'"application/json"\nwrk.body = {json.dumps(json.dumps(body))}\n'
        )
        args += ["-s", str(script)]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1]),  # type: ignore[index]
        "p50": _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M)[1]),  # type: ignore[index]
        "p99": _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M)[1]),  # type: ignore[index]
        "requests": int(re.search(r"(\d+) requests in", out)[1]),  # type: ignore[index]
        "non_2xx": int(bad[1]) if bad else 0,
        "socket_errors": errors[1] if errors else "",
    }


def combined(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Rounds of one case as one: the rate over all of them, the median p50 and the
    worst p99 of the rounds (percentiles of rounds do not add up exactly)."""
    requests = sum(r["requests"] for r in runs)
    seconds = sum(r["requests"] / r["rps"] for r in runs if r["rps"])
    return {
        "rps": requests / seconds if seconds else 0.0,
        "p50": statistics.median(r["p50"] for r in runs),
        "p99": max(r["p99"] for r in runs),
        "requests": requests,
        "non_2xx": sum(r["non_2xx"] for r in runs),
        "socket_errors": "; ".join(r["socket_errors"] for r in runs if r["socket_errors"]),
    }


def _ms(value: str) -> float:
    for unit, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0), ("m", 60_000.0)):
        if value.endswith(unit):
            return float(value[: -len(unit)]) * factor
    raise ValueError(value)


class AnchorApi(ApiProcess):
    """uvicorn serving ``bench.api_anchor:anchor_app`` with ``workers`` processes."""

    def __init__(self, env: dict[str, str], log_path: Path, workers: int) -> None:
        self.workers = workers
        super().__init__(env, log_path, loglevel="WARNING")

    def command(self, loglevel: str) -> list[str]:
        return _uvicorn("bench.api_anchor:anchor_app", self.port, loglevel, self.workers)

    def wait_ready(self, timeout: float = 60) -> None:
        try:
            wait_http(f"{self.url}/bots/", (401,), self.process, timeout)  # up, auth on
        except RuntimeError as exc:
            raise RuntimeError(f"anchor did not start ({exc}):\n{self.log()[-3000:]}") from None


def same_page(app_url: str, anchor_url: str, auth: str) -> int:
    """The anchor must send the app's bytes, or the ratio compares different work."""
    headers = {"Authorization": f"Basic {auth}"}
    ours = httpx.get(f"{app_url}/bots/", headers=headers, timeout=10)
    theirs = httpx.get(f"{anchor_url}/bots/", headers=headers, timeout=10)
    assert ours.status_code == theirs.status_code == 200, (ours.text, theirs.text)
    assert len(ours.json()["data"]) == 100
    assert ours.content == theirs.content, "the anchor's page differs from GET /bots/"
    return len(ours.content)


def measure(
    env: dict[str, str], workdir: Path, workers: int, args: argparse.Namespace
) -> dict[str, dict[str, float]]:
    """Every case against ``workers`` app processes and ``workers`` anchor processes."""
    api = BareApi(env, workdir / f"api-{workers}.log", workers=workers)
    anchor = AnchorApi(env, workdir / f"anchor-{workers}.log", workers)
    nginxes: list[subprocess.Popen[bytes]] = []
    try:
        api.wait_ready()
        anchor.wait_ready()
        app_nginx, port = start_nginx(workdir / f"nginx-app-{workers}", api.port)
        nginxes.append(app_nginx)
        anchor_nginx, anchor_port = start_nginx(workdir / f"nginx-anchor-{workers}", anchor.port)
        nginxes.append(anchor_nginx)
        base, anchor_base = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{anchor_port}"
        auth = base64.b64encode(":".join(api.auth).encode()).decode()
        size = same_page(base, anchor_base, auth)
        print(f"{workers} process(es): GET /bots/ and the anchor send the same {size:,} bytes")
        cases = [
            (ANCHOR, anchor_base + "/bots/", None),
            ("GET /bench/bare", base + "/bench/bare", None),
            ("GET /bots/ (100 rows)", base + "/bots/", None),
            ("GET /channels/ (100 rows)", base + "/channels/", None),
            ("GET /channels/{id}", f"{base}/channels/{CHANNEL_TG_ID}", None),
            (
                "POST /messages (enqueue)",
                base + "/messages",
                {"channel_id": CHANNEL_TG_ID, "message": "**bench** post"},
            ),
        ]
        # Rounds, each case in turn: on a machine others load too, the load drifts over
        # a run, and interleaving lets every case meet the same drift as the anchor.
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in cases}
        for _ in range(args.rounds):
            for name, url, body in cases:
                seconds = max(1, round(args.seconds / args.rounds))
                runs[name].append(wrk(url, auth, seconds, args.connections, body, workdir))
        return {name: combined(found) for name, found in runs.items()}
    finally:
        for nginx in nginxes:
            nginx.terminate()
            nginx.wait(timeout=10)
        anchor.stop()
        api.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--rounds", type=int, default=3, help="split each endpoint's seconds into rounds"
    )
    parser.add_argument(
        "--api-workers",
        type=int,
        default=os.cpu_count() or 1,
        help="also measure with N app and N anchor processes (default: the CPU count; "
        "1 measures one process only)",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install -y wrk")

    workdir = Path(tempfile.mkdtemp(prefix="botmgr-bench-api-"))
    counts = sorted({1, max(1, args.api_workers)})
    results: dict[int, dict[str, dict[str, float]]] = {}
    with fresh_database() as url, scoped_env(url, BOTMGR_DEV="1") as env:
        asyncio.run(seed(env))
        for workers in counts:
            results[workers] = measure(env, workdir, workers, args)
    rows = []
    for workers, by_case in results.items():
        anchor, bare = by_case[ANCHOR], by_case["GET /bench/bare"]
        rows += [
            [
                workers,
                name,
                f"{r['rps']:.0f}",
                f"{r['p50']:.1f}",
                f"{r['p99']:.1f}",
                f"{r['rps'] / anchor['rps']:.2f}",
                f"{r['rps'] / bare['rps']:.2f}",
                r["requests"],
                r["non_2xx"],
            ]
            for name, r in by_case.items()
        ]
    report(
        "API through nginx",
        {
            "connections": args.connections,
            "seconds per endpoint": f"{args.seconds} in {args.rounds} interleaved rounds",
            "anchor": "bench/api_anchor.py, as many processes as the app",
            "logs": str(workdir),
        },
        rows,
        [
            "processes",
            "endpoint",
            "req/s",
            "p50 ms",
            "p99 ms",
            "ratio to anchor",
            "ratio to bare",
            "requests",
            "non-2xx",
        ],
    )


if __name__ == "__main__":
    main()
