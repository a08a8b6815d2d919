#!/usr/bin/python3
"""Protocol test of scripts/alipay-emulator.py.

Starts the emulator on a free loopback port with freshly generated keys and talks
to it as an Alipay client would, with a request signer and a response/notify
verifier of its own (written here from ../shared/reference/alipay.md, not taken
from the emulator). A small HTTP server in this process receives the notifies.

    /usr/bin/python3 tests/alipay_emulator_test.py

Ends with a line "N passed, M failed"; exit status 0 only when nothing failed.
"""

import base64
import http.client
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EMULATOR = os.path.join(ROOT, "scripts", "alipay-emulator.py")
APP_ID = "2021000122600001"
RETRY_MS = 100
READY_RE = re.compile(r"^alipay emulator listening on 127\.0\.0\.1:(\d+)$")
FORM = "application/x-www-form-urlencoded;charset=utf-8"

KEYS = {}
TMP = None


def setUpModule():
    global TMP
    TMP = tempfile.mkdtemp(prefix="alipay-emu-test-")
    for name in ("app", "alipay", "stranger"):
        KEYS[name] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    # The app's public key as PKCS#1 PEM, Alipay's private key as PKCS#8 PEM: both
    # forms developers download from Alipay's key tool.
    write(os.path.join(TMP, "app_pub.pem"), KEYS["app"].public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.PKCS1))
    write(os.path.join(TMP, "alipay_priv.pem"), KEYS["alipay"].private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    # The same keys as the bare base64 that Alipay's console shows.
    write(os.path.join(TMP, "app_pub.txt"), base64.b64encode(KEYS["app"].public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)))
    write(os.path.join(TMP, "alipay_priv.txt"), base64.b64encode(KEYS["alipay"].private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())))
    write(os.path.join(TMP, "garbage.pem"), b"-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n")


def tearDownModule():
    shutil.rmtree(TMP, ignore_errors=True)


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


# ---------------------------------------------------------------------------
# The client side, written from the reference


def china_time(offset_s=0):
    return (datetime.now(timezone.utc) + timedelta(hours=8, seconds=offset_s)).strftime("%Y-%m-%d %H:%M:%S")


def to_sign(params, skip):
    names = sorted(n for n in params if n not in skip and params[n] not in (None, ""))
    return "&".join(n + "=" + params[n] for n in names)


def rsa2(key, text):
    return base64.b64encode(key.sign(text.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())).decode()


