"""API throughput and latency through nginx on loopback, beside a bare endpoint.

    .venv/bin/python -m bench.api [--seconds 10] [--connections 16]

Needs wrk (Debian: apt-get install -y wrk) and nginx. One uvicorn process serves the
real app, as ``botmgr api`` does, plus ``GET /bench/bare`` (a route that does nothing:
the floor set by nginx + uvicorn + the load generator on this machine). nginx runs the
project's nginx.conf with one change: the per-client ``limit_req`` line is removed, since
it caps a client at 20 req/s by design and would measure only the limiter.

Measured, one after the other in the same run: GET /bench/bare, GET /bots/ (100 rows),
GET /channels/{id} (with binding, bot and stats), POST /messages (enqueue only: no
worker runs). req/s, p50, p99, and each ratio to the bare endpoint.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from bench.common import report
from botmgr.models import Binding, BindingStatus, Channel, ChannelStats
from tests.harness.db import fresh_database, insert_bot
from tests.harness.env import ROOT, scoped_env, settings_from
from tests.harness.processes import ApiProcess, free_port

CHANNEL_TG_ID = 1_234_567_890


def bare_app() -> FastAPI:
    """The real app (settings from the environment) with one do-nothing route."""
    from botmgr.app import create_app

    app = create_app()

    @app.get("/bench/bare", include_in_schema=False)
    async def bare() -> dict[str, str]:
        return {"status": "ok"}

    return app


class BareApi(ApiProcess):
    """uvicorn as ``botmgr api`` runs it, serving ``bare_app``."""

    def command(self, loglevel: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "bench.api:bare_app",
            "--port",
            str(self.port),
            "--proxy-headers",
            "--forwarded-allow-ips",
            "*",
            "--log-level",
            loglevel.lower(),
        ]


def start_nginx(workdir: Path, upstream_port: int) -> tuple[subprocess.Popen[bytes], int]:
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
    """100 bots (the GET /bots/ page) and one channel bound to the first, with stats."""
    engine = create_async_engine(env["BOTMGR_DATABASE_URL"])
    settings = settings_from(env)
    async with AsyncSession(engine, expire_on_commit=False) as session:
        bots = [await insert_bot(session, settings) for _ in range(100)]
        channel = Channel(
            tg_id=CHANNEL_TG_ID, title="Bench", username="bench_channel", reference="@bench_channel"
        )
        session.add(channel)
        await session.flush()
        session.add(Binding(bot_id=bots[0].id, channel_id=channel.id, status=BindingStatus.active))
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


def _ms(value: str) -> float:
    for unit, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0), ("m", 60_000.0)):
        if value.endswith(unit):
            return float(value[: -len(unit)]) * factor
    raise ValueError(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install -y wrk")

    workdir = Path(tempfile.mkdtemp(prefix="botmgr-bench-api-"))
    with fresh_database() as url, scoped_env(url, BOTMGR_DEV="1") as env:
        asyncio.run(seed(env))
        api = BareApi(env, workdir / "api.log")
        nginx: subprocess.Popen[bytes] | None = None
        try:
            api.wait_ready()
            nginx, port = start_nginx(workdir, api.port)
            base = f"http://127.0.0.1:{port}"
            auth = base64.b64encode(":".join(api.auth).encode()).decode()
            cases = [
                ("GET /bench/bare", "/bench/bare", None),
                ("GET /bots/ (100 rows)", "/bots/", None),
                ("GET /channels/{id}", f"/channels/{CHANNEL_TG_ID}", None),
                (
                    "POST /messages (enqueue)",
                    "/messages",
                    {"channel_id": CHANNEL_TG_ID, "message": "**bench** post"},
                ),
            ]
            results = {}
            for name, path, body in cases:
                results[name] = wrk(
                    base + path, auth, args.seconds, args.connections, body, workdir
                )
        finally:
            if nginx is not None:
                nginx.terminate()
                nginx.wait(timeout=10)
            api.stop()
    bare = results["GET /bench/bare"]
    rows = [
        [
            name,
            f"{r['rps']:.0f}",
            f"{r['p50']:.1f}",
            f"{r['p99']:.1f}",
            f"{r['rps'] / bare['rps']:.2f}",
            r["requests"],
            r["non_2xx"],
        ]
        for name, r in results.items()
    ]
    report(
        "API through nginx",
        {
            "connections": args.connections,
            "seconds per endpoint": args.seconds,
            "logs": str(workdir),
        },
        rows,
        ["endpoint", "req/s", "p50 ms", "p99 ms", "ratio to bare", "requests", "non-2xx"],
    )


if __name__ == "__main__":
    main()
