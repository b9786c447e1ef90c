"""What an operator watches the service with: Prometheus metrics (``GET /metrics``,
processes.py for the multiprocess files, scrape.py for what a scrape reads) and
structured logs (logs.py)."""
