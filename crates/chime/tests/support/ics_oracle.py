#!/usr/bin/env python3
"""The independent reader of the calendar feed test: Python's `icalendar` parses the feed and
`recurring_ical_events` expands it (RRULE, EXDATE, RECURRENCE-ID overrides, TZID and
VTIMEZONE) between two instants.

Usage: ics_oracle.py FEED_FILE FROM TO (FROM and TO as RFC 3339 UTC, `2026-12-05T00:00:00Z`).
Prints one line per event instance, `UID<TAB>START` with START in UTC (`2026-12-07T08:00:00Z`),
sorted, cancelled instances left out; and first a line `ALARMS<TAB>n`: how many instances carry a VALARM at their start.
"""
import sys
from datetime import datetime, timedelta, timezone

import icalendar
import recurring_ical_events


def instant(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


feed, start, end = sys.argv[1], instant(sys.argv[2]), instant(sys.argv[3])
with open(feed, "rb") as f:
    calendar = icalendar.Calendar.from_ical(f.read())
rows = []
alarms = 0
for event in recurring_ical_events.of(calendar).between(start, end):
    # recurring_ical_events returns a cancelled instance (an override with STATUS:CANCELLED)
    # as an event with that status; RFC 5545 means it does not take place.
    if str(event.get("STATUS", "")).upper() == "CANCELLED":
        continue
    at = event["DTSTART"].dt
    if at.tzinfo is None:
        raise SystemExit(f"floating DTSTART in {event['UID']}: {at}")
    rows.append(f"{event['UID']}\t{at.astimezone(timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')}")
    for alarm in event.walk("VALARM"):
        if alarm["TRIGGER"].dt == timedelta(0):
            alarms += 1
print(f"ALARMS\t{alarms}")
for row in sorted(rows):
    print(row)