def verifies(text, sign, key=None):
    key = key or KEYS["alipay"].public_key()
    try:
        key.verify(base64.b64decode(sign), text.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
        return True
    except (InvalidSignature, ValueError):
        return False


def request(api, biz, key=None, **common):
    """A signed request's parameters; common overrides the common parameters (None drops one)."""
    p = {"app_id": APP_ID, "method": api, "format": "JSON", "charset": "utf-8", "sign_type": "RSA2",
         "timestamp": china_time(), "version": "1.0",
         "biz_content": biz if isinstance(biz, str) else json.dumps(biz, ensure_ascii=False)}
    for k, v in common.items():
        if v is None:
            p.pop(k, None)
        else:
            p[k] = v
    p["sign"] = rsa2(key or KEYS["app"], to_sign(p, ("sign",)))
    return p


def exact_value(text, key):
    """The exact characters of the value of "key" in a response body."""
    marker = '"%s":' % key
    start = text.index(marker) + len(marker)
    _, end = json.JSONDecoder().raw_decode(text, start)
    return text[start:end]


def http_call(port, method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def wait_for(pred, timeout=5.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    return pred()


# ---------------------------------------------------------------------------
# The emulator process and the notify receiver


class Emulator:
    def __init__(self, data, app_pub="app_pub.pem", alipay_priv="alipay_priv.pem", extra=()):
        self.data = data
        self.log_path = os.path.join(TMP, "emulator-%d.log" % id(self))
        self.args = ["/usr/bin/python3", EMULATOR, "--port", "0",
                     "--data", data, "--app-id", APP_ID, "--app-public-key", os.path.join(TMP, app_pub),
                     "--alipay-private-key", os.path.join(TMP, alipay_priv), "--notify-retry-ms", str(RETRY_MS),
                     "--verbose"] + list(extra)
        self.proc = None
        self.port = None
        self.ready_line = None

    def start(self):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=self.log)
        ready, _, _ = select.select([self.proc.stdout], [], [], 15)
        line = self.proc.stdout.readline().decode().rstrip("\n") if ready else ""
        m = READY_RE.match(line)
        if not m:
            self.stop()
            raise AssertionError("emulator did not start (%r); log:\n%s" % (line, self.log_text()))
        self.ready_line = line
        self.port = int(m.group(1))
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.proc.stdout.close()
        self.log.close()

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")[-4000:]


class Receiver:
    """The merchant's notify endpoint. answers[path] lists the bodies to answer in
    turn (then "success"); every request is recorded."""

    def __init__(self):
        self.lock = threading.Lock()
        self.got = []
        self.answers = {}
        outer = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with outer.lock:
                    outer.got.append({"path": self.path, "body": body, "ctype": self.headers.get("Content-Type"),
                                      "at": time.time()})
                    queue = outer.answers.get(self.path, [])
                    answer = queue.pop(0) if queue else "success"
                data = answer.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def received(self, path):
        with self.lock:
            return [g for g in self.got if g["path"] == path]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


_counter = [0]


def new_otn(prefix="T"):
    _counter[0] += 1
    return "%s%d%s_%d" % (prefix, os.getpid(), os.urandom(3).hex(), _counter[0])


class Base(unittest.TestCase):
    emu = None
    rx = None

    def gateway(self, params, query=None, emu=None):
        path = "/gateway.do" + ("?" + urllib.parse.urlencode(query) if query else "")
        status, hdr, data = http_call((emu or self.emu).port, "POST", path,
                                      urllib.parse.urlencode(params).encode(), {"Content-Type": FORM})
        self.assertEqual(status, 200)
        self.assertTrue(hdr["content-type"].startswith("application/json"), hdr["content-type"])
        return data.decode("utf-8")

    def answer(self, text, key, signed=True):
        doc = json.loads(text)
        self.assertIn(key, doc, text)
        if signed:
            self.assertIn("sign", doc, text)
            self.assertTrue(verifies(exact_value(text, key), doc["sign"]), "response signature: " + text)
        else:
            self.assertNotIn("sign", doc, text)
        return doc[key]

    def call(self, api, biz, signed=True, emu=None, key=None, **common):
        text = self.gateway(request(api, biz, key=key, **common), emu=emu)
        return self.answer(text, api.replace(".", "_") + "_response", signed)

    def assertBiz(self, r, sub_code):
        self.assertEqual((r["code"], r["msg"], r.get("sub_code")), ("40004", "Business Failed", sub_code), r)
        self.assertTrue(r.get("sub_msg"), r)

    def control(self, what, emu=None, **form):
        return http_call((emu or self.emu).port, "POST", "/emulator/" + what,
                         urllib.parse.urlencode(form).encode(), {"Content-Type": FORM})

    def pay(self, otn, emu=None, **form):
        status, _, data = self.control("pay", emu=emu, out_trade_no=otn, **form)
        self.assertEqual(status, 200, data)
        return json.loads(data)

    def trade(self, otn, emu=None):
        status, _, data = http_call((emu or self.emu).port, "GET", "/emulator/trades/" + urllib.parse.quote(otn))
        return status, (json.loads(data) if status == 200 else None)

    def notifies(self, otn, emu=None):
        _, _, data = http_call((emu or self.emu).port, "GET",
                               "/emulator/notifies?" + urllib.parse.urlencode({"out_trade_no": otn}))
        return json.loads(data)

    def precreate(self, otn, amount="10.00", subject="seckill item", notify=None, emu=None, **biz):
        b = {"out_trade_no": otn, "total_amount": amount, "subject": subject}
        b.update(biz)
        common = {"notify_url": self.rx.url(notify)} if notify else {}
        r = self.call("alipay.trade.precreate", b, emu=emu, **common)
        self.assertEqual(r["code"], "10000", r)
        return r


class GatewayTest(Base):
    @classmethod
    def setUpClass(cls):
        cls.rx = Receiver()
        cls.emu = Emulator(os.path.join(TMP, "data-main")).start()

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()
        cls.rx.close()

    def test_ready_line(self):
        self.assertRegex(self.emu.ready_line, READY_RE)

    def test_precreate_answer_signed_over_exact_text(self):
        otn = new_otn()
        text = self.gateway(request("alipay.trade.precreate",
                                    {"out_trade_no": otn, "total_amount": "99.00", "subject": "秒杀 / 测试"}))
        r = self.answer(text, "alipay_trade_precreate_response")
        self.assertEqual((r["code"], r["msg"], r["out_trade_no"]), ("10000", "Success", otn))
        self.assertTrue(r["qr_code"].startswith("https://qr.alipay.com/"), r)
        # The gateway escapes "/" in its JSON: only the exact text verifies, a re-serialisation does not.
        self.assertIn("https:\\/\\/qr.alipay.com\\/", text)
        reserialised = json.dumps(r, ensure_ascii=False, separators=(",", ":"))
        self.assertFalse(verifies(reserialised, json.loads(text)["sign"]))
        self.assertTrue(text.startswith('{"alipay_trade_precreate_response":{'), text)

    def test_precreate_again_same_trade_or_inconsistent(self):
        otn = new_otn()
        first = self.precreate(otn, "12.50")
        again = self.precreate(otn, "12.5")
        self.assertEqual(first["qr_code"], again["qr_code"])
        other = self.call("alipay.trade.precreate",
                          {"out_trade_no": otn, "total_amount": "12.51", "subject": "seckill item"})
        self.assertBiz(other, "ACQ.CONTEXT_INCONSISTENT")
        other = self.call("alipay.trade.precreate", {"out_trade_no": otn, "total_amount": "12.50", "subject": "else"})
        self.assertBiz(other, "ACQ.CONTEXT_INCONSISTENT")
        status, t = self.trade(otn)
        self.assertEqual((status, t["total_amount"], t["amount_cents"]), (200, "12.50", 1250))
        self.pay(otn)
        self.assertBiz(self.call("alipay.trade.precreate", {"out_trade_no": otn, "total_amount": "12.50",
                                                            "subject": "seckill item"}), "ACQ.TRADE_HAS_SUCCESS")

    def test_precreate_amounts(self):
        for bad in ("1.234", "-1", "abc", "0.00", "0", "1e2", "100000000.01", "", " 1.00", True, None, [1]):
            otn = new_otn()
            r = self.call("alipay.trade.precreate", {"out_trade_no": otn, "total_amount": bad, "subject": "s"})
            self.assertBiz(r, "ACQ.INVALID_PARAMETER")
            self.assertEqual(self.trade(otn)[0], 404, "trade created for amount %r" % (bad,))
        for good, stored in (("99", "99.00"), ("99.5", "99.50"), (12, "12.00"), ("0.01", "0.01"),
                             ("100000000", "100000000.00")):
            otn = new_otn()
            self.precreate(otn, good)
            self.assertEqual(self.trade(otn)[1]["total_amount"], stored)

    def test_precreate_bad_business_parameters(self):
        cases = [{"total_amount": "1.00", "subject": "s"},
                 {"out_trade_no": new_otn(), "subject": "s"},
                 {"out_trade_no": new_otn(), "total_amount": "1.00"},
                 {"out_trade_no": "has space", "total_amount": "1.00", "subject": "s"},
                 {"out_trade_no": "x" * 65, "total_amount": "1.00", "subject": "s"},
                 {"out_trade_no": new_otn(), "total_amount": "1.00", "subject": "s", "timeout_express": "16d"},
                 {"out_trade_no": new_otn(), "total_amount": "1.00", "subject": "s", "timeout_express": "abc"},
                 {"out_trade_no": new_otn(), "total_amount": "1.00", "subject": "s",
                  "time_expire": "2020-01-01 00:00:00"},
                 {"out_trade_no": new_otn(), "total_amount": "1.00", "subject": "s", "time_expire": "tomorrow"}]
        for biz in cases:
            self.assertBiz(self.call("alipay.trade.precreate", biz), "ACQ.INVALID_PARAMETER")
            if biz.get("out_trade_no"):
                self.assertEqual(self.trade(biz["out_trade_no"])[0], 404)
        r = self.call("alipay.trade.precreate", "{not json")
        self.assertEqual((r["code"], r["sub_code"]), ("40002", "isv.invalid-parameter"))
        r = self.call("alipay.trade.precreate", "[1,2]")
        self.assertEqual((r["code"], r["sub_code"]), ("40002", "isv.invalid-parameter"))

    def test_query_unknown_and_unscanned_trade_not_exist(self):
        r = self.call("alipay.trade.query", {"out_trade_no": new_otn("NOPE")})
        self.assertBiz(r, "ACQ.TRADE_NOT_EXIST")
        otn = new_otn()
        self.precreate(otn)
        r = self.call("alipay.trade.query", {"out_trade_no": otn})
        self.assertBiz(r, "ACQ.TRADE_NOT_EXIST")
        self.assertEqual(r["out_trade_no"], otn)
        self.assertBiz(self.call("alipay.trade.query", {}), "ACQ.INVALID_PARAMETER")

    def test_scanned_trade_waits_for_payment(self):
        otn = new_otn()
        self.precreate(otn)
        status, _, data = self.control("scan", out_trade_no=otn)
        self.assertEqual(status, 200, data)
        r = self.call("alipay.trade.query", {"out_trade_no": otn})
        self.assertEqual((r["code"], r["trade_status"], r["total_amount"]), ("10000", "WAIT_BUYER_PAY", "10.00"))
        self.assertTrue(r["trade_no"] and r["buyer_logon_id"], r)
        by_no = self.call("alipay.trade.query", {"trade_no": r["trade_no"]})
        self.assertEqual(by_no["out_trade_no"], otn)

    def test_pay_query_and_signed_notify(self):
        otn = new_otn()
        subject = "秒杀 iPhone & a=b / 100%"
        self.precreate(otn, "88.80", subject=subject, notify="/ok")
        paid = self.pay(otn, buyer_id="2088102177846880")
        self.assertEqual(paid["status"], "TRADE_SUCCESS")
        r = self.call("alipay.trade.query", {"out_trade_no": otn})
        self.assertEqual((r["code"], r["trade_status"], r["total_amount"], r["buyer_user_id"]),
                         ("10000", "TRADE_SUCCESS", "88.80", "2088102177846880"))
        self.assertTrue(r["trade_no"] and r["buyer_logon_id"], r)
        got = wait_for(lambda: self.rx.received("/ok") and [g for g in self.rx.received("/ok")
                                                            if otn.encode() in g["body"]])
        self.assertTrue(got, "no notify received")
        self.assertTrue(got[0]["ctype"].startswith("application/x-www-form-urlencoded"))
        n = dict(urllib.parse.parse_qsl(got[0]["body"].decode(), keep_blank_values=True))
        for field in ("notify_time", "notify_type", "notify_id", "app_id", "charset", "version", "sign_type", "sign",
                      "trade_no", "out_trade_no", "trade_status", "total_amount", "receipt_amount", "buyer_id",
                      "gmt_create", "gmt_payment", "subject"):
            self.assertTrue(n.get(field), "notify lacks %s: %r" % (field, n))
        self.assertEqual((n["notify_type"], n["app_id"], n["charset"], n["version"], n["sign_type"]),
                         ("trade_status_sync", APP_ID, "utf-8", "1.0", "RSA2"))
        self.assertEqual((n["out_trade_no"], n["trade_no"], n["trade_status"], n["total_amount"], n["subject"]),
                         (otn, r["trade_no"], "TRADE_SUCCESS", "88.80", subject))
        self.assertTrue(verifies(to_sign(n, ("sign", "sign_type")), n["sign"]), "notify signature")
        self.assertFalse(verifies(to_sign(n, ("sign",)), n["sign"]), "the trade notify is signed without sign_type")
        forged = dict(n, total_amount="0.01")
        self.assertFalse(verifies(to_sign(forged, ("sign", "sign_type")), n["sign"]))
        log = wait_for(lambda: self.notifies(otn))
        self.assertEqual([(e["attempt"], e["status_code"], e["body"]) for e in log], [(1, 200, "success")])
        time.sleep(RETRY_MS * 3 / 1000)
        self.assertEqual(len(self.notifies(otn)), 1, "a notify answered success was sent again")

    def test_notify_retried_until_success(self):
        otn = new_otn()
        self.rx.answers["/flaky"] = ["fail", "success\n"]
        self.precreate(otn, notify="/flaky")
        t0 = time.time()
        self.pay(otn)
        log = wait_for(lambda: [e for e in self.notifies(otn) if e["body"] == "success"])
        self.assertTrue(log, self.notifies(otn))
        log = self.notifies(otn)
        self.assertEqual([(e["attempt"], e["status_code"], e["body"]) for e in log],
                         [(1, 200, "fail"), (2, 200, "success\n"), (3, 200, "success")])
        got = self.rx.received("/flaky")
        self.assertEqual(len(got), 3)
        self.assertEqual(len({g["body"] for g in got}), 1, "a retry is the same notify")
        self.assertGreaterEqual(got[2]["at"] - t0, 2 * RETRY_MS / 1000 * 0.9)
        time.sleep(RETRY_MS * 3 / 1000)
        self.assertEqual(len(self.notifies(otn)), 3)

    def test_notify_gives_up_after_eight_attempts(self):
        otn = new_otn()
        self.rx.answers["/never"] = ["Success"] * 20
        self.precreate(otn, notify="/never")
        self.pay(otn)
        self.assertTrue(wait_for(lambda: len(self.notifies(otn)) >= 8, timeout=10))
        time.sleep(RETRY_MS * 4 / 1000)
        log = self.notifies(otn)
        self.assertEqual([e["attempt"] for e in log], list(range(1, 9)))
        self.assertTrue(all(not e["ok"] for e in log))

    def test_notify_again_replays_the_same_notify(self):
        otn = new_otn()
        self.precreate(otn, notify="/replay")
        self.pay(otn)
        self.assertTrue(wait_for(lambda: self.notifies(otn)))
        status, _, data = self.control("notify-again", out_trade_no=otn)
        self.assertEqual(status, 200, data)
        e = json.loads(data)
        self.assertEqual((e["attempt"], e["status_code"], e["body"], e["replay"]), (2, 200, "success", True))
        got = self.rx.received("/replay")
        self.assertEqual(len(got), 2)
        self.assertEqual(got[0]["body"], got[1]["body"])
        status, _, _ = self.control("notify-again", out_trade_no=new_otn("NONE"))
        self.assertEqual(status, 409)
        unpaid = new_otn()
        self.precreate(unpaid, notify="/replay")
        self.assertEqual(self.control("notify-again", out_trade_no=unpaid)[0], 409)

    def test_close_waiting_trade(self):
        otn = new_otn()
        self.precreate(otn, notify="/closed")
        self.assertEqual(self.control("scan", out_trade_no=otn)[0], 200)
        r = self.call("alipay.trade.close", {"out_trade_no": otn})
        self.assertEqual((r["code"], r["out_trade_no"]), ("10000", otn))
        self.assertTrue(r["trade_no"])
        self.assertEqual(self.call("alipay.trade.query", {"out_trade_no": otn})["trade_status"], "TRADE_CLOSED")
        status, _, data = self.control("pay", out_trade_no=otn)
        self.assertEqual(status, 409, data)
        self.assertBiz(self.call("alipay.trade.close", {"out_trade_no": otn}), "ACQ.TRADE_STATUS_ERROR")
        got = wait_for(lambda: [g for g in self.rx.received("/closed") if otn.encode() in g["body"]])
        n = dict(urllib.parse.parse_qsl(got[0]["body"].decode()))
        self.assertEqual(n["trade_status"], "TRADE_CLOSED")
        self.assertTrue(verifies(to_sign(n, ("sign", "sign_type")), n["sign"]))

    def test_close_unscanned_trade_not_exist(self):
        # The reference: nothing to close at the gateway yet; payment stays possible until the expiry.
        otn = new_otn()
        self.precreate(otn)
        self.assertBiz(self.call("alipay.trade.close", {"out_trade_no": otn}), "ACQ.TRADE_NOT_EXIST")
        self.assertEqual(self.trade(otn)[1]["status"], "WAIT_BUYER_PAY")
        self.pay(otn)
        self.assertEqual(self.call("alipay.trade.query", {"out_trade_no": otn})["trade_status"], "TRADE_SUCCESS")

    def test_close_paid_or_unknown_trade(self):
        otn = new_otn()
        self.precreate(otn)
        self.pay(otn)
        r = self.call("alipay.trade.close", {"out_trade_no": otn})
        self.assertBiz(r, "ACQ.TRADE_STATUS_ERROR")
        self.assertEqual(self.call("alipay.trade.query", {"out_trade_no": otn})["trade_status"], "TRADE_SUCCESS")
        self.assertBiz(self.call("alipay.trade.close", {"out_trade_no": new_otn("NOPE")}), "ACQ.TRADE_NOT_EXIST")

    def test_refund_idempotent_and_bounded(self):
        otn = new_otn()
        self.precreate(otn, "10.00", notify="/refunds")
        self.pay(otn)
        refund = lambda req, amount: self.call("alipay.trade.refund", {"out_trade_no": otn, "refund_amount": amount,
                                                                        "out_request_no": req, "refund_reason": "late"})
        r = refund("R1", "3.00")
        self.assertEqual((r["code"], r["fund_change"], r["refund_fee"], r["out_trade_no"]), ("10000", "Y", "3.00", otn))
        self.assertTrue(r["trade_no"] and r["gmt_refund_pay"] and r["buyer_logon_id"], r)
        again = refund("R1", "3.00")
        self.assertEqual((again["code"], again["fund_change"], again["refund_fee"], again["gmt_refund_pay"]),
                         ("10000", "N", "3.00", r["gmt_refund_pay"]))
        self.assertBiz(refund("R1", "4.00"), "ACQ.DISCORDANT_REPEAT_REQUEST")
        self.assertBiz(refund("R2", "7.01"), "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL")
        self.assertEqual(self.call("alipay.trade.query", {"out_trade_no": otn})["trade_status"], "TRADE_SUCCESS")
        r2 = refund("R2", "7")
        self.assertEqual((r2["fund_change"], r2["refund_fee"]), ("Y", "10.00"))
        self.assertEqual(self.call("alipay.trade.query", {"out_trade_no": otn})["trade_status"], "TRADE_CLOSED")
        self.assertBiz(refund("R3", "0.01"), "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL")
        self.assertEqual(refund("R1", "3.00")["fund_change"], "N")
        self.assertEqual(self.trade(otn)[1]["refunded_cents"], 1000)
        q = self.call("alipay.trade.fastpay.refund.query", {"out_trade_no": otn, "out_request_no": "R1"})
        self.assertEqual((q["code"], q["refund_status"], q["refund_amount"], q["total_amount"]),
                         ("10000", "REFUND_SUCCESS", "3.00", "10.00"))
        q = self.call("alipay.trade.fastpay.refund.query", {"out_trade_no": otn, "out_request_no": "R9"})
        self.assertEqual(q["code"], "10000")
        self.assertNotIn("refund_amount", q)
        # Refunds are notified like Alipay: partial with TRADE_SUCCESS, the last with TRADE_CLOSED.
        got = wait_for(lambda: len([g for g in self.rx.received("/refunds") if otn.encode() in g["body"]]) >= 3 and
                       [dict(urllib.parse.parse_qsl(g["body"].decode())) for g in self.rx.received("/refunds")
                        if otn.encode() in g["body"]])
        self.assertEqual(sorted((n["trade_status"], n.get("refund_fee", "")) for n in got),
                         [("TRADE_CLOSED", "10.00"), ("TRADE_SUCCESS", ""), ("TRADE_SUCCESS", "3.00")])
        for n in got:
            self.assertTrue(verifies(to_sign(n, ("sign", "sign_type")), n["sign"]))

    def test_refund_unpaid_unknown_or_malformed(self):
        otn = new_otn()
        self.precreate(otn)
        body = {"out_trade_no": otn, "refund_amount": "1.00", "out_request_no": "R1"}
        self.assertBiz(self.call("alipay.trade.refund", body), "ACQ.TRADE_NOT_EXIST")
        self.control("scan", out_trade_no=otn)
        self.assertBiz(self.call("alipay.trade.refund", body), "ACQ.TRADE_STATUS_ERROR")
        self.assertBiz(self.call("alipay.trade.refund", dict(body, refund_amount="1.001")), "ACQ.INVALID_PARAMETER")
        self.assertBiz(self.call("alipay.trade.refund", dict(body, out_trade_no=new_otn("NOPE"))),
                       "ACQ.TRADE_NOT_EXIST")
        self.assertEqual(self.trade(otn)[1]["refunds"], {})

    def test_bad_signature(self):
        otn = new_otn()
        biz = {"out_trade_no": otn, "total_amount": "1.00", "subject": "s"}
        r = self.call("alipay.trade.precreate", biz, key=KEYS["stranger"])
        self.assertEqual((r["code"], r["msg"], r["sub_code"]), ("40002", "Invalid Arguments", "isv.invalid-signature"))
        self.assertIn("app_id=%s&biz_content=" % APP_ID, r["sub_msg"])
        self.assertEqual(self.trade(otn)[0], 404)
        p = request("alipay.trade.precreate", biz)
        p["biz_content"] = p["biz_content"].replace("1.00", "0.01")
        r = self.answer(self.gateway(p), "alipay_trade_precreate_response")
        self.assertEqual(r["sub_code"], "isv.invalid-signature")
        p = request("alipay.trade.precreate", biz)
        p["sign"] = "not base64!"
        self.assertEqual(self.answer(self.gateway(p), "alipay_trade_precreate_response")["sub_code"],
                         "isv.invalid-signature")
        # A signature made over URL-encoded values does not verify either.
        p = request("alipay.trade.precreate", biz)
        enc = {k: urllib.parse.quote(v, safe="") for k, v in p.items() if k != "sign"}
        p["sign"] = rsa2(KEYS["app"], to_sign(enc, ("sign",)))
        self.assertEqual(self.answer(self.gateway(p), "alipay_trade_precreate_response")["sub_code"],
                         "isv.invalid-signature")
        self.assertEqual(self.trade(otn)[0], 404)

    def test_wrong_app_id(self):
        otn = new_otn()
        r = self.call("alipay.trade.precreate", {"out_trade_no": otn, "total_amount": "1.00", "subject": "s"},
                      signed=False, app_id="2021000000000999")
        self.assertEqual((r["code"], r["msg"], r["sub_code"]), ("40002", "Invalid Arguments", "isv.invalid-app-id"))
        self.assertEqual(self.trade(otn)[0], 404)

    def test_missing_common_parameters(self):
        biz = {"out_trade_no": new_otn()}
        for name, sub in (("sign_type", "isv.missing-signature-type"), ("timestamp", "isv.missing-timestamp"),
                          ("version", "isv.missing-version")):
            r = self.call("alipay.trade.query", biz, **{name: None})
            self.assertEqual((r["code"], r["msg"], r["sub_code"]), ("40001", "Missing Required Arguments", sub))
        r = self.call("alipay.trade.query", biz, signed=False, app_id=None)
        self.assertEqual((r["code"], r["sub_code"]), ("40001", "isv.missing-app-id"))
        p = request("alipay.trade.query", biz)
        del p["sign"]
        r = self.answer(self.gateway(p), "alipay_trade_query_response")
        self.assertEqual((r["code"], r["sub_code"]), ("40001", "isv.missing-signature"))
        p = request("alipay.trade.query", biz, method=None)
        r = self.answer(self.gateway(p), "error_response", signed=False)
        self.assertEqual((r["code"], r["sub_code"]), ("40001", "isv.missing-method"))
        r = self.call("alipay.trade.query", None, biz_content=None)
        self.assertBiz(r, "ACQ.INVALID_PARAMETER")

    def test_invalid_common_parameters(self):
        biz = {"out_trade_no": new_otn()}
        cases = [({"timestamp": "2024/01/01 00:00:00"}, "isv.invalid-timestamp"),
                 ({"timestamp": (datetime.now(timezone.utc)).strftime("%Y-%m-%d %H:%M:%S")}, "isv.invalid-timestamp"),
                 ({"timestamp": china_time(-3600)}, "isv.invalid-timestamp"),
                 ({"sign_type": "RSA"}, "isv.missing-signature-config"),
                 ({"sign_type": "MD5"}, "isv.invalid-signature-type"),
                 ({"charset": "gbk"}, "isv.invalid-charset"),
                 ({"format": "xml"}, "isv.invalid-format"),
                 ({"version": "2.0"}, "isv.invalid-parameter"),
                 ({"notify_url": "ftp://x/y"}, "isv.invalid-parameter")]
        for common, sub in cases:
            r = self.call("alipay.trade.query", biz, **common)
            self.assertEqual((r["code"], r["msg"], r["sub_code"]), ("40002", "Invalid Arguments", sub), common)
        # Lower-case charset/format variants and a timestamp a few minutes off are fine.
        r = self.call("alipay.trade.query", biz, charset="UTF-8", format="json", timestamp=china_time(-120))
        self.assertBiz(r, "ACQ.TRADE_NOT_EXIST")
        r = self.answer(self.gateway(request("alipay.trade.nosuch", biz)), "error_response", signed=False)
        self.assertEqual((r["code"], r["sub_code"]), ("40002", "isv.invalid-method"))

    def test_common_parameters_in_query_string(self):
        otn = new_otn()
        p = request("alipay.trade.precreate", {"out_trade_no": otn, "total_amount": "5.00", "subject": "s"},
                    notify_url=self.rx.url("/q"))
        body = {"biz_content": p.pop("biz_content")}
        text = self.gateway(body, query=p)
        r = self.answer(text, "alipay_trade_precreate_response")
        self.assertEqual(r["code"], "10000", r)
        self.assertEqual(self.trade(otn)[1]["notify_url"], self.rx.url("/q"))
        # The same parameter in both places is fine when equal, an error when not.
        p = request("alipay.trade.query", {"out_trade_no": otn})
        r = self.answer(self.gateway(p, query={"charset": "utf-8"}), "alipay_trade_query_response")
        self.assertBiz(r, "ACQ.TRADE_NOT_EXIST")
        r = self.answer(self.gateway(p, query={"charset": "gbk"}), "alipay_trade_query_response", signed=False)
        self.assertEqual((r["code"], r["sub_code"]), ("40002", "isv.invalid-parameter"))

    def test_body_without_form_content_type_is_not_read(self):
        p = request("alipay.trade.query", {"out_trade_no": new_otn()})
        status, _, data = http_call(self.emu.port, "POST", "/gateway.do", urllib.parse.urlencode(p).encode(),
                                    {"Content-Type": "application/json"})
        r = self.answer(data.decode(), "error_response", signed=False)
        self.assertEqual((status, r["code"], r["sub_code"]), (200, "40001", "isv.missing-method"))

    def test_page_pay(self):
        otn = new_otn("P")
        biz = {"out_trade_no": otn, "product_code": "FAST_INSTANT_TRADE_PAY", "total_amount": "66.60",
               "subject": "desk <pay>", "time_expire": china_time(900)}
        p = request("alipay.trade.page.pay", biz, notify_url=self.rx.url("/page"))
        status, hdr, data = http_call(self.emu.port, "GET", "/gateway.do?" + urllib.parse.urlencode(p))
        page = data.decode()
        self.assertEqual(status, 200)
        self.assertTrue(hdr["content-type"].startswith("text/html"), hdr)
        self.assertIn(otn, page)
        self.assertIn("66.60", page)
        self.assertIn("desk &lt;pay&gt;", page)
        status, t = self.trade(otn)
        self.assertEqual((status, t["created_by"], t["status"]), (200, "alipay.trade.page.pay", "WAIT_BUYER_PAY"))
        self.assertBiz(self.call("alipay.trade.query", {"out_trade_no": otn}), "ACQ.TRADE_NOT_EXIST")
        # Opening the page again (the same signed URL) shows the same trade.
        status, _, again = http_call(self.emu.port, "GET", "/gateway.do?" + urllib.parse.urlencode(p))
        self.assertEqual(self.trade(otn)[1]["trade_no"], t["trade_no"])
        self.pay(otn)
        self.assertEqual(self.call("alipay.trade.query", {"out_trade_no": otn})["trade_status"], "TRADE_SUCCESS")
        self.assertTrue(wait_for(lambda: [g for g in self.rx.received("/page") if otn.encode() in g["body"]]))

    def test_page_pay_sdk_form_post_and_errors(self):
        # The SDKs' auto-submit form: common parameters in the query, biz_content in the body.
        otn = new_otn("P")
        p = request("alipay.trade.page.pay", {"out_trade_no": otn, "product_code": "FAST_INSTANT_TRADE_PAY",
                                              "total_amount": "1.00", "subject": "s"})
        body = urllib.parse.urlencode({"biz_content": p.pop("biz_content")}).encode()
        status, hdr, data = http_call(self.emu.port, "POST", "/gateway.do?" + urllib.parse.urlencode(p), body,
                                      {"Content-Type": FORM})
        self.assertEqual(status, 200)
        self.assertTrue(hdr["content-type"].startswith("text/html"))
        self.assertIn(otn, data.decode())
        self.assertEqual(self.trade(otn)[0], 200)
        bad = new_otn("P")
        p = request("alipay.trade.page.pay", {"out_trade_no": bad, "product_code": "FAST_INSTANT_TRADE_PAY",
                                              "total_amount": "1.00", "subject": "s"}, key=KEYS["stranger"])
        status, hdr, data = http_call(self.emu.port, "GET", "/gateway.do?" + urllib.parse.urlencode(p))
        self.assertEqual(status, 200)
        self.assertTrue(hdr["content-type"].startswith("text/html"))
        self.assertIn("invalid-signature", data.decode())
        self.assertEqual(self.trade(bad)[0], 404)
        p = request("alipay.trade.page.pay", {"out_trade_no": bad, "total_amount": "1.00", "subject": "s"})
        status, _, data = http_call(self.emu.port, "GET", "/gateway.do?" + urllib.parse.urlencode(p))
        self.assertIn("ACQ.INVALID_PARAMETER", data.decode())
        self.assertEqual(self.trade(bad)[0], 404)

    def test_page_pay_return_redirect_signed(self):
        otn = new_otn("P")
        p = request("alipay.trade.page.pay", {"out_trade_no": otn, "product_code": "FAST_INSTANT_TRADE_PAY",
                                              "total_amount": "2.00", "subject": "s"},
                    return_url="http://127.0.0.1:9/back?x=1")
        http_call(self.emu.port, "GET", "/gateway.do?" + urllib.parse.urlencode(p))
        status, hdr, _ = self.control("pay", out_trade_no=otn, redirect="1")
        self.assertEqual(status, 302)
        loc = hdr["location"]
        self.assertTrue(loc.startswith("http://127.0.0.1:9/back?x=1&"), loc)
        q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(loc).query))
        self.assertEqual((q["method"], q["out_trade_no"], q["total_amount"]),
                         ("alipay.trade.page.pay.return", otn, "2.00"))
        q.pop("x")
        self.assertTrue(verifies(to_sign(q, ("sign", "sign_type")), q["sign"]))

    def test_expired_trade_cannot_be_paid(self):
        quiet, seen = new_otn("E"), new_otn("E")
        # Both end within three seconds: one nobody scanned, one a buyer has in front of them.
        end = china_time(3)
        self.precreate(quiet, time_expire=end)
        self.precreate(seen, time_expire=end, notify="/expired")
        self.assertEqual(self.control("scan", out_trade_no=seen)[0], 200)
        ends = [self.trade(otn)[1] for otn in (quiet, seen)]
        self.assertEqual([t["time_expire"] for t in ends], [end, end])
        time.sleep(max(0, max(t["expire_epoch"] for t in ends) - time.time()) + 0.6)
        for otn in (quiet, seen):
            status, _, data = self.control("pay", out_trade_no=otn)
            self.assertEqual(status, 409, data)
            self.assertIn("expired", json.loads(data)["error"])
        self.assertBiz(self.call("alipay.trade.query", {"out_trade_no": quiet}), "ACQ.TRADE_NOT_EXIST")
        self.assertEqual(self.call("alipay.trade.query", {"out_trade_no": seen})["trade_status"], "TRADE_CLOSED")
        got = wait_for(lambda: [g for g in self.rx.received("/expired") if seen.encode() in g["body"]])
        self.assertEqual(dict(urllib.parse.parse_qsl(got[0]["body"].decode()))["trade_status"], "TRADE_CLOSED")
        self.assertBiz(self.call("alipay.trade.precreate", {"out_trade_no": quiet, "total_amount": "10.00",
                                                            "subject": "seckill item"}), "ACQ.TRADE_HAS_CLOSE")

    def test_timeout_express_sets_expiry(self):
        otn = new_otn()
        before = time.time()
        self.precreate(otn, timeout_express="15m")
        expire = self.trade(otn)[1]["expire_epoch"]
        self.assertAlmostEqual(expire - before, 900, delta=5)

    def test_controls_refuse_bad_requests(self):
        self.assertEqual(self.control("pay", out_trade_no=new_otn("NOPE"))[0], 409)
        self.assertEqual(self.control("pay")[0], 409)
        otn = new_otn()
        self.precreate(otn)
        self.pay(otn)
        status, _, data = self.control("pay", out_trade_no=otn)
        self.assertEqual(status, 409)
        self.assertIn("already paid", json.loads(data)["error"])
        self.assertEqual(self.control("scan", out_trade_no=otn)[0], 409)
        self.assertEqual(self.trade(new_otn("NOPE"))[0], 404)
        self.assertEqual(http_call(self.emu.port, "GET", "/nowhere")[0], 404)
        self.assertEqual(http_call(self.emu.port, "POST", "/emulator/nothing", b"", {"Content-Type": FORM})[0], 404)
        status, _, data = http_call(self.emu.port, "GET", "/emulator/trades")
        self.assertEqual(status, 200)
        self.assertIn(otn, [t["out_trade_no"] for t in json.loads(data)])


