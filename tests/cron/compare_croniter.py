#!/usr/bin/env python3
"""Compares jobmgr's cron fire times with Debian's python3-croniter.

Usage: compare_croniter.py CRON_NEXT [--cases N] [--seed S] [--verbose]

Draws random expressions (values, ranges, steps, "a/s", lists, month and
day names, with and without a leading seconds field) and random start
times over 2020-2031 in UTC, Europe/Berlin and America/New_York, asks
cron_next (tests/cron/cron_next.c) and croniter for the next five fire
times, and compares them. A difference is explained only by one of the
named classes in REASONS, each checked, not assumed: the design
differences (day-rule, dow-a/s) by asking croniter again with an
expression that spells jobmgr's reading in croniter's terms; croniter's
bugs by their signature (dom-short-month: croniter finds the fire time
when started in its month; or-dom-never, dow-7-six-fields: by the same
rewrite); dst when the first difference is at most two hours and lies
within a day of a transition of the zone, never in UTC. Any other
difference fails the run.

Exit status: 0 when every difference is explained, 1 otherwise, 77 when
croniter (or zoneinfo) is missing.
"""
import argparse
import bisect
import datetime
import random
import subprocess
import sys

try:
    import zoneinfo
    from croniter import croniter
except ImportError as exc:
    print("compare_croniter: skipped, %s" % exc)
    sys.exit(77)

ZONES = ["UTC", "Europe/Berlin", "America/New_York"]
FROM_YEARS = (2020, 2031)
FIRES = 5
DAY = 86400

# croniter's daylight-saving errors move a fire by the offset change, or
# skip the second pass of a repeated hour and the hour after it.
MAX_DST_SHIFT_MS = 2 * 3600 * 1000
MONTH_DAYS = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]

REASONS = {
    "dom-short-month": "croniter bug: from a day past the last listed day a month has "
                       "(Feb 22 with '1,30'), it skips the next month's first listed days",
    "or-dom-never": "croniter bug: when both day fields are restricted and the day of "
                    "the month never comes (30 in February) it raises CroniterBadDateError "
                    "instead of firing on the days of the week",
    "day-rule": "croniter ORs the day fields when neither covers every value, "
                "Vixie cron when neither begins with '*'",
    "dow-a/s": "croniter runs a day of the week's 'a/s' on to 7 (Sunday again), "
               "jobmgr stops at Saturday",
    "dow-7-six-fields": "croniter bug: with six fields it does not read day 7 as "
                        "Sunday (and finds no date)",
    "dst": "croniter's daylight saving: it fires at local times a gap skips, with "
           "the old offset, and shifts the fire after a fall-back by the change",
}

# (lo, hi, names) per field, seconds first.
FIELDS = [
    (0, 59, None),
    (0, 59, None),
    (0, 23, None),
    (1, 31, None),
    (1, 12, ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]),
    (0, 6, ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]),
]


def value(rng, field):
    lo, hi, names = FIELDS[field]
    v = rng.randint(lo, hi)
    if names and rng.random() < 0.3:
        name = names[v - lo]
        return v, rng.choice([name, name.lower(), name.capitalize()])
    if field == 5 and v == 0 and rng.random() < 0.3:
        return 0, "7"
    return v, str(v)


def item(rng, field):
    lo, hi, _ = FIELDS[field]
    span = hi - lo + 1
    kind = rng.choice(["value", "value", "range", "star-step", "range-step", "start-step"])
    if kind == "value":
        return value(rng, field)[1]
    if kind == "star-step":
        return "*/%d" % rng.randint(1, span)
    a, at = value(rng, field)
    if field == 5 and at == "7":
        at = "0"  # "7-2" is reversed and "7/2" only Sunday: say them as 0
    if kind == "start-step":
        return "%s/%d" % (at, rng.randint(1, span))
    b = rng.randint(a, hi)
    names = FIELDS[field][2]
    bt = names[b - lo] if names and rng.random() < 0.3 else str(b)
    text = "%s-%s" % (at, bt)
    if kind == "range-step":
        text += "/%d" % rng.randint(1, span)
    return text


def field_text(rng, field):
    # Day and month fields are '*' more often, so the searches run long
    # enough to meet daylight-saving changes and month ends.
    star = {0: 0.3, 1: 0.2, 2: 0.3, 3: 0.5, 4: 0.6, 5: 0.6}[field]
    if rng.random() < star:
        return "*"
    return ",".join(item(rng, field) for _ in range(rng.choice([1, 1, 1, 2, 3])))


def expression(rng):
    with_seconds = rng.random() < 0.3
    first = 0 if with_seconds else 1
    return [field_text(rng, f) for f in range(first, 6)]


