#!/usr/bin/env python3
"""The independent oracle of the RRULE property test: python-dateutil's rrule.

Reads lines `DTSTART<TAB>RRULE<TAB>N` (DTSTART a local date-time `YYYYMMDDTHHMMSS`, read on
the wall clock as RFC 5545 reads a DTSTART with a TZID) and answers each with one line: the
first N occurrences, local, space-separated (`YYYYMMDDTHHMMSS`), then `END` if the rule had no
more, or `MORE`; or `TIMEOUT` after what it found when dateutil took longer than 0.1 s
(a rule that almost never matches: dateutil then walks to the year 9999); or `ERROR:...`
when dateutil refuses the rule.

A line may carry a fourth field, an IANA zone: the occurrences are then turned into instants
as Chime's schedule does (each local date-time read in the zone with `fold=0`, which is the
offset before a transition: a time in a gap lands where shifting it forward would, a time in a
fold at its first pass), those before the start's instant or not after the one before dropped,
and each answered as `YYYYMMDDTHHMMSSZ/SEQ` (UTC, and its 1-based position in the expansion).
"""
import signal
import sys
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr


class Timeout(Exception):
    pass


def on_alarm(signum, frame):
    raise Timeout()


signal.signal(signal.SIGALRM, on_alarm)

for line in sys.stdin:
    line = line.rstrip("\n")
    if not line:
        continue
    dtstart, rule, n, *zone = line.split("\t")
    n = int(n)
    found = []
    tail = "MORE"
    signal.setitimer(signal.ITIMER_REAL, 0.1)
    try:
        it = iter(rrulestr(f"DTSTART:{dtstart}\nRRULE:{rule}"))
        while len(found) < n:
            try:
                found.append(next(it).strftime("%Y%m%dT%H%M%S"))
            except StopIteration:
                tail = "END"
                break
    except Timeout:
        tail = "TIMEOUT"
    except Exception as e:  # noqa: BLE001 (a rule dateutil refuses is reported, not fatal)
        found, tail = [], "ERROR:" + type(e).__name__ + ":" + str(e).replace(" ", "_")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    if zone and not tail.startswith("ERROR:"):
        tz = ZoneInfo(zone[0])

        def instant(text):
            local = datetime.strptime(text, "%Y%m%dT%H%M%S")
            return local.replace(tzinfo=tz, fold=0).astimezone(timezone.utc)

        start, last, instants = instant(dtstart), None, []
        for seq, text in enumerate(found, 1):
            at = instant(text)
            if at < start or (last is not None and at <= last):
                continue
            last = at
            instants.append(at.strftime("%Y%m%dT%H%M%SZ") + f"/{seq}")
        found = instants
    print(" ".join(found + [tail]), flush=True)
