"""A tiny app for the HTTP actions tests: routes that stream, fail and sleep; an env query."""
