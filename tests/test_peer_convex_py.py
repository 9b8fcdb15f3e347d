"""The PyPI `convex` package's HTTP client calls the demo app as a peer."""

from __future__ import annotations

import pytest
from convex import ConvexError
from convex.http_client import ConvexExecutionError, ConvexHttpClient


@pytest.fixture
def peer(emulator):
    client = ConvexHttpClient(emulator.url)
    return client


def test_query_mutation_action(peer, emulator):
    user_id = peer.mutation("users:createUser", {"clerkId": "peer_1", "email": "peer@example.com", "name": "Peer"})
    assert isinstance(user_id, str) and len(user_id) == 32
    user = peer.query("users:getByClerkId", {"clerkId": "peer_1"})
    assert user["_id"] == user_id and user["name"] == "Peer"
    post_id = peer.mutation("posts:create", {"title": "Hello", "content": "World", "authorId": user_id})
    assert peer.query("posts:get", {"id": post_id})["title"] == "Hello"
    by_author = peer.query("posts:getByAuthor", {"authorId": user_id})
    assert [post["_id"] for post in by_author] == [post_id]
    email_id = peer.action("emails:sendTestEmail", {"to": "tester@example.com"})
    assert [e["_id"] for e in peer.query("emails:listSentTo", {"to": "tester@example.com"})] == [email_id]


def test_paginate(peer):
    first = peer.query("posts:paginate", {"paginationOpts": {"numItems": 10, "cursor": None}})
    assert len(first["page"]) == 10 and first["isDone"] is False
    second = peer.query("posts:paginate", {"paginationOpts": {"numItems": 10, "cursor": first["continueCursor"]}})
    assert not {p["_id"] for p in first["page"]} & {p["_id"] for p in second["page"]}


def test_convex_error_data(peer):
    peer.mutation("users:createUser", {"clerkId": "dup", "email": "d@example.com"})
    with pytest.raises(ConvexError) as raised:
        peer.mutation("users:createUser", {"clerkId": "dup", "email": "d@example.com"})
    assert raised.value.data == {"code": "USER_EXISTS", "clerkId": "dup"}


def test_function_errors(peer):
    with pytest.raises(ConvexExecutionError, match="Could not find public function for 'posts:nope'"):
        peer.query("posts:nope")
    with pytest.raises(ConvexExecutionError, match="ArgumentValidationError"):
        peer.query("posts:get", {"id": 12})
    with pytest.raises(ConvexExecutionError, match="Could not find public function for 'posts:countAll'"):
        peer.query("posts:countAll")


def test_admin_auth_reaches_internal_functions(peer, emulator):
    peer.set_admin_auth(emulator.admin_key)
    assert peer.query("posts:countAll") == 50.0
    peer.set_admin_auth("convex-console|0000")
    with pytest.raises(Exception, match="403 BadDeployKey"):
        peer.query("posts:countAll")


def test_int64_and_bytes_round_trip(peer, emulator):
    peer.set_admin_auth(emulator.admin_key)
    from convex.values import ConvexInt64

    result = peer.mutation(
        "_system/frontend/addDocument",
        {"table": "blobs", "documents": [{"n": ConvexInt64(2**40), "b": b"\x00\x01"}]},
    )
    assert result == {"success": True}
    page = peer.query("_system/cli/tableData", {"table": "blobs", "order": "asc", "paginationOpts": {"numItems": 1, "cursor": None}})
    doc = page["page"][0]
    assert doc["n"] == 2**40 and doc["b"] == b"\x00\x01"
