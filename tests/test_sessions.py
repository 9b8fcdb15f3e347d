"""Profiles, secrets (0600), key bindings, last state, history, and the TOML writer."""

from __future__ import annotations

import tomllib

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from console import values
from console.client import FilterClause
from console.sessions import (
    CONFIG_DIR_ENV,
    History,
    Profile,
    ProfileError,
    Settings,
    clauses_from_state,
    clauses_to_state,
    config_dir,
    dump_toml,
    file_mode,
)

SECRET = "prod:happy-otter-123|0123456789abcdef0123a1b2"


@pytest.fixture
def store(tmp_path):
    settings = Settings(tmp_path / "config")
    yield settings
    settings.close()


def test_config_dir_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv(CONFIG_DIR_ENV, str(tmp_path / "from-env"))
    assert config_dir() == tmp_path / "from-env"
    assert config_dir(tmp_path / "flag") == tmp_path / "flag"
    monkeypatch.delenv(CONFIG_DIR_ENV)
    assert config_dir().name == "convex-console"


def test_profile_with_secret_is_stored_0600_and_never_inline(store):
    store.save_profile(Profile("prod", "https://happy-otter-123.convex.cloud"), secret=SECRET)
    text = store.profiles_path.read_text()
    assert SECRET not in text and "0123456789abcdef" not in text
    assert tomllib.loads(text)["profiles"]["prod"] == {"url": "https://happy-otter-123.convex.cloud", "admin_key_file": "prod"}
    assert file_mode(store.secrets_path) == 0o600
    assert file_mode(store.directory) == 0o700
    assert tomllib.loads(store.secrets_path.read_text())["secrets"]["prod"] == SECRET
    config = store.load()
    assert config.default_profile == "prod"  # the first profile becomes the default
    connection = store.connection_for("prod")
    assert connection.credential.secret == SECRET
    assert connection.display_name == "prod:happy-otter-123" and connection.is_production
    assert connection.display_credential == "prod:happy-otter-123|••••a1b2"
    assert SECRET not in repr(connection) and SECRET not in repr(config)


def test_profile_with_env_var(store, monkeypatch):
    store.save_profile(Profile("local", "http://127.0.0.1:3210", admin_key_env="MY_CONVEX_KEY"))
    assert not store.secrets_path.exists()
    with pytest.raises(ProfileError, match="MY_CONVEX_KEY is not set"):
        store.connection_for("local", environ={})
    connection = store.connection_for("local", environ={"MY_CONVEX_KEY": "local|abcdefabcdefabcdef"})
    assert connection.credential.secret == "local|abcdefabcdefabcdef" and connection.site_url == "http://127.0.0.1:3211"
    assert store.get_profile("local").key_source == "$MY_CONVEX_KEY"


def test_default_delete_and_errors(store):
    store.save_profile(Profile("a", "http://127.0.0.1:3210"))
    store.save_profile(Profile("b", "https://happy-otter-123.convex.cloud"), secret=SECRET, make_default=True)
    assert store.load().default_profile == "b"
    store.set_default("a")
    assert store.load().default_profile == "a"
    with pytest.raises(ProfileError, match="No profile named 'zzz'"):
        store.get_profile("zzz")
    with pytest.raises(ProfileError):
        store.set_default("zzz")
    with pytest.raises(ProfileError, match="letters"):
        store.save_profile(Profile("bad name!", "http://127.0.0.1:3210"))
    with pytest.raises(ValueError, match="convex.site"):
        store.save_profile(Profile("site", "https://happy-otter-123.convex.site"))
    store.delete_profile("b")
    assert set(store.load().profiles) == {"a"}
    assert "b" not in store.secrets()


def test_inline_key_is_read_but_not_rewritten(store):
    store.directory.mkdir(parents=True)
    store.profiles_path.write_text('default_profile = "old"\n[profiles.old]\nurl = "http://127.0.0.1:3210"\nadmin_key = "old|abcdefabcdefabcdef"\n')
    assert store.connection_for("old").credential.secret == "old|abcdefabcdefabcdef"
    store.set_default("old")  # rewrites profiles.toml
    assert "abcdefabcdef" not in store.profiles_path.read_text()


def test_missing_secret_entry_is_a_clear_error(store):
    store.save_profile(Profile("x", "http://127.0.0.1:3210", admin_key_file="gone"))
    with pytest.raises(ProfileError, match="no entry 'gone'"):
        store.connection_for("x")