class RestartTest(Base):
    """State across restarts, key formats, one emulator per data folder, bad arguments."""

    @classmethod
    def setUpClass(cls):
        cls.rx = Receiver()

    @classmethod
    def tearDownClass(cls):
        cls.rx.close()

    def test_state_survives_restart(self):
        data = os.path.join(TMP, "data-restart")
        # Bare base64 keys (as Alipay's console shows them), PKCS#1 private key.
        emu = Emulator(data, app_pub="app_pub.txt", alipay_priv="alipay_priv.txt").start()
        try:
            paid, waiting = new_otn("S"), new_otn("S")
            self.precreate(paid, "20.00", emu=emu)
            self.precreate(waiting, "30.00", emu=emu)
            self.pay(paid, emu=emu)
            q1 = self.call("alipay.trade.query", {"out_trade_no": paid}, emu=emu)
            r1 = self.call("alipay.trade.refund", {"out_trade_no": paid, "refund_amount": "5.00",
                                                   "out_request_no": "R1"}, emu=emu)
            self.assertEqual(r1["fund_change"], "Y")
            qr = self.trade(waiting, emu=emu)[1]["qr_code"]
        finally:
            emu.stop()
        emu = Emulator(data, app_pub="app_pub.txt", alipay_priv="alipay_priv.txt").start()
        try:
            q2 = self.call("alipay.trade.query", {"out_trade_no": paid}, emu=emu)
            self.assertEqual((q2["trade_status"], q2["trade_no"], q2["total_amount"]),
                             ("TRADE_SUCCESS", q1["trade_no"], "20.00"))
            r = self.call("alipay.trade.refund", {"out_trade_no": paid, "refund_amount": "5.00",
                                                  "out_request_no": "R1"}, emu=emu)
            self.assertEqual((r["fund_change"], r["refund_fee"]), ("N", "5.00"))
            self.assertEqual(self.precreate(waiting, "30.00", emu=emu)["qr_code"], qr)
            self.assertBiz(self.call("alipay.trade.precreate", {"out_trade_no": paid, "total_amount": "20.00",
                                                                "subject": "seckill item"}, emu=emu),
                           "ACQ.TRADE_HAS_SUCCESS")
        finally:
            emu.stop()

    def test_pending_notify_resumes_after_restart(self):
        global RETRY_MS
        data = os.path.join(TMP, "data-resume")
        otn = new_otn("N")
        self.rx.answers["/later"] = ["fail"] * 100
        saved, RETRY_MS = RETRY_MS, 60000  # one attempt before the restart, then a long wait
        try:
            emu = Emulator(data).start()
        finally:
            RETRY_MS = saved
        try:
            self.precreate(otn, notify="/later", emu=emu)
            self.pay(otn, emu=emu)
            self.assertTrue(wait_for(lambda: self.notifies(otn, emu=emu)))
        finally:
            emu.stop()
        self.rx.answers["/later"] = []
        emu = Emulator(data).start()
        try:
            log = wait_for(lambda: [e for e in self.notifies(otn, emu=emu) if e["ok"]])
            self.assertTrue(log, self.notifies(otn, emu=emu))
            self.assertEqual([(e["attempt"], e["body"]) for e in self.notifies(otn, emu=emu)],
                             [(1, "fail"), (2, "success")])
        finally:
            emu.stop()

    def test_one_emulator_per_data_folder(self):
        data = os.path.join(TMP, "data-lock")
        emu = Emulator(data).start()
        try:
            second = Emulator(data)
            with self.assertRaises(AssertionError):
                second.start()
            self.assertIn("another emulator", second.log_text())
        finally:
            emu.stop()

    def test_bad_arguments_exit_with_a_sentence(self):
        base = ["/usr/bin/python3", EMULATOR, "--port", "0", "--data", os.path.join(TMP, "data-bad"),
                "--app-id", APP_ID]
        for pub, priv, words in (("missing.pem", "alipay_priv.pem", "cannot load the public key"),
                                 ("garbage.pem", "alipay_priv.pem", "cannot load the public key"),
                                 ("app_pub.pem", "app_pub.pem", "cannot load the private key")):
            p = subprocess.run(base + ["--app-public-key", os.path.join(TMP, pub),
                                       "--alipay-private-key", os.path.join(TMP, priv)],
                               capture_output=True, timeout=30)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn(words, p.stderr.decode())
            self.assertEqual(p.stdout, b"")
        os.makedirs(os.path.join(TMP, "data-corrupt", "trades"), exist_ok=True)
        write(os.path.join(TMP, "data-corrupt", "trades", "T1.json"), b"{broken")
        p = subprocess.run(["/usr/bin/python3", EMULATOR, "--port", "0", "--data", os.path.join(TMP, "data-corrupt"),
                            "--app-id", APP_ID, "--app-public-key", os.path.join(TMP, "app_pub.pem"),
                            "--alipay-private-key", os.path.join(TMP, "alipay_priv.pem")],
                           capture_output=True, timeout=30)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("cannot read", p.stderr.decode())


def main():
    suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules[__name__])
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    passed = result.testsRun - failed - len(result.skipped)
    print("%d passed, %d failed" % (passed, failed))
    sys.stdout.flush()
    return 0 if failed == 0 and result.testsRun > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
