#!/usr/bin/env python3
"""The final table of scripts/bench.sh, from its results file.

    report.py RESULTS [--strict]

RESULTS has one line per measurement, "key=value" pairs separated by spaces; the
keys are those of seckill.lua's BENCH line plus phase, mode and conns written by
bench.sh (with the plugin's reserve_calls, reserve_batched and mean_batch in the
phases on an item), and the redis-benchmark and RSS lines (see bench.sh). This
prints the table (phase, connections, req/s, reservations/s, mean batch, p50, p99,
errors, ratio to the ceiling, target, met), the closed-loop floor of the latency
(Little's law), what appendfsync always costs, the reservation phases against the
redis-benchmark ceiling, where the CPU time goes, and the daemon's memory. With
--strict the exit status is 3 when a target is missed (1 for an unreadable file).

A reservation phase's reservations/s are its 200 answers per second; a
redis-benchmark run's are its scripts per second times the reservations per call
(B). Its mean batch is the plugin's reserve_batched / reserve_calls during the
phase (the daemon's /metrics), a redis-benchmark run's is B.

Errors: wrk's transport errors (connect, read, write, timeout) plus every answer
the phase does not expect: on /healthz anything but 200; while reserving anything
but 200 reserved and 409 limit_reached; in the sold-out phase anything but 409
sold_out.
"""
import os
import sys

RESERVE_RATIO = 0.6   # reservations / healthz, same connections
SOLDOUT_RATIO = 0.9   # sold-out answers / healthz, same connections
P99_MS = 5.0          # reservations at 256 connections
P99_CONNS = 256
RSS_MIB = 64          # with the idle connections open


