"""Connection: URL validation, site URL derivation, credentials and how they are shown."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, strategies as st

from console.client import AdminAuth, decode_filters, encode_filters
from console.connection import Connection, Credential, InvalidConnection, derive_site_url, guess_kind

SECRET = "prod:happy-otter-123|0123456789abcdef0123a1b2"


@pytest.mark.parametrize(
    "url,site,kind,name",
    [
        ("https://happy-otter-123.convex.cloud", "https://happy-otter-123.convex.site", "cloud", "happy-otter-123"),
        ("https://happy-otter-123.eu-west-1.convex.cloud/", "https://happy-otter-123.eu-west-1.convex.site", "cloud", "happy-otter-123"),
        ("http://127.0.0.1:3210", "http://127.0.0.1:3211", "local", "local:3210"),
        ("http://localhost:3300/", "http://localhost:3301", "local", "local:3300"),
        ("http://[::1]:3210", "http://[::1]:3211", "local", "local:3210"),
        ("https://convex.example.com", "https://convex.example.com/http", "self-hosted", "self-hosted:convex.example.com"),
        ("http://10.0.0.5:3210", "http://10.0.0.5:3210/http", "self-hosted", "self-hosted:10.0.0.5:3210"),
    ],
)
def test_urls_kinds_and_names(url, site, kind, name):
    connection = Connection.create(url)
    assert connection.site_url == site and connection.kind == kind
    assert connection.display_name == name
    assert not connection.url.endswith("/")


def test_site_url_override_and_emulator_kind():
    connection = Connection.create("http://127.0.0.1:40000", site_url="http://127.0.0.1:40017/", kind="emulator")
    assert connection.site_url == "http://127.0.0.1:40017" and connection.display_name == "emulator:40000"


@pytest.mark.parametrize(
    "url,fragment",
    [
        ("https://happy-otter-123.convex.site", "HTTP-actions URL (.convex.site); use the deployment URL https://happy-otter-123.convex.cloud"),
        ("ftp://x.example", "must start with http:// or https://"),
        ("happy-otter-123.convex.cloud", "has no scheme"),
        ("http://", "has no host"),
        ("http://127.0.0.1:99999", "not valid"),
        ("http://127.0.0.1:3210/?a=1", "query or fragment"),
        ("", "empty"),
    ],
)
def test_invalid_urls_one_line(url, fragment):
    with pytest.raises(InvalidConnection) as info:
        Connection.create(url)
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_credentials_are_masked_everywhere():
    connection = Connection.create("https://happy-otter-123.convex.cloud", admin_key=SECRET)
    assert connection.display_name == "prod:happy-otter-123" and connection.is_production
    assert connection.display_credential == "prod:happy-otter-123|••••a1b2"
    for text in (repr(connection), str(connection), connection.summary(), repr(connection.credential)):
        assert "0123456789abcdef" not in text
    assert connection.credential.authorization() == f"Convex {SECRET}"
    deploy = Connection.create("https://happy-otter-123.convex.cloud", deploy_key=SECRET)
    assert deploy.credential.kind == "deploy_key" and deploy.credential.authorization() == f"Convex {SECRET}"
    none = Connection.create("http://127.0.0.1:3210")
    assert none.credential.authorization() is None and none.display_credential == "no key"


@pytest.mark.parametrize("key", ["with space|x", "line\nbreak", "tab\tkey", "ünïcode|x", ""])
def test_keys_that_would_break_a_header_are_refused(key):
    with pytest.raises(InvalidConnection):
        Credential.admin_key(key) if key else Credential("admin_key", key)


def test_both_keys_refused():
    with pytest.raises(InvalidConnection, match="not both"):
        Connection.create("http://127.0.0.1:3210", admin_key="a|b", deploy_key="c|d")


def test_key_tells_the_deployment_type():
    dev = Connection.create("https://calm-fox-7.convex.cloud", admin_key="dev:calm-fox-7|abcdefabcdefabcdef")
    assert dev.display_name == "dev:calm-fox-7" and not dev.is_production
    assert Credential.admin_key("instance|abcdef").key_deployment == "instance"
    assert Credential.admin_key("instance|abcdef").key_type is None


def test_acting_as_header():
    auth = AdminAuth("k|1", {"subject": "s", "name": "Zoë"})
    key, _, payload = auth.header().removeprefix("Convex ").partition(":")
    import base64

    assert key == "k|1" and json.loads(base64.b64decode(payload)) == {"subject": "s", "name": "Zoë"}
    assert "k|1" not in repr(auth)


@given(st.from_regex(r"[a-z][a-z0-9-]{0,30}", fullmatch=True), st.one_of(st.none(), st.from_regex(r"[a-z]{2}-[a-z]{2,6}-[0-9]", fullmatch=True)))
def test_cloud_site_url_property(name, region):
    host = f"{name}.{region}" if region else name
    url = f"https://{host}.convex.cloud"
    assert derive_site_url(url) == f"https://{host}.convex.site"
    assert guess_kind(url) == "cloud"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_filter_encoding_round_trips(value):
    encoded = encode_filters({"clauses": [], "v": value})
    assert set(encoded) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert decode_filters(encoded) == {"clauses": [], "v": value}
    # js-base64 decode also accepts the standard alphabet with padding
    standard = encoded.replace("-", "+").replace("_", "/")
    assert decode_filters(standard + "=" * (-len(standard) % 4)) == {"clauses": [], "v": value}
