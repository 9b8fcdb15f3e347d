"""The demo app: the seed's domain (users, posts, comments, files, welcome emails, counters).

It is the emulator's default `--app`. Each public submodule is a Convex module
(`posts.py` -> `posts.js`); `schema.py` holds the schema.
"""
