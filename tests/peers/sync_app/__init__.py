"""A small app for the sync tests: messages, counters, big payloads, failures, identity."""
