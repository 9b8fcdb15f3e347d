"""The demo's cron jobs (`convex/crons.ts`)."""

from console.emulator.crons import Crons

crons = Crons()
crons.interval("cleanup old emails", {"minutes": 5}, "maintenance:cleanupEmails", {})
crons.daily("daily digest", {"hourUTC": 8, "minuteUTC": 0}, "digest:send", {"recipient": "team@example.com"})
