"""Chime's own check and data hooks for schemathesis, loaded through SCHEMATHESIS_HOOKS by
crates/chime/tests/it/schemathesis.rs beside the built-in checks.

The check: every 4xx must be RFC 9457 application/problem+json with the status in the body,
and a refused request (400, 413, 422) must name what it refused: at least one entry in
`errors` with a JSON `pointer` (the empty pointer "" is the whole body) and a `detail`.

The hooks: some rules of a request body are not expressible in JSON Schema (a start in the
future, a snooze that ends after now, a time zone that exists, weekday names, a public
webhook address, a destination URL, a P-256 point, an email address or phone number that is one, a time of day
that exists, an RFC 5545 rule, an iCalendar file).
Where a generated body holds a value the schema allows in such a field, the hook puts a
value there that also keeps those rules, so that "schema-valid is accepted" is tested on the
rest of the body instead of failing on them. It only ever swaps a schema-valid value for
another schema-valid value: a body the schema refuses stays refused, so the negative checks
are untouched. The parsers of those fields have their own property tests.
"""

import json
import os
import re
from datetime import datetime, timedelta, timezone

import schemathesis

TASK_BODIES = {
    ("POST", "/api/v1/tasks"),
    ("PUT", "/api/v1/tasks/{id}"),
    ("POST", "/api/v1/tasks/preview"),
}
ZONES = ["Europe/Berlin", "America/New_York", "UTC", "+05:30"]
ON_BY_PERIOD = {"week": "monday, friday", "month": [15, "last"]}
RULES = ["FREQ=MONTHLY;BYDAY=2TU", "RRULE:FREQ=DAILY;BYHOUR=9,17;COUNT=30", "FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU"]
# A calendar file with one weekly event and an alarm, far enough ahead to stay in the future.
CALENDAR = "\r\n".join([
    "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Chime tests//EN", "BEGIN:VEVENT", "UID:st@example.com",
    "SUMMARY:Choir", "DTSTART;TZID=Europe/Berlin:20310107T190000", "RRULE:FREQ=WEEKLY;COUNT=5",
    "BEGIN:VALARM", "ACTION:DISPLAY", "TRIGGER:-PT30M", "END:VALARM", "END:VEVENT", "END:VCALENDAR", "",
])


PERIODS = {
    spelling: period
    for period, spellings in {
        "day": ("day", "days", "daily"),
        "week": ("week", "weeks", "weekly"),
        "month": ("month", "months", "monthly"),
        "year": ("year", "years", "yearly"),
    }.items()
    for spelling in spellings
}


def _period(value):
    return PERIODS.get(value.strip().lower()) if isinstance(value, str) else None


def _future():
    at = datetime.now(timezone.utc) + timedelta(days=400)
    return at.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _task_body(body):
    if isinstance(body.get("name"), str) and body["name"] and (
        not body["name"].strip() or re.search(r"[\x00-\x1f\x7f-\x9f]", body["name"])
    ):
        body["name"] = "Water the plants"
    if isinstance(body.get("description"), str) and len(body["description"]) <= 4000:
        body["description"] = "Memorable description"
    if isinstance(body.get("startDate"), str):
        body["startDate"] = _future()
    if isinstance(body.get("timeZone"), str):
        body["timeZone"] = ZONES[len(body["timeZone"]) % len(ZONES)]
    repeats = body.get("repeats")
    if isinstance(repeats, dict):
        if isinstance(repeats.get("frequency"), str) and re.fullmatch(r"[0-9]+", repeats["frequency"]):
            repeats["frequency"] = "2"
        period = _period(repeats.get("period"))
        if "on" in repeats and isinstance(repeats["on"], (str, int, float, list)) and not isinstance(repeats["on"], bool):
            if period in ON_BY_PERIOD and (
                not isinstance(repeats["on"], list)
                or all(isinstance(i, (str, int, float)) and not isinstance(i, bool) for i in repeats["on"])
            ):
                repeats["on"] = ON_BY_PERIOD[period]
            elif period in ("day", "year"):
                repeats["on"] = None
        if isinstance(repeats.get("ends"), str):
            repeats["ends"] = "2031-01-31"
        # An RFC 5545 rule has a grammar JSON Schema does not state: any string becomes one.
        if isinstance(repeats.get("rrule"), str):
            repeats["rrule"] = RULES[len(repeats["rrule"]) % len(RULES)]
    # Skipped and moved occurrences are instants (any string becomes one); a move must name
    # an occurrence of the task between its neighbours, which JSON Schema cannot state: a
    # list of well-formed moves becomes the empty list.
    if isinstance(body.get("skipped"), list):
        # Not the start: skipping a one-time task's only occurrence leaves it none, refused.
        body["skipped"] = ["2031-06-15T12:00:00Z" if isinstance(i, str) else i for i in body["skipped"]]
    # Added ones likewise (not a skipped one: adding that back is refused, restore is the way).
    if isinstance(body.get("added"), list):
        body["added"] = ["2031-06-16T12:00:00Z" if isinstance(i, str) else i for i in body["added"]]
    # A floating task needs a time zone in the owner's settings, which other calls change.
    if body.get("floating") is True:
        body["floating"] = False
    moved = body.get("moved")
    if isinstance(moved, list) and all(
        isinstance(m, dict) and isinstance(m.get("from"), str) and isinstance(m.get("to"), str)
        for m in moved
    ):
        body["moved"] = []
    notify = body.get("notify")
    if isinstance(notify, dict):
        if isinstance(notify.get("email"), str):
            notify["email"] = "someone@example.com"
        if isinstance(notify.get("sms"), (str, int, float)) and not isinstance(notify["sms"], bool):
            notify["sms"] = "+14075551212"
        if isinstance(notify.get("destinations"), list):
            # Ids of the caller's destinations: these tests' users have none.
            notify["destinations"] = []
    _escalate(body)
    missed = body.get("missed")
    if isinstance(missed, dict):
        policy = missed.get("policy")
        limit = missed.get("limitSeconds")
        # `limitSeconds` goes with `skip` only: a rule between two fields.
        if isinstance(policy, str) and policy.lower() == "skip" and limit is None:
            missed["limitSeconds"] = 3600
        elif (policy is None or isinstance(policy, str) and policy.lower() != "skip") and _number(limit):
            missed.pop("limitSeconds")


