#!/usr/bin/env python3
"""The independent oracle of the RRULE property test: python-dateutil's rrule.

Reads lines `DTSTART<TAB>RRULE<TAB>N` (DTSTART a local date-time `YYYYMMDDTHHMMSS`, read on
the wall clock as RFC 5545 reads a DTSTART with a TZID) and answers each with one line: the
first N occurrences, local, space-separated (`YYYYMMDDTHHMMSS`), then `END` if the rule had no
more, or `MORE`; or `TIMEOUT` after what it found when dateutil took longer than 0.1 s
(a rule that almost never matches: dateutil then walks to the year 9999); or `ERROR:...`
when dateutil refuses the rule.
"""
import signal
import sys

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
    dtstart, rule, n = line.split("\t")
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
    print(" ".join(found + [tail]), flush=True)
