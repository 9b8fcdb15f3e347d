"""A test app for the scheduler (tests/test_scheduler.py)."""
