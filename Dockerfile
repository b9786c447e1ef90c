# syntax=docker/dockerfile:1
# One image for every process of the stack: `botmgr api|worker|beat|migrate` and, in
# sandbox mode, `python -m tgemu`. compose.yaml picks the command per service.

ARG PYTHON_IMAGE=python:3.11-slim

# --- build: a virtualenv holding the dependencies, then the project itself ------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
WORKDIR /app

# Dependencies get their own layer, keyed on pyproject.toml alone: editing the code does
# not reinstall them. The list is read from pyproject so it is kept in one place.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt

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
# The one writable place: tgemu's key, state and seed in sandbox mode (a volume).
RUN mkdir -p /app/var && chown botmgr:botmgr /app/var
USER 10001:10001

EXPOSE 8000
# slim has no curl: ask /healthz with the standard library. Worker and beat override
# this in compose.yaml (they serve no HTTP).
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
CMD ["botmgr", "api", "--host", "0.0.0.0", "--port", "8000"]