def values(field, text, as_croniter=False):
    """The set a field's text denotes, as jobmgr reads it (day 7 is 0,
    '*' and "a/s" stop at Saturday); or as croniter does (in the day of
    the week '*' and "a/s" run on to 7, and 7 is left as 7)."""
    lo, hi, names = FIELDS[field]

    def conv(p):
        return names.index(p.upper()) + lo if names and p.isalpha() else int(p)

    out = set()
    for it in text.split(","):
        base, _, step = it.partition("/")
        if base == "*":
            # croniter keeps a bare '*' as is; it expands '*/s' as 0-7/s.
            a, b = lo, (7 if field == 5 and as_croniter and step else hi)
        elif "-" in base:
            a, b = (conv(p) for p in base.split("-"))
            if field == 5 and b == 0 and a > 0:
                b = 7
        else:
            a = conv(base)
            b = max(a, 7 if field == 5 and as_croniter else hi) if step else a
        out.update(range(a, b + 1, int(step or 1)))
    if field == 5 and not as_croniter:
        out = {0 if v == 7 else v for v in out}
    return out


def croniter_expr(fields):
    """Ours is "[sec] min hour dom mon dow"; croniter 1.3 wants seconds last."""
    if len(fields) == 6:
        return " ".join(fields[1:] + fields[:1])
    return " ".join(fields)


def run_croniter(expr, zone, from_ms, day_or=True):
    tz = zoneinfo.ZoneInfo(zone)
    start = datetime.datetime.fromtimestamp(from_ms / 1000, tz=tz)
    try:
        it = croniter(expr, start, day_or=day_or)
        return ["%d" % round(it.get_next(float) * 1000) for _ in range(FIRES)]
    except Exception as exc:  # croniter raises several kinds
        return ["error " + type(exc).__name__]


class Transitions:
    """A zone's offset changes over the years compared, found by scanning."""

    def __init__(self, zone):
        tz = zoneinfo.ZoneInfo(zone)
        self.at = []

        def off(t):
            return datetime.datetime.fromtimestamp(t, tz).utcoffset()

        t = int(datetime.datetime(FROM_YEARS[0] - 1, 1, 1, tzinfo=datetime.timezone.utc).timestamp())
        end = int(datetime.datetime(FROM_YEARS[1] + 10, 1, 1, tzinfo=datetime.timezone.utc).timestamp())
        step = 6 * 3600
        while t < end:
            if off(t) != off(t + step):
                lo, hi = t, t + step
                while hi - lo > 1:
                    mid = (lo + hi) // 2
                    if off(mid) == off(lo):
                        lo = mid
                    else:
                        hi = mid
                self.at.append(hi)
            t += step

    def between(self, a, b):
        i = bisect.bisect_left(self.at, a)
        return i < len(self.at) and self.at[i] <= b


def explain(fields):
    """The known reasons croniter reads `fields` otherwise than jobmgr, and
    the expression and day_or that make croniter read them as jobmgr does."""
    first = 1 if len(fields) == 5 else 0
    dom_i, dow_i = 3 - first, 5 - first
    new = list(fields)
    reasons = []
    dow = values(5, fields[dow_i])
    theirs = values(5, fields[dow_i], as_croniter=True)
    if {0 if v == 7 else v for v in theirs} != dow:
        reasons.append("dow-a/s")
    if len(fields) == 6 and 7 in theirs:
        reasons.append("dow-7-six-fields")
    if reasons:
        new[dow_i] = ",".join(str(v) for v in sorted(dow))
    # The day rule, on the sets both now agree on.
    vixie_or = not fields[dom_i].startswith("*") and not fields[dow_i].startswith("*")
    dom_all = values(3, fields[dom_i]) == set(range(1, 32))
    dow_all = dow == set(range(0, 7))
    day_or = True
    months = values(4, fields[4 - first])
    dom_never = all(d > max(MONTH_DAYS[m - 1] for m in months) for d in values(3, fields[dom_i]))
    if vixie_or and dom_never:
        # The days of the month never come: Vixie fires on the weekdays.
        reasons.append("or-dom-never")
        new[dom_i] = "*"
    elif vixie_or != (not dom_all and not dow_all):
        reasons.append("day-rule")
        if vixie_or:
            # Vixie ORs with a field that covers everything: every day.
            new[dom_i] = new[dow_i] = "*"
        else:
            day_or = False
    return reasons, new, day_or


