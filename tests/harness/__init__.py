"""The one test harness shared by every suite under tests/ and by bench/.

Each helper exists once, under a public name, so that a suite or a benchmark never reaches
into another suite's private code:

- ``env``: where PostgreSQL and Redis are, the service's BOTMGR_* environment, Settings.
- ``db``: throwaway migrated databases and rows written directly.
- ``processes``: ``botmgr`` worker / api / beat subprocesses and free ports.
- ``servers``: private redis-server and PostgreSQL instances a test may stop and start.
- ``tgemu``: a real tgemu process and a client for its control API.
- ``client``: the API app in-process behind an httpx client.
- ``flows``: the register → bind → post steps tests and benchmarks drive the API through.
- ``stack``: database, tgemu, workers and the API as real processes, together.

The pytest plugins in tests/fixtures/ wrap these helpers in fixtures.
"""
