"""`--seed N`: fill the demo app's tables with N posts, N/10 users and some comments.

Deterministic: the same N gives the same field values (document ids and `_creationTime`
come from the engine). Uses the engine's `bulk_insert` so a million posts take seconds.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

RNG_SEED = 20240601
BASE_TIME_MS = 1_700_000_000_000.0  # 2023-11-14, so seeded dates look real
COMMENTS_PER_POST = 0.2
MAX_COMMENTS = 50_000  # enough to browse; keeps a million-post seed fast

FIRST_NAMES = (
    "Ada Alan Grace Linus Margaret Dennis Barbara Ken Frances Edsger Radia John Hedy Tim Anita "
    "Guido Katherine Donald Shafi Leslie Sophie Niklaus Jean Bjarne Yukihiro Rasmus Brendan"
).split()
LAST_NAMES = (
    "Lovelace Turing Hopper Torvalds Hamilton Ritchie Liskov Thompson Allen Dijkstra Perlman "
    "McCarthy Lamarr Berners-Lee Borg Rossum Johnson Knuth Goldwasser Lamport Wilson Wirth Sammet"
).split()
TOPICS = (
    "reactive queries", "indexes", "pagination", "file storage", "scheduled functions", "HTTP actions",
    "auth with Clerk", "schema design", "optimistic updates", "full-text search", "cron jobs",
    "mutations", "transactions", "CORS headers", "environment variables", "TypeScript types",
)
TITLE_TEMPLATES = (
    "Getting started with {t}", "A practical guide to {t}", "Why {t} matter", "Debugging {t}",
    "{T} in production", "Ten tips for {t}", "What I learned about {t}", "Rethinking {t}",
    "{T}: common mistakes", "Scaling {t}",
)
SENTENCES = (
    "Convex keeps the client in sync without any extra code.",
    "Every query runs in a transaction against a consistent snapshot.",
    "Add an index for every field you filter on.",
    "Mutations are retried automatically when they conflict.",
    "Schedule actions from mutations instead of calling them directly.",
    "Use ctx.storage.getUrl instead of building URLs by hand.",
    "HTTP endpoints live on the .convex.site domain.",
    "Remember the CORS headers on every response, including errors.",
    "Validate every argument with a validator.",
    "Paginate large tables instead of collecting them.",
    "Internal functions are only callable from other functions.",
    "The dashboard shows every function call with its logs.",
)
COMMENTS = (
    "Great post, thanks!", "This saved me hours.", "Could you expand on the indexing part?",
    "I ran into the same CORS issue last week.", "Works for me now.", "Bookmarked.",
    "What about pagination with filters?", "Nice write-up.",
)


@dataclass
class SeedReport:
    users: int
    posts: int
    comments: int
    seconds: float


def _titles() -> list[str]:
    return [tpl.format(t=topic, T=topic[0].upper() + topic[1:]) for tpl in TITLE_TEMPLATES for topic in TOPICS]


def _users(rng: random.Random, count: int) -> list[dict]:
    users = []
    for index in range(count):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        user = {
            "clerkId": f"user_{index:07d}{rng.getrandbits(32):08x}",
            "email": f"{first.lower()}.{last.lower()}{index}@example.com",
            "createdAt": BASE_TIME_MS + index * 3_600_000.0,
        }
        if rng.random() < 0.9:  # `name` is optional in the schema
            user["name"] = f"{first} {last}"
        users.append(user)
    return users


def _contents(rng: random.Random, count: int = 512) -> list[str]:
    return [" ".join(rng.sample(SENTENCES, rng.randint(2, 6))) for _ in range(count)]


def _posts(rng: random.Random, count: int, user_ids: list[str]):
    titles, contents = _titles(), _contents(rng)
    for index in range(count):
        created = BASE_TIME_MS + index * 60_000.0
        yield {
            "title": titles[rng.randrange(len(titles))],
            "content": contents[rng.randrange(len(contents))],
            "authorId": user_ids[rng.randrange(len(user_ids))],
            "published": rng.random() < 0.6,
            "createdAt": created,
            "updatedAt": created + rng.randrange(0, 86_400_000),
        }


def _comments(rng: random.Random, count: int, post_ids: list[str], user_ids: list[str]):
    for index in range(count):
        yield {
            "postId": post_ids[rng.randrange(len(post_ids))],
            "authorId": user_ids[rng.randrange(len(user_ids))],
            "body": COMMENTS[rng.randrange(len(COMMENTS))],
            "createdAt": BASE_TIME_MS + index * 30_000.0,
        }


def _insert_posts(db, posts, n_posts: int, validate: bool) -> list[str]:
    """One bulk insert (its index merge works best in one go); keep about 10,000 evenly
    spread post ids for the comments."""
    ids = db.bulk_insert("posts", posts, validate=validate)
    return ids[:: max(1, n_posts // 10_000)]


def seed(db, n_posts: int, *, rng_seed: int = RNG_SEED, validate: bool = False) -> SeedReport:
    """Insert `n_posts` posts, `max(1, n_posts // 10)` users and `n_posts // 5` comments (at most 50,000).

    `validate=False` skips per-document schema checks (the generated documents match the
    demo schema; tests seed with `validate=True` to prove it).
    """
    started = time.perf_counter()
    if n_posts <= 0:
        return SeedReport(0, 0, 0, 0.0)
    rng = random.Random(rng_seed)
    n_users = max(1, n_posts // 10)
    user_ids = db.bulk_insert("users", _users(rng, n_users), validate=validate)
    n_comments = min(int(n_posts * COMMENTS_PER_POST), MAX_COMMENTS)
    commented = _insert_posts(db, _posts(rng, n_posts, user_ids), n_posts, validate)
    if n_comments:
        db.bulk_insert("comments", _comments(rng, n_comments, commented, user_ids), validate=validate, return_ids=False)
    return SeedReport(n_users, n_posts, n_comments, time.perf_counter() - started)
