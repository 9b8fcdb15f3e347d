"""The app bench/bench_scheduler.py schedules: one mutation and one action, no contention."""