def test_bad_toml_is_a_profile_error(store):
    store.directory.mkdir(parents=True)
    store.profiles_path.write_text("default_profile = \n")
    with pytest.raises(ProfileError, match="not valid TOML"):
        store.load()


def test_key_bindings(store):
    assert store.keys == {}
    store.set_key_binding("data.next-page", "ctrl+n")
    store.set_key_binding("quit", "ctrl+q")
    store.set_key_binding("quit", None)
    assert store.keys == {"data.next-page": "ctrl+n"}
    assert '"data.next-page" = "ctrl+n"' in store.profiles_path.read_text()


def test_last_state_per_profile(store, tmp_path):
    store.save_state("prod", {"screen": "data", "table": "posts", "queries": {"posts": {"order": "asc"}}})
    store.save_state("local", {"screen": "logs"})
    again = Settings(tmp_path / "config")
    assert again.load_state("prod") == {"screen": "data", "table": "posts", "queries": {"posts": {"order": "asc"}}}
    assert again.load_state("local") == {"screen": "logs"}
    assert again.load_state("other") == {}
    store.state_path.write_text("{not json")
    assert store.load_state("prod") == {}


def test_filter_clauses_round_trip_through_state():
    clauses = [FilterClause("n", "gte", 5), FilterClause("b", "eq", b"\x01"), FilterClause("x", "type", "bigint", enabled=False),
               FilterClause("gone", "eq", values.UNDEFINED)]
    state = clauses_to_state(clauses)
    assert state[0] == {"field": "n", "op": "gte", "value": {"$integer": "BQAAAAAAAAA="}, "enabled": True}
    assert clauses_from_state(state + [{"op": "eq"}, {"field": "a", "op": "like", "value": 1}]) == clauses


def test_history_is_bounded_and_private(tmp_path):
    history = History(tmp_path / "h.sqlite3", max_runs=3, max_tokens=2)
    try:
        for i in range(5):
            history.add_run("local:3210", "posts:list", "query", {"n": i}, "success", result=[i], elapsed_ms=1.5)
        history.add_run("prod:x", "posts:list", "query", {}, "error", error="boom")
        runs = history.runs("local:3210")
        assert [r.args for r in runs] == [{"n": 4}, {"n": 3}, {"n": 2}]
        assert runs[0].result == [4] and runs[0].status == "success"
        assert history.runs("prod:x")[0].error == "boom"
        for token in ("t1", "t2", "t3", "t2"):
            history.add_token(token, label=f"label {token}")
        assert [t.token for t in history.tokens()] == ["t2", "t3"]
        assert file_mode(tmp_path / "h.sqlite3") == 0o600
    finally:
        history.close()
    reopened = History(tmp_path / "h.sqlite3")
    assert len(reopened.runs("local:3210")) == 3  # written as it happened
    reopened.close()


def test_settings_history_lives_in_config_dir(store):
    store.history.add_run("d", "m:f", "mutation", {}, "success")
    assert (store.directory / "history.sqlite3").exists()


toml_keys = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20)
toml_scalars = st.one_of(st.text(st.characters(blacklist_categories=("Cs",)), max_size=30), st.booleans(),
                         st.integers(-(2**63), 2**63 - 1), st.lists(st.text(max_size=5), max_size=3))


@hsettings(max_examples=150, deadline=None)
@given(st.dictionaries(toml_keys, toml_scalars, max_size=4), st.dictionaries(toml_keys, st.dictionaries(toml_keys, toml_scalars, max_size=3), max_size=3))
def test_toml_writer_round_trips(top, profiles):
    data = {k: v for k, v in top.items() if k not in ("profiles", "keys")}
    data["profiles"] = profiles
    data["keys"] = {"a.b": "ctrl+x"}
    assert tomllib.loads(dump_toml(data)) == data


def test_unknown_sections_survive_a_save(store):
    store.directory.mkdir(parents=True)
    store.profiles_path.write_text(
        'theme = "dark"\nsince = 2024-01-02\n[ui]\nwide = true\n[[plugins]]\nname = "a"\nargs = [1, 2]\n'
        '[profiles.p]\nurl = "http://127.0.0.1:3210"\n'
    )
    before = tomllib.loads(store.profiles_path.read_text())
    store.set_default("p")
    after = tomllib.loads(store.profiles_path.read_text())
    assert after["default_profile"] == "p"
    for key in ("theme", "since", "ui", "plugins", "profiles"):
        assert after[key] == before[key]