def _escalate(body):
    # Rules between fields JSON Schema cannot state: each step's channel is one the task
    # notifies on, each channel once, each step later than the one before. Applied only to a
    # list of schema-valid steps, and `notify` only filled where it is absent or null or of
    # the right type, so an invalid request stays invalid.
    steps = body.get("escalate")
    if not isinstance(steps, list) or not 0 < len(steps) <= 4:
        return
    for step in steps:
        if not (
            isinstance(step, dict)
            and _number(step.get("afterMinutes"))
            and float(step["afterMinutes"]).is_integer()
            and 1 <= step["afterMinutes"] <= 1440
            and isinstance(step.get("channel"), str)
            and re.fullmatch(r"(?i)email|sms|push|webhook", step["channel"])
        ):
            return
    if body.get("notify") is None:
        body["notify"] = {}
    notify = body["notify"]
    if not isinstance(notify, dict):
        return
    kept = []
    for step in steps:
        if step["channel"].lower() not in [k["channel"].lower() for k in kept]:
            kept.append(step)
    for i, step in enumerate(kept):
        step["afterMinutes"] = i + 1
    for step in kept:
        channel = step["channel"].lower()
        if channel in ("email", "sms"):
            if notify.get(channel) in (None, ""):
                notify[channel] = "someone@example.com" if channel == "email" else "+14075551212"
        elif notify.get(channel) in (None, False):
            notify[channel] = True
    body["escalate"] = kept


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@schemathesis.hook
def before_call(ctx, case, kwargs):
    # Before every call of every phase (coverage cases are not drawn through `map_body`).
    body = case.body
    if not isinstance(body, dict):
        return
    key = (case.operation.method.upper(), case.operation.path)
    if key in TASK_BODIES:
        _task_body(body)
    elif key == ("PUT", "/api/v1/webhook"):
        url = body.get("url")
        if isinstance(url, str) and len(url) <= 2048 and re.match(r"^[hH][tT][tT][pP][sS]?://[^/?#@]+", url):
            body["url"] = "https://1.1.1.1/chime"  # public, and no DNS lookup
    elif key in (("POST", "/api/v1/destinations"), ("PUT", "/api/v1/destinations/{id}")):
        # A name for people (no control characters, not blank), and a destination URL in
        # one of the accepted forms, on a public address (no DNS lookup).
        if isinstance(body.get("name"), str) and 1 <= len(body["name"]) <= 80:
            body["name"] = "Phone"
        if isinstance(body.get("url"), str) and len(body["url"]) <= 2048:
            body["url"] = "ntfys://1.1.1.1/chime-schemathesis"
    elif key == ("PUT", "/api/v1/me"):
        _profile_body(body)
    elif key == ("POST", "/api/v1/tasks/{id}/occurrences/{dueAt}/snooze"):
        # A snooze ends after now and within 366 days.
        if isinstance(body.get("until"), str) and re.match(r"^\d{4}-\d\d-\d\dT", body["until"]):
            at = datetime.now(timezone.utc) + timedelta(hours=1)
            body["until"] = at.replace(microsecond=0).isoformat().replace("+00:00", "Z")
    elif key == ("POST", "/api/v1/tasks/quick"):
        # A line of English in the quick-add grammar, and a zone that exists.
        if isinstance(body.get("text"), str) and 1 <= len(body["text"]) <= 500:
            body["text"] = ["Call mom tomorrow at 9", "Rent on the 1st of every month",
                            "Stretch in 20 minutes"][len(body["text"]) % 3]
        if isinstance(body.get("timeZone"), str):
            body["timeZone"] = ZONES[len(body["timeZone"]) % len(ZONES)]
    elif key == ("POST", "/api/v1/tasks/{id}/occurrences/{dueAt}/move"):
        # A move goes to an instant after now.
        if isinstance(body.get("to"), str) and re.match(r"^\d{4}-\d\d-\d\dT", body["to"]):
            body["to"] = _future()
    elif key == ("POST", "/api/v1/tasks/{id}/occurrences"):
        # An added occurrence is after now and not one the task has: the tasks these tests
        # make are due at whole seconds, so half a second past one never is.
        if isinstance(body.get("at"), str) and re.match(r"^\d{4}-\d\d-\d\dT", body["at"]):
            at = datetime.now(timezone.utc) + timedelta(days=400, hours=1)
            body["at"] = at.replace(microsecond=500_000).isoformat().replace("+00:00", "Z")
    elif key == ("POST", "/api/v1/tasks/import"):
        # A calendar file has a grammar JSON Schema does not state: any string becomes one.
        if isinstance(body.get("calendar"), str):
            body["calendar"] = CALENDAR
        if isinstance(body.get("timeZone"), str):
            body["timeZone"] = ZONES[len(body["timeZone"]) % len(ZONES)]
    elif key == ("POST", "/api/v1/push/subscriptions"):
        endpoint = body.get("endpoint")
        if isinstance(endpoint, str) and len(endpoint) <= 2048 and re.match(r"^https://[^/?#@]+", endpoint):
            body["endpoint"] = "https://1.1.1.1/push/abc"  # public, and no DNS lookup
        keys = body.get("keys")
        if isinstance(keys, dict):
            if isinstance(keys.get("p256dh"), str) and re.fullmatch(r"[A-Za-z0-9_-]{86}[AEIMQUYcgkosw048]", keys["p256dh"]):
                keys["p256dh"] = os.environ["CHIME_ST_P256DH"]
            if isinstance(keys.get("auth"), str) and re.fullmatch(r"[A-Za-z0-9_-]{21}[AQgw]", keys["auth"]):
                keys["auth"] = os.environ["CHIME_ST_AUTH"]