def short_month_before(fields, zone, prev_ms, fire_ms):
    """Whether `prev_ms` lies in an earlier month than `fire_ms` that lacks
    one of the listed days of the month."""
    tz = zoneinfo.ZoneInfo(zone)
    p = datetime.datetime.fromtimestamp(prev_ms / 1000, tz)
    f = datetime.datetime.fromtimestamp(fire_ms / 1000, tz)
    if (p.year, p.month) >= (f.year, f.month):
        return False
    days = MONTH_DAYS[p.month - 1] - (p.month == 2 and not (p.year % 4 == 0 and (
        p.year % 100 != 0 or p.year % 400 == 0)))
    dom = values(3, fields[3 - (1 if len(fields) == 5 else 0)])
    return max(dom) > days


def skipped_month_start(fields, zone, fire_ms, day_or):
    """Whether croniter, started just before the month of `fire_ms`
    (local), does find that fire time: then it only skipped it when it
    came from the month before."""
    tz = zoneinfo.ZoneInfo(zone)
    local = datetime.datetime.fromtimestamp(fire_ms / 1000, tz)
    first = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    start_ms = int(first.timestamp()) * 1000 - 1000
    if start_ms >= fire_ms or local.day > 28:
        return False
    return run_croniter(croniter_expr(fields), zone, start_ms, day_or)[0] == str(fire_ms)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cron_next")
    ap.add_argument("--cases", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=20240331)
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    rng = random.Random(args.seed)

    lo = int(datetime.datetime(FROM_YEARS[0], 1, 1, tzinfo=datetime.timezone.utc).timestamp())
    hi = int(datetime.datetime(FROM_YEARS[1], 12, 31, tzinfo=datetime.timezone.utc).timestamp())
    cases = []
    for _ in range(args.cases):
        fields = expression(rng)
        zone = rng.choice(ZONES)
        from_ms = rng.randint(lo, hi) * 1000
        if rng.random() < 0.2:
            from_ms += rng.randint(1, 999)
        cases.append((fields, zone, from_ms))

    stdin = "".join("%s\t%s\t%d\n" % (" ".join(f), z, t) for f, z, t in cases)
    ours = subprocess.run([args.cron_next], input=stdin, capture_output=True, text=True,
                          check=True).stdout.splitlines()
    if len(ours) != len(cases):
        print("compare_croniter: cron_next answered %d of %d lines" % (len(ours), len(cases)))
        return 1

    transitions = {z: Transitions(z) for z in ZONES if z != "UTC"}
    counts = {"same": 0, "unexplained": 0}
    shown = 0
    for (fields, zone, from_ms), line in zip(cases, ours):
        expr = " ".join(fields)
        mine = line.split()[1:] if line.startswith("ok ") else ["error"]
        theirs = run_croniter(croniter_expr(fields), zone, from_ms)
        if mine == theirs or (mine[0] == "error" and theirs[0].startswith("error")):
            counts["same"] += 1
            continue
        reasons, new, day_or = explain(fields)
        if reasons:
            theirs = run_croniter(croniter_expr(new), zone, from_ms, day_or)
        cls = "+".join(reasons) if reasons and mine == theirs else None
        if cls is None and mine[0] != "error" and not theirs[0].startswith("error"):
            i = next(k for k in range(FIRES) if mine[k] != theirs[k])
            prev = from_ms if i == 0 else int(mine[i - 1])
            a, b = int(mine[i]), int(theirs[i])
            if a < b and short_month_before(fields, zone, prev, a) and \
                    skipped_month_start(new, zone, a, day_or):
                cls = "+".join(reasons + ["dom-short-month"])
            elif zone != "UTC" and abs(a - b) <= MAX_DST_SHIFT_MS and \
                    transitions[zone].between(prev // 1000 - DAY, max(a, b) // 1000):
                cls = "+".join(reasons + ["dst"])
        if cls is None:
            cls = "unexplained"
            if shown < 20:
                print("DIFF %r %s from %d\n  ours:     %s\n  croniter: %s" % (
                    expr, zone, from_ms, " ".join(mine), " ".join(theirs)))
                shown += 1
        elif args.verbose:
            print("%s: %r %s from %d" % (cls, expr, zone, from_ms))
        counts[cls] = counts.get(cls, 0) + 1

    print("compare_croniter: %d cases, seed %d" % (len(cases), args.seed))
    print("  %-44s %6d" % ("same", counts.pop("same")))
    unexplained = counts.pop("unexplained")
    for cls in sorted(counts):
        print("  %-44s %6d  excluded" % (cls, counts[cls]))
    print("  %-44s %6d" % ("unexplained", unexplained))
    print("why the excluded differ:")
    for name in sorted(REASONS):
        print("  %-18s %s" % (name, REASONS[name]))
    counts["unexplained"] = unexplained
    return 1 if counts["unexplained"] else 0


if __name__ == "__main__":
    sys.exit(main())
