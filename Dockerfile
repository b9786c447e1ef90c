# syntax=docker/dockerfile:1
# One image for every process of the stack: `botmgr api|worker|beat|migrate` and, in
# sandbox mode, `python -m tgemu`. compose.yaml picks the command per service.

# Pinned by digest (the multi-platform index of python:3.11-slim, 3.11.16 on Debian trixie):
# a rebuild gets the same base. To move to the tag's current image:
#   docker buildx imagetools inspect python:3.11-slim   (its "Digest:" line)
ARG PYTHON_IMAGE=python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7

# --- build: a virtualenv holding the dependencies, then the project itself ------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
WORKDIR /app

# Dependencies get their own layer, keyed on the lock alone: editing the code does not
# reinstall them. requirements/main.txt pins every version with its hashes
# (requirements/lock.sh regenerates it from pyproject.toml): pip refuses anything else.
COPY requirements/main.txt ./requirements/
RUN pip install --no-cache-dir --require-hashes -r requirements/main.txt

# Editable install: the code, migrations/ and templates/ stay together under /app, where
# `botmgr migrate` and the console find them, exactly as in a source checkout.
COPY . .
RUN pip install --no-cache-dir --no-deps -e .

# --- runtime: the virtualenv and the code, run by an unprivileged user -------------------
FROM ${PYTHON_IMAGE}
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN groupadd --system --gid 10001 botmgr \
    && useradd --system --uid 10001 --gid botmgr --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin botmgr
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
# The writable places: tgemu's key, state and seed in sandbox mode, and the metrics files
# the API and worker containers share (volumes, which start with this owner).
RUN mkdir -p /app/var /var/lib/botmgr/metrics \
    && chown botmgr:botmgr /app/var /var/lib/botmgr/metrics
USER 10001:10001

EXPOSE 8000
# slim has no curl: ask /healthz with the standard library. Worker and beat override
# this in compose.yaml (they serve no HTTP).
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
CMD ["botmgr", "api", "--host", "0.0.0.0", "--port", "8000"]
