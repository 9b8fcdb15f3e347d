"""Discovery from fixture folders (tmp_path) and a controlled environment."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from console.discovery import discover, parse_dotenv, split_deployment

KEY = "local-team-proj|0123456789abcdef0123456789abcdef"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def local_config(directory: Path, *, name="local-team-proj", cloud=3214, site=3215, key=KEY) -> None:
    config = {"ports": {"cloud": cloud, "site": site}, "backendVersion": "1.0", "adminKey": key, "deploymentName": name}
    write(directory / "config.json", json.dumps(config))


def test_parse_dotenv_syntax():
    text = """
# comment
export CONVEX_URL=http://127.0.0.1:3210   # inline comment
CONVEX_DEPLOYMENT=local:local-team-proj # team: team, project: proj
SINGLE='a # not a comment'
DOUBLE="line1\\nline2 \\"q\\""
MULTI="first
second"
EMPTY=
  SPACED  =  value with spaces
HASH=abc#def
bad line without equals
"""
    env = parse_dotenv(text)
    assert env["CONVEX_URL"] == "http://127.0.0.1:3210"
    assert env["CONVEX_DEPLOYMENT"] == "local:local-team-proj"
    assert env["SINGLE"] == "a # not a comment"
    assert env["DOUBLE"] == 'line1\nline2 "q"'
    assert env["MULTI"] == "first\nsecond"
    assert env["EMPTY"] == ""
    assert env["SPACED"] == "value with spaces"
    assert env["HASH"] == "abc#def"
    assert "bad" not in env


def test_split_deployment():
    assert split_deployment("local:local-a-b # team: a") == ("local", "local-a-b")
    assert split_deployment("happy-otter-123") == (None, "happy-otter-123")


def test_nothing_found(tmp_path):
    assert discover(tmp_path, environ={}, home=tmp_path / "home") == []


def test_self_hosted_from_environment_wins(tmp_path):
    write(tmp_path / ".env.local", "CONVEX_URL=http://127.0.0.1:9999\n")
    environ = {"CONVEX_SELF_HOSTED_URL": "https://convex.example.com", "CONVEX_SELF_HOSTED_ADMIN_KEY": "inst|00ff00ff00ff00ff00ff"}
    found = discover(tmp_path, environ=environ, home=tmp_path)
    first = found[0]
    assert first.connection.url == "https://convex.example.com" and first.connection.kind == "self-hosted"
    assert first.connection.credential.secret == "inst|00ff00ff00ff00ff00ff"
    assert first.source == "CONVEX_SELF_HOSTED_URL in the environment"
    assert [d.connection.url for d in found] == ["https://convex.example.com", "http://127.0.0.1:9999"]
    assert found[1].origin == "discovered from CONVEX_URL in .env.local"


def test_self_hosted_from_env_file(tmp_path):
    write(tmp_path / ".env", "CONVEX_SELF_HOSTED_URL='http://10.0.0.5:3210'\nCONVEX_SELF_HOSTED_ADMIN_KEY=\"inst|abcdefabcdefabcdef\"\n")
    (found,) = discover(tmp_path, environ={}, home=tmp_path)
    assert found.connection.url == "http://10.0.0.5:3210"
    assert found.source == "CONVEX_SELF_HOSTED_URL in .env"
    assert found.connection.display_credential == "inst|••••cdef"


def test_local_deployment_from_project_config(tmp_path):
    write(tmp_path / ".env.local", "CONVEX_DEPLOYMENT=local:local-team-proj # team: team\nCONVEX_URL=http://127.0.0.1:3214\n")
    local_config(tmp_path / ".convex" / "local" / "default")
    found = discover(tmp_path, environ={}, home=tmp_path / "home")
    assert len(found) == 1  # the CONVEX_URL duplicate is dropped
    connection = found[0].connection
    assert (connection.url, connection.site_url) == ("http://127.0.0.1:3214", "http://127.0.0.1:3215")
    assert connection.credential.secret == KEY and connection.kind == "local"
    assert connection.display_name == "local:3214"
    assert found[0].source.startswith(".convex/local/default/config.json (CONVEX_DEPLOYMENT=local:local-team-proj in .env.local)")


def test_local_deployment_legacy_home_paths(tmp_path):
    home = tmp_path / "home"
    local_config(home / ".convex" / "convex-backend-state" / "local-team-proj", cloud=3300, site=3301)
    local_config(home / ".convex" / "anonymous-convex-backend-state" / "anonymous-demo", name="anonymous-demo", cloud=3400, site=3401)
    # A project config for another deployment is ignored.
    local_config(tmp_path / ".convex" / "local" / "default", name="local-other-thing", cloud=3999)
    (found,) = discover(tmp_path, environ={"CONVEX_DEPLOYMENT": "local:local-team-proj"}, home=home)
    assert found.connection.url == "http://127.0.0.1:3300"
    assert found.source.startswith("~/.convex/convex-backend-state/local-team-proj/config.json")
    (anon,) = discover(tmp_path, environ={"CONVEX_DEPLOYMENT": "anonymous:anonymous-demo"}, home=home)
    assert anon.connection.url == "http://127.0.0.1:3400" and anon.connection.site_url == "http://127.0.0.1:3401"


def test_deploy_key_with_framework_url(tmp_path):
    write(tmp_path / ".env.local", "NEXT_PUBLIC_CONVEX_URL=https://happy-otter-123.convex.cloud\n")
    environ = {"CONVEX_DEPLOY_KEY": "prod:happy-otter-123|0123456789abcdef0123a1b2"}
    found = discover(tmp_path, environ=environ, home=tmp_path)
    assert len(found) == 1
    connection = found[0].connection
    assert connection.credential.kind == "deploy_key" and connection.credential.authorization().startswith("Convex prod:")
    assert connection.display_name == "prod:happy-otter-123"
    assert connection.display_credential == "prod:happy-otter-123|••••a1b2"
    assert connection.site_url == "https://happy-otter-123.convex.site"
    assert found[0].source == "CONVEX_DEPLOY_KEY in the environment with NEXT_PUBLIC_CONVEX_URL in .env.local"


def test_deploy_key_alone_guesses_the_cloud_url(tmp_path):
    (found,) = discover(tmp_path, environ={"CONVEX_DEPLOY_KEY": "prod:calm-fox-7|0123456789abcdef0123"}, home=tmp_path)
    assert found.connection.url == "https://calm-fox-7.convex.cloud"
    assert "guessed" in found.source


def test_env_local_before_env_and_custom_url_names(tmp_path):
    write(tmp_path / ".env.local", "CONVEX_DEPLOYMENT=dev:happy-otter-123\nVITE_CONVEX_URL=https://happy-otter-123.convex.cloud\n")
    write(tmp_path / ".env", "CONVEX_URL=https://other-deploy-9.convex.cloud\nMY_APP_CONVEX_URL=http://127.0.0.1:4000\n")
    found = discover(tmp_path, environ={}, home=tmp_path)
    urls = [d.connection.url for d in found]
    assert urls == ["https://other-deploy-9.convex.cloud", "https://happy-otter-123.convex.cloud", "http://127.0.0.1:4000"]
    by_url = {d.connection.url: d for d in found}
    assert by_url["https://happy-otter-123.convex.cloud"].connection.display_name == "dev:happy-otter-123"
    assert by_url["https://other-deploy-9.convex.cloud"].source == "CONVEX_URL in .env"
    assert all(d.connection.credential.kind == "none" for d in found)


def test_environment_overrides_env_files(tmp_path):
    write(tmp_path / ".env.local", "CONVEX_URL=http://127.0.0.1:1111\n")
    (found,) = discover(tmp_path, environ={"CONVEX_URL": "http://127.0.0.1:2222"}, home=tmp_path)
    assert found.connection.url == "http://127.0.0.1:2222" and found.source == "CONVEX_URL in the environment"


def test_invalid_urls_are_skipped(tmp_path):
    write(tmp_path / ".env.local", "CONVEX_URL=https://happy-otter-123.convex.site\nVITE_CONVEX_URL=not a url\n")
    assert discover(tmp_path, environ={}, home=tmp_path) == []


def test_discover_reads_os_environ_by_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if "CONVEX" in name:
            monkeypatch.delenv(name)
    monkeypatch.setenv("CONVEX_URL", "http://127.0.0.1:5555")
    found = discover(home=tmp_path)
    assert found[0].connection.url == "http://127.0.0.1:5555"


@pytest.mark.parametrize("value", ["local:", "dev:happy-otter-123"])
def test_no_local_config_means_no_local_result(tmp_path, value):
    assert discover(tmp_path, environ={"CONVEX_DEPLOYMENT": value}, home=tmp_path) == []
