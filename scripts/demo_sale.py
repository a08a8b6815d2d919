#!/usr/bin/python3
"""The demo sale's buyers and operator, against a running seckilld and the Alipay
emulator (scripts/demo.sh starts everything and calls this).

An operator creates an activity and publishes it; at the start a burst of buyers
reserves at once; some buyers confirm and pay through the emulator, some confirm and
never pay, some never confirm; unpaid orders time out and their units go back. At the
end a summary per item checks the invariants of SPEC §3 in MariaDB and Redis terms
that the admin API shows: units reserved + units left = initial stock, paid + closed
+ open orders = units sold, nothing oversold.
"""
import argparse
import concurrent.futures
import json
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


def call(method, url, token=None, body=None, headers=None, form=None):
    data, hdrs = None, dict(headers or {})
    if token:
        hdrs["Authorization"] = "Bearer " + token
    if body is not None:
        data = json.dumps(body).encode()
        hdrs["Content-Type"] = "application/json"
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        hdrs["Content-Type"] = "application/x-www-form-urlencoded"
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            text = r.read().decode()
            return r.status, (json.loads(text) if text.startswith(("{", "[")) else text)
    except urllib.error.HTTPError as e:
        text = e.read().decode()
        try:
            return e.code, json.loads(text)
        except ValueError:
            return e.code, text


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--client", default="http://127.0.0.1:8080")
    ap.add_argument("--admin", default="http://127.0.0.1:8081")
    ap.add_argument("--alipay", default="http://127.0.0.1:8090")
    ap.add_argument("--admin-token", required=True)
    ap.add_argument("--mint", required=True, help="path of seckill-mint-token")
    ap.add_argument("--config", required=True, help="the daemon's config (for the JWT secret)")
    ap.add_argument("--buyers", type=int, default=1500)
    ap.add_argument("--timeout", type=float, default=20, help="the daemon's order_timeout, seconds")
    a = ap.parse_args()

    def admin(method, path, body=None):
        return call(method, a.admin + path, a.admin_token, body)

    print("== an operator creates the activity and publishes it (sale opens in 3 s)")
    start = time.time() + 3
    st, act = admin("POST", "/admin/v1/activities", {
        "name": "Demo flash sale 秒杀", "starts_at": iso(start), "ends_at": iso(start + 600),
        "items": [
            {"sku": "PHONE-X", "title": "秒杀手机 X", "price_cents": 399900, "seckill_price_cents": 99900,
             "stock": 300, "per_user_limit": 1},
            {"sku": "EARBUDS", "title": "Earbuds", "price_cents": 59900, "seckill_price_cents": 9900,
             "stock": 200, "per_user_limit": 2},
        ]})
    assert st == 201, (st, act)
    aid = act["id"]
    items = [(it["id"], it["sku"], it["stock"]) for it in act["items"]]
    st, pub = admin("POST", "/admin/v1/activities/%d/publish" % aid)
    assert st == 200, (st, pub)
    print("activity %d %s, items %s" % (aid, pub["state"], ", ".join("%d %s x%d" % i for i in items)))

    tokens = subprocess.run([a.mint, "-c", a.config, "-u", "1", "-n", str(a.buyers), "-t", "3600"],
                            check=True, capture_output=True, text=True).stdout.split()
    while time.time() < start:
        time.sleep(0.05)

    print("== %d buyers press the button at once" % a.buyers)

    def buy(i):
        item = items[i % 2]
        st, r = call("POST", a.client + "/api/v1/seckill", tokens[i], {"activity_id": aid, "item_id": item[0]})
        return i, item[0], st, r

    t0 = time.time()
    results = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=64) as ex:
        for res in ex.map(buy, range(a.buyers)):
            results.append(res)
    dt = time.time() - t0
    won = [(i, item, r["order_no"]) for i, item, st, r in results if st == 200]
    codes = {}
    for _, _, st, r in results:
        key = "reserved" if st == 200 else (r["error"]["code"] if isinstance(r, dict) and "error" in r else str(st))
        codes[key] = codes.get(key, 0) + 1
    print("%d answers in %.2f s (%.0f/s): %s" % (len(results), dt, len(results) / dt,
                                                ", ".join("%s %d" % kv for kv in sorted(codes.items()))))

    print("== the order pipeline writes every reservation to MariaDB")
    deadline = time.time() + 30
    pending = list(won)
    while pending and time.time() < deadline:
        i, _, no = pending[-1]
        st, o = call("GET", a.client + "/api/v1/orders/" + no, tokens[i])
        if st == 200 and o.get("status") == "created":
            pending.pop()
        else:
            time.sleep(0.1)
    print("all %d orders are in MariaDB" % len(won) if not pending else "%d orders still missing" % len(pending))

    print("== buyers confirm and pay: 1 in 3 pays, 1 in 3 confirms but never pays, the rest walk away")
    paid, abandoned = [], []
    for k, (i, item, no) in enumerate(won):
        if k % 3 == 2:
            continue
        st, c = call("POST", a.client + "/api/v1/orders/%s/confirm" % no, tokens[i],
                     headers={"Idempotency-Key": "demo-%s" % no})
        if st != 200:
            print("confirm %s: %d %s" % (no, st, c))
            continue
        if k % 3 == 0:
            call("POST", a.alipay + "/emulator/scan", form={"out_trade_no": no})
            st, p = call("POST", a.alipay + "/emulator/pay", form={"out_trade_no": no})
            if st == 200:
                paid.append(no)
        else:
            abandoned.append(no)
    print("%d confirmed and paid at the gateway, %d confirmed and abandoned" % (len(paid), len(abandoned)))

    print("== waiting for the notifies and for order_timeout (%.0f s) to close the unpaid orders" % a.timeout)
    deadline = time.time() + a.timeout + 30
    while time.time() < deadline:
        st, stats = admin("GET", "/admin/v1/stats")
        by = stats.get("orders_by_status", {}) if st == 200 else {}
        open_orders = by.get("created", 0) + by.get("paying", 0) + by.get("reserved", 0)
        if by.get("paid", 0) >= len(paid) and open_orders == 0:
            break
        time.sleep(1)

    print("== summary")
    st, stock = admin("GET", "/admin/v1/activities/%d/stock" % aid)
    st2, stats = admin("GET", "/admin/v1/stats")
    by = stats["orders_by_status"]
    ok = True
    for it in stock["items"]:
        sold = sum(1 for _, item, _ in won if item == it["item_id"])
        line = ("item %d %-8s initial %4d  sold %4d  paid %4d  back in stock %4d  remaining %4d  reserved now %4d"
                % (it["item_id"], it["sku"], it["initial"], sold, it["paid"], sold - it["reserved"],
                   it["remaining"], it["reserved"]))
        print(line)
        if it["reserved"] + it["remaining"] != it["initial"] or it["remaining"] < 0:
            ok = False
        if it["reserved"] != it["paid"] + 0 and by.get("created", 0) + by.get("paying", 0) == 0:
            ok = False
    print("orders: " + ", ".join("%s %d" % kv for kv in by.items()))
    print("notifies answered by the daemon: %s" % (
        len([n for n in call("GET", a.alipay + "/emulator/notifies")[1] if n.get("body") == "success"])))
    if len(paid) != by.get("paid", 0):
        print("paid orders in MariaDB (%d) != payments made (%d)" % (by.get("paid", 0), len(paid)))
        ok = False
    print("invariants: %s" % ("OK: reserved + remaining = initial for every item; every paid unit is an order; "
                              "every unpaid unit went back" if ok else "VIOLATED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
