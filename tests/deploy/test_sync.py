"""compose.yaml and the Procfiles must run the same things with the same settings:
Docker cannot run here, so the Procfile stack is what the tests exercise for both."""

from __future__ import annotations

import re

import pytest

from botmgr.settings import Settings
from tests.deploy.files import (
    COMPOSE_TLS_FILE,
    PROCFILES,
    ROOT,
    Command,
    commands_in,
    compose,
    compose_command,
    env_names,
    procfile,
    shell_words,
    template_placeholders,
)
from tests.harness.nginx import NGINX_PLACEHOLDERS, NGINX_TEMPLATE, TLS_PLACEHOLDERS, TLS_TEMPLATES

SETTING_NAMES = {f"BOTMGR_{name.upper()}" for name in Settings.model_fields}
STACK_KNOBS = {"HTTP_PORT", "API_PORT", "TGEMU_CONTROL_PORT", "TGEMU_DC_PORT_BASE", "VAR_DIR"}


def _compose_commands(profile_sandbox: bool) -> dict[str, Command]:
    found = {}
    for service in compose()["services"].values():
        if "sandbox" in service.get("profiles", []) and not profile_sandbox:
            continue
        command = compose_command(service)
        if command is not None:
            found[command.name] = command
    return found


def _procfile_commands(name: str) -> dict[str, Command]:
    return {c.name: c for line in procfile(name).values() for c in commands_in(line)}


@pytest.mark.parametrize("name", sorted(PROCFILES))
def test_procfile_runs_the_compose_commands(name: str) -> None:
    sandbox = name == "Procfile.sandbox"
    in_compose = _compose_commands(profile_sandbox=sandbox)
    in_procfile = _procfile_commands(name)
    assert set(in_procfile) == set(in_compose), (
        f"{name} runs {sorted(in_procfile)}, compose.yaml runs {sorted(in_compose)}"
    )
    assert {"botmgr migrate", "botmgr api", "botmgr worker", "botmgr beat"} <= set(in_compose)
    for command, ours in in_procfile.items():
        assert ours.flags() == in_compose[command].flags(), f"{command}: options differ"


@pytest.mark.parametrize("name", sorted(PROCFILES))
def test_procfile_starts_the_same_processes_as_compose(name: str) -> None:
    services = compose()["services"]
    sandbox = name == "Procfile.sandbox"
    expected = {
        s
        for s, spec in services.items()
        if s not in {"postgres", "redis", "migrate"}  # outside / folded into api
        and (sandbox or "sandbox" not in spec.get("profiles", []))
    }
    assert set(procfile(name)) == expected
    # Migrations before the API serves: one shell line, migrate && api.
    words = shell_words(procfile(name)["api"])
    assert words.index("migrate") < words.index("api")
    assert words[words.index("migrate") + 1] == "&&"


def test_compose_passes_every_setting_and_only_settings() -> None:
    anchor = compose()["x-botmgr-env"]
    assert set(anchor) == SETTING_NAMES
    for service in ("migrate", "api", "worker", "beat"):
        assert compose()["services"][service]["environment"] == anchor


def test_env_example_lists_every_setting() -> None:
    example = ROOT / ".env.example"
    # Every setting, and besides them only what compose itself needs from .env (the
    # optional knobs, PUBLISH_ADDR and the like, are there as comments).
    compose_secrets = {"POSTGRES_PASSWORD", "REDIS_PASSWORD"}
    assert env_names(example) == SETTING_NAMES | compose_secrets
    for name in compose_secrets:
        assert "${" + name + ":?" in (ROOT / "compose.yaml").read_text()


def test_sandbox_env_names_are_settings_or_stack_knobs() -> None:
    names = env_names(ROOT / ".env.sandbox")
    assert names - SETTING_NAMES <= STACK_KNOBS, names - SETTING_NAMES - STACK_KNOBS
    assert {"BOTMGR_TG_SERVER", "BOTMGR_TG_PUBLIC_KEY", "BOTMGR_DATABASE_URL"} <= names


@pytest.mark.parametrize("name", sorted(PROCFILES))
def test_procfile_names_only_known_variables(name: str) -> None:
    for line in procfile(name).values():
        used = set(re.findall(r"\$\{?([A-Z_][A-Z0-9_]*)", line))
        unknown = used - SETTING_NAMES - STACK_KNOBS - NGINX_PLACEHOLDERS - {"PATH", "K"}
        assert not unknown, f"{name}: unknown variables {unknown}"


def test_nginx_placeholders_agree_everywhere() -> None:
    assert template_placeholders(NGINX_TEMPLATE.read_text()) == NGINX_PLACEHOLDERS
    nginx = compose()["services"]["nginx"]
    assert set(nginx["environment"]) >= NGINX_PLACEHOLDERS
    pattern = re.compile(nginx["environment"]["NGINX_ENVSUBST_FILTER"].replace("$$", "$"))
    assert {n for n in NGINX_PLACEHOLDERS if pattern.search(n)} == NGINX_PLACEHOLDERS
    assert not pattern.search("NGINX_ENVSUBST_FILTER") and not pattern.search("HOSTNAME")
    for name in PROCFILES:
        words = shell_words(procfile(name)["nginx"])
        assert template_placeholders(words[words.index("envsubst") + 1]) == NGINX_PLACEHOLDERS


def test_tls_placeholders_agree_with_compose_tls() -> None:
    # nginx-tls/ uses exactly the TLS names; compose.tls.yaml mounts each file where the
    # image renders it as tls.d/... (where nginx.conf includes it) and passes every name.
    used = set().union(*(template_placeholders(p.read_text()) for p in TLS_TEMPLATES.values()))
    assert used == TLS_PLACEHOLDERS
    nginx = compose(COMPOSE_TLS_FILE)["services"]["nginx"]
    names = NGINX_PLACEHOLDERS | TLS_PLACEHOLDERS
    assert set(nginx["environment"]) >= TLS_PLACEHOLDERS
    pattern = re.compile(nginx["environment"]["NGINX_ENVSUBST_FILTER"].replace("$$", "$"))
    assert {n for n in names if pattern.search(n)} == names
    assert not pattern.search("NGINX_ENVSUBST_FILTER")
    mounted = {
        v.split(":")[1].removeprefix("/etc/nginx/templates/").removesuffix(".template")
        for v in nginx["volumes"]
        if isinstance(v, str)
    }
    assert mounted == set(TLS_TEMPLATES)
    for name in TLS_TEMPLATES:
        level = name.split("/")[1]  # http or server
        assert f"include tls.d/{level}/*.conf;" in NGINX_TEMPLATE.read_text()


def _nginx_seconds(directive: str) -> float:
    (value,) = re.findall(rf"^\s*{directive}\s+(\d+)s;", NGINX_TEMPLATE.read_text(), re.M)
    return float(value)


def test_nginx_outwaits_the_longest_prefer_wait() -> None:
    cap = Settings.model_fields["task_wait_cap"].default
    assert _nginx_seconds("proxy_read_timeout") > cap + 5
    assert _nginx_seconds("proxy_send_timeout") > cap + 5