def load(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            row = {}
            for pair in line.split():
                k, _, v = pair.partition("=")
                row[k] = v
            rows.append(row)
    return rows


def num(row, key):
    return float(row.get(key, 0) or 0)


def transport(row):
    return sum(int(row.get(k, 0)) for k in ("connect", "read", "write", "timeout"))


def unexpected(row):
    classes = ("s200", "s409_limit", "s409_sold", "s409_other", "s4xx", "s5xx", "sother")
    expected = {"get": ("s200",), "reserve": ("s200", "s409_limit"), "soldout": ("s409_sold",)}[row["mode"]]
    return sum(int(row.get(k, 0)) for k in classes if k not in expected)


def fmt_rps(v):
    return f"{v:,.0f}"


def reservations_per_s(row):
    """Reservations per second: 200 answers of a wrk phase, scripts x B of redis-benchmark."""
    if row.get("mode") == "redis":  # results of runs before the batch: one reservation per call
        return num(row, "res_rps") if "res_rps" in row else num(row, "rps") * float(row.get("batch", 1))
    secs = num(row, "duration_s")
    return num(row, "s200") / secs if secs > 0 else 0.0


def batch_text(row):
    if row.get("mode") == "redis":
        return row.get("batch", "-")
    if num(row, "reserve_calls") > 0:
        return f"{num(row, 'reserve_batched') / num(row, 'reserve_calls'):.1f}"
    return "-"


def largest_batch(redis, session):
    """The redis-benchmark row of a session ("always", "nofsync") with the most reservations per call."""
    rows = [r for p, r in redis.items() if p in (f"redis_{session}", f"redis_{session}_batch")]
    return max(rows, key=lambda r: num(r, "batch"), default=None)


def main():
    if len(sys.argv) not in (2, 3) or (len(sys.argv) == 3 and sys.argv[2] != "--strict"):
        print("usage: report.py RESULTS [--strict]", file=sys.stderr)
        return 2
    try:
        rows = load(sys.argv[1])
    except OSError as e:
        print(f"report.py: {e}", file=sys.stderr)
        return 1

    healthz = {r["conns"]: r for r in rows if r.get("phase") == "healthz"}
    redis = {r["phase"]: r for r in rows if r.get("mode") == "redis"}
    table = []
    missed = []

    def add(label, conns, rps, res, batch, p50, p99, errors, ratio, target, met):
        table.append((label, conns, rps, res, batch, p50, p99, errors, ratio, target, met))
        if met == "no":
            missed.append(f"{label} at {conns}: {target}")

    names = {
        "healthz": "GET /healthz (ceiling)",
        "reserve": "reserve, appendfsync always",
        "soldout": "sold out (local answer)",
        "reserve_nofsync": "reserve, appendfsync no",
    }
    for phase in ("healthz", "reserve", "soldout", "reserve_nofsync"):
        for r in (r for r in rows if r.get("phase") == phase):
            conns = r["conns"]
            rps = num(r, "rps")
            p50, p99 = num(r, "p50_us") / 1000, num(r, "p99_us") / 1000
            errors = transport(r) + unexpected(r)
            ceiling = healthz.get(conns)
            ratio = rps / num(ceiling, "rps") if ceiling and num(ceiling, "rps") > 0 else None
            ratio_text = f"{ratio:.2f} x healthz" if ratio is not None else "-"
            target, met = "-", "-"
            if phase == "reserve":
                goals = [f">= {RESERVE_RATIO} x healthz"]
                ok = ratio is not None and ratio >= RESERVE_RATIO
                if int(conns) == P99_CONNS:
                    goals.append(f"p99 <= {P99_MS:g} ms")
                    ok = ok and p99 <= P99_MS
                target, met = ", ".join(goals), "yes" if ok else "no"
            elif phase == "soldout":
                target = f">= {SOLDOUT_RATIO} x healthz"
                met = "yes" if ratio is not None and ratio >= SOLDOUT_RATIO else "no"
            elif phase == "reserve_nofsync":
                target = "(fsync cost)"
            res = fmt_rps(reservations_per_s(r)) if phase in ("reserve", "soldout", "reserve_nofsync") else "-"
            add(names[phase], conns, fmt_rps(rps), res, batch_text(r), f"{p50:.2f}", f"{p99:.2f}", str(errors),
                ratio_text, target, met)
    for phase, label in (("redis_always", "always"), ("redis_always_batch", "always"),
                         ("redis_nofsync", "no"), ("redis_nofsync_batch", "no")):
        r = redis.get(phase)
        if r:
            add(f"redis-benchmark reserve, {label}, B={r.get('batch', '1')}", r["conns"], fmt_rps(num(r, "rps")),
                fmt_rps(reservations_per_s(r)), batch_text(r), f"{num(r, 'p50_us') / 1000:.2f}",
                f"{num(r, 'p99_us') / 1000:.2f}", r.get("errors", "0"), "(ceiling)", "-", "-")

    head = ("phase", "conns", "req/s", "res/s", "batch", "p50 ms", "p99 ms", "errors", "ratio", "target", "met")
    widths = [max(len(str(row[i])) for row in table + [head]) for i in range(len(head))]
    right = {1, 2, 3, 4, 5, 6, 7}

    def line(row):
        return "  ".join(str(c).rjust(w) if i in right else str(c).ljust(w) for i, (c, w) in enumerate(zip(row, widths)))

    print(line(head))
    print("  ".join("-" * w for w in widths))
    for row in table:
        print(line(row))
    print("req/s: answers (redis-benchmark: scripts) per second; res/s: reservations per second (200 answers; "
          "redis-benchmark: scripts/s x B);")
    print("batch: mean reservations per reserve script call the plugin sent during the phase (its /metrics "
          "counters), B for redis-benchmark")

    # The closed-loop floor: wrk keeps every connection busy, so by Little's law the
    # mean latency is connections / throughput, whatever the daemon does inside.
    print()
    print(f"closed-loop floor (Little's law: with C connections always busy, mean latency = C / throughput); "
          f"a mean below {P99_MS:g} ms at {P99_CONNS} connections takes > {P99_CONNS * 1000 / P99_MS:,.0f} req/s:")
    for phase in ("healthz", "reserve", "reserve_nofsync"):
        for r in (r for r in rows if r.get("phase") == phase):
            rps = num(r, "rps")
            if rps > 0:
                c = int(r["conns"])
                print(f"  {names[phase]:<28} {c:>4}: {c} / {fmt_rps(rps)} req/s = {c * 1000 / rps:.2f} ms mean latency"
                      f" (measured p99 {num(r, 'p99_us') / 1000:.2f} ms)")

    # What appendfsync always costs: the same phase against both servers.
    print()
    print("appendfsync always vs no (same daemon, same load):")
    for r in (r for r in rows if r.get("phase") == "reserve"):
        n = next((x for x in rows if x.get("phase") == "reserve_nofsync" and x["conns"] == r["conns"]), None)
        if n and num(n, "rps") > 0:
            print(f"  reserve at {r['conns']:>4} connections: {fmt_rps(num(r, 'rps'))} vs {fmt_rps(num(n, 'rps'))} req/s "
                  f"({(num(r, 'rps') / num(n, 'rps') - 1) * 100:+.0f} %), p99 {num(r, 'p99_us') / 1000:.2f} vs "
                  f"{num(n, 'p99_us') / 1000:.2f} ms")
    for suffix in ("", "_batch"):
        a, n = redis.get("redis_always" + suffix), redis.get("redis_nofsync" + suffix)
        if a and n and num(n, "rps") > 0:
            print(f"  redis-benchmark reserve script, {'B=' + a.get('batch', '1') + ':':<6} {fmt_rps(num(a, 'rps'))} vs "
                  f"{fmt_rps(num(n, 'rps'))} scripts/s ({(num(a, 'rps') / num(n, 'rps') - 1) * 100:+.0f} %), "
                  f"{fmt_rps(reservations_per_s(a))} vs {fmt_rps(reservations_per_s(n))} reservations/s")

    # The daemon against the Redis ceiling, both counted in reservations, the ceiling
    # at its larger batch (the daemon batches too).
    print()
    print("reservations against the redis-benchmark ceiling (its larger B), same Redis:")
    for phase, session in (("reserve", "always"), ("reserve_nofsync", "nofsync")):
        ceiling = largest_batch(redis, session)
        if not ceiling or reservations_per_s(ceiling) <= 0:
            continue
        for r in (r for r in rows if r.get("phase") == phase):
            print(f"  {names[phase]:<28} {r['conns']:>4}: {fmt_rps(reservations_per_s(r))} reservations/s "
                  f"(mean batch {batch_text(r)}) = {reservations_per_s(r) / reservations_per_s(ceiling):.2f} x "
                  f"redis-benchmark B={ceiling.get('batch', '1')} ({fmt_rps(reservations_per_s(ceiling))} reservations/s)")

    # Where the time goes: CPU time per answer and cores kept busy, per process.
    print()
    print(f"CPU time per answer (us) and cores kept busy during each wrk phase ({os.cpu_count()} cores, shared with wrk):")
    for r in rows:
        if r.get("phase") not in names or "daemon_cpu_ms" not in r:
            continue
        n, secs = num(r, "requests"), num(r, "duration_s")
        if n <= 0 or secs <= 0:
            continue
        d, rd = num(r, "daemon_cpu_ms"), num(r, "redis_cpu_ms")
        rest = max(0.0, num(r, "busy_cpu_ms") - d - rd)
        print(f"  {names[r['phase']]:<28} {r['conns']:>4}: daemon {d * 1000 / n:6.1f} us/answer ({d / 1000 / secs:4.2f} cores)"
              f"  redis {rd * 1000 / n:6.1f} us/answer ({rd / 1000 / secs:4.2f} cores)"
              f"  wrk and the rest: {rest / 1000 / secs:4.2f} cores"
              + (f"  stolen by the hypervisor: {num(r, 'steal_ms') / 1000 / secs:4.2f} cores"
                 if num(r, "steal_ms") > 0 else ""))

    print()
    print("daemon memory:")
    for r in (r for r in rows if r.get("phase") == "rss"):
        mib = lambda k: num(r, k) / 1024
        ok = mib("rss_idle_kb") <= RSS_MIB and mib("rss_connected_kb") <= RSS_MIB
        print(f"  VmRSS before: {mib('rss_base_kb'):.1f} MiB; {r['conns']} connections open: "
              f"{mib('rss_connected_kb'):.1f} MiB")
        print(f"  {r['conns']} idle keep-alive connections (one request answered on each, one at a time): "
              f"{mib('rss_idle_kb'):.1f} MiB   target <= {RSS_MIB} MiB: {'yes' if ok else 'no'}")
        print(f"  after one request on all {r['conns']} at once (a burst): {mib('rss_burst_kb'):.1f} MiB "
              f"({'within' if mib('rss_burst_kb') <= RSS_MIB else 'above'} {RSS_MIB} MiB)")
        if not ok:
            missed.append(f"RSS with {r['conns']} idle connections <= {RSS_MIB} MiB")
    for r in (r for r in rows if r.get("phase") == "hwm"):
        print(f"  peak RSS (VmHWM) of the daemon, {r['session']} session: {num(r, 'hwm_kb') / 1024:.1f} MiB")

    print()
    if missed:
        print("targets missed: " + "; ".join(missed))
    else:
        print("targets: all met")
    return 3 if missed and len(sys.argv) == 3 else 0


if __name__ == "__main__":
    sys.exit(main())
