"""Crons of the scheduler test app."""

from console.emulator.crons import Crons

crons = Crons()
crons.interval("tick", {"seconds": 30}, "jobs:increment", {"name": "tick"})
crons.cron("top of the hour", "0 * * * *", "jobs:increment", {"name": "hourly"})
