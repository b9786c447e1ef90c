"""docs/grafana-dashboard.json is a dashboard Grafana imports, and every metric its panels
query is one a /metrics scrape announces (a renamed metric breaks this test, not the
operator's graphs)."""

from __future__ import annotations

import json
import re

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.harness.env import ROOT

DASHBOARD = ROOT / "docs" / "grafana-dashboard.json"
# A sample's name is its family's plus one of these (counters, histograms).
SUFFIXES = ("_total", "_bucket", "_sum", "_count", "_created")


def queried_names(dashboard: dict) -> set[str]:
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert exprs and all(e.strip() for e in exprs)
    return {name for e in exprs for name in re.findall(r"\bbotmgr_[a-z0-9_]+", e)}


async def test_every_queried_metric_exists_in_a_scrape(api: httpx.AsyncClient) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["title"] and dashboard["uid"] and dashboard["panels"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    response = await api.get("/metrics")
    assert response.status_code == 200, response.text
    announced = {
        f"{family.name}{suffix}"
        for family in text_string_to_metric_families(response.text)
        for suffix in ("", *SUFFIXES)
    }
    queried = queried_names(dashboard)
    assert len(queried) >= 12, queried
    assert queried <= announced, sorted(queried - announced)


async def test_metrics_needs_the_operators_credentials(api: httpx.AsyncClient) -> None:
    anonymous = await api.get("/metrics", auth=None)
    wrong = await api.get("/metrics", auth=("operator", "wrong-password"))
    assert anonymous.status_code == wrong.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Basic")