def _profile_body(body):
    if isinstance(body.get("timeZone"), str):
        body["timeZone"] = "Europe/Berlin"
    if isinstance(body.get("email"), str):
        body["email"] = "someone@example.com"
    if isinstance(body.get("phone"), str):
        body["phone"] = "+14075551212"
    windows = body.get("quietHours")
    if isinstance(windows, list):
        for window in windows:
            if not isinstance(window, dict):
                continue
            days = window.get("days")
            if isinstance(days, list) and days and all(isinstance(d, str) for d in days):
                window["days"] = ["mon", "sat"]
            # `from` and `to` that match the schema's pattern: a time that exists, not equal.
            for key, value in (("from", "22:00"), ("to", "07:00")):
                if isinstance(window.get(key), str) and re.fullmatch(r"[0-2][0-9]:[0-5][0-9]", window[key]):
                    window[key] = value


FIELD_STATUSES = {400, 413, 422}


@schemathesis.check
def problem_json_names_the_field(ctx, response, case):
    """Every 4xx is problem+json; 400, 413 and 422 name the refused field."""
    status = response.status_code
    if not 400 <= status < 500:
        return None
    content_type = ";".join(response.headers.get("content-type", []))
    if not content_type.startswith("application/problem+json"):
        raise AssertionError(f"a {status} is {content_type!r}, not application/problem+json")
    try:
        problem = json.loads(response.content)
    except ValueError as e:
        raise AssertionError(f"a {status} problem is not JSON: {e}") from None
    if not isinstance(problem, dict) or problem.get("status") != status:
        raise AssertionError(f"a {status} problem does not carry its status: {problem!r}")
    for member in ("type", "title", "detail"):
        if not isinstance(problem.get(member), str):
            raise AssertionError(f"a {status} problem has no {member!r}: {problem!r}")
    if status in FIELD_STATUSES:
        errors = problem.get("errors")
        if not errors or not all(
            isinstance(e, dict) and isinstance(e.get("pointer"), str) and e.get("detail")
            for e in errors
        ):
            raise AssertionError(f"a {status} problem names no field: {problem!r}")
    return None
