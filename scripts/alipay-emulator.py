#!/usr/bin/python3
"""A local stand-in for Alipay's OpenAPI gateway (sandbox), for tests and the demo.

    scripts/alipay-emulator.py --port P --data DIR --app-id APPID
        --app-public-key APP_PUB.pem --alipay-private-key ALIPAY_PRIV.pem
        [--notify-retry-ms 1000] [--host 127.0.0.1] [--seller-id 2088…] [--verbose]

It follows ../shared/reference/alipay.md and docs/alipay-emulator.md, so that the
`alipay` plugin talks to it exactly as to the real gateway:

- `POST /gateway.do` (form-encoded; common parameters may also come in the query
  string) with the common parameters checked, the RSA2 request signature verified
  with the app's public key, and answers `{"<method>_response":{…},"sign":"…"}`
  signed with the emulator's Alipay private key over the exact text of the
  response value (which escapes `/` as `\\/`, as the real gateway does);
- alipay.trade.precreate / page.pay (GET or POST: an HTML page) / query / close /
  refund / fastpay.refund.query with the real result codes and sub_codes;
- asynchronous notifies (form-encoded, RSA2-signed without sign and sign_type)
  to the trade's notify_url, retried until the answer is exactly `success`;
- test controls under /emulator/ (pay, scan, notify-again, trades, notifies);
- state in DIR: one JSON file per trade, rewritten atomically before the answer
  to every call that changes it, and the notify log; a restart keeps trades,
  refunds and pending notifies.

Python standard library plus python3-cryptography. A test tool, not a bank: one
process, one lock, one app.
"""

import argparse
import base64
import binascii
import fcntl
import hashlib
import html
import http.client
import json
import os
import re
import secrets
import signal
import sys
import threading
import time
import traceback
import urllib.parse
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

# Alipay's times are China Standard Time (UTC+8, no daylight saving).
CST = timezone(timedelta(hours=8))
TIME_FMT = "%Y-%m-%d %H:%M:%S"
TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
NOTIFY_LOG_FILE = "notifies.jsonl"
MAX_BODY = 1 << 20
MAX_NOTIFY_ATTEMPTS = 8  # the first one and seven retries, as Alipay's 25-hour schedule
NOTIFY_TIMEOUT_S = 5
NOTIFY_LOG_MAX = 10000
TIMESTAMP_WINDOW_S = 30 * 60  # a request's timestamp may be this far from the gateway's clock
DEFAULT_TIMEOUT_S = 2 * 3600  # when neither timeout_express nor time_expire is given
MAX_TIMEOUT_S = 15 * 86400  # timeout_express ranges from 1m to 15d
MAX_AMOUNT_CENTS = 100000000 * 100  # total_amount ranges from 0.01 to 100000000
OUT_NO_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
AMOUNT_RE = re.compile(r"^(0|[1-9][0-9]{0,8})(?:\.([0-9]{1,2}))?$")
TIMEOUT_RE = re.compile(r"^([1-9][0-9]*)([mhdc])$")

WAIT, SUCCESS, CLOSED = "WAIT_BUYER_PAY", "TRADE_SUCCESS", "TRADE_CLOSED"

MSG = {
    "10000": "Success",
    "20000": "Service Currently Unavailable",
    "40001": "Missing Required Arguments",
    "40002": "Invalid Arguments",
    "40004": "Business Failed",
    "40006": "Insufficient Permissions",
}

# The gateway's own texts (sub_msg is human text; these are the ones Alipay sends).
SUB_MSG = {
    "isv.missing-method": "缺少方法名参数",
    "isv.missing-signature": "缺少签名参数",
    "isv.missing-signature-type": "缺少签名类型参数",
    "isv.missing-app-id": "缺少appId参数",
    "isv.missing-timestamp": "缺少时间戳参数",
    "isv.missing-version": "缺少版本参数",
    "isv.invalid-parameter": "参数无效",
    "isv.invalid-method": "不存在的方法名",
    "isv.invalid-format": "无效的数据格式",
    "isv.invalid-signature-type": "无效的签名类型",
    "isv.invalid-signature": "验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配，网关生成的验签字符串为：",
    "isv.invalid-app-id": "无效的AppID参数",
    "isv.invalid-timestamp": "非法的时间戳参数",
    "isv.invalid-charset": "字符集错误",
    "isv.missing-signature-config": "验签出错, 未配置对应签名算法的公钥或者证书",
    "ACQ.INVALID_PARAMETER": "参数无效",
    "ACQ.TRADE_NOT_EXIST": "交易不存在",
    "ACQ.TRADE_STATUS_ERROR": "交易状态不合法",
    "ACQ.TRADE_HAS_SUCCESS": "交易已被支付",
    "ACQ.TRADE_HAS_CLOSE": "交易已经关闭",
    "ACQ.CONTEXT_INCONSISTENT": "交易信息被篡改",
    "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL": "退款金额超限",
    "ACQ.DISCORDANT_REPEAT_REQUEST": "不一致的请求",
}

PAGE_PAY = "alipay.trade.page.pay"


class GatewayError(Exception):
    """A gateway answer other than 10000. signed is False when the gateway cannot
    tell which app is calling (it then has no key to sign with, and answers unsigned)."""

    def __init__(self, code, sub_code, detail=None, extra=None, signed=True):
        super().__init__(sub_code)
        self.code = code
        self.sub_code = sub_code
        self.sub_msg = SUB_MSG.get(sub_code, "") + (("：" if sub_code != "isv.invalid-signature" else "") + detail
                                                     if detail else "")
        self.extra = extra or {}
        self.signed = signed

    def body(self):
        obj = {"code": self.code, "msg": MSG[self.code], "sub_code": self.sub_code, "sub_msg": self.sub_msg}
        obj.update(self.extra)
        return obj


class Refused(Exception):
    """An answer of the test controls other than 200: HTTP status and a sentence."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


def invalid(detail):
    return GatewayError("40004", "ACQ.INVALID_PARAMETER", detail)


# ---------------------------------------------------------------------------
# Keys, signatures, money, times


def load_key(path, private):
    """An RSA key from PEM (PKCS#1 or PKCS#8 / SubjectPublicKeyInfo) or from the bare
    base64 that Alipay's console shows. Exits with a sentence on failure."""
    kind = "private" if private else "public"
    try:
        with open(path, "rb") as f:
            data = f.read()
        if b"-----BEGIN" in data:
            key = (serialization.load_pem_private_key(data, password=None) if private
                   else serialization.load_pem_public_key(data))
        else:
            der = base64.b64decode(b"".join(data.split()), validate=True)
            key = (serialization.load_der_private_key(der, password=None) if private
                   else serialization.load_der_public_key(der))
    except (OSError, ValueError, TypeError, binascii.Error, UnsupportedAlgorithm) as e:
        sys.exit("alipay-emulator: cannot load the %s key %s: %s" % (kind, path, e))
    want = rsa.RSAPrivateKey if private else rsa.RSAPublicKey
    if not isinstance(key, want):
        sys.exit("alipay-emulator: %s is not an RSA %s key" % (path, kind))
    return key


def rsa2_sign(key, text):
    return base64.b64encode(key.sign(text.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())).decode("ascii")


def rsa2_verify(key, text, sign):
    try:
        raw = base64.b64decode(sign, validate=True)
        key.verify(raw, text.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
        return True
    except (binascii.Error, ValueError, InvalidSignature):
        return False


def sign_content(params, drop):
    """Alipay's string to sign: every parameter but those in drop whose value is not
    empty, sorted by name, name=value joined with &, values raw."""
    return "&".join("%s=%s" % (k, params[k]) for k in sorted(params) if k not in drop and params[k] != "")


def parse_amount(value):
    """Cents of a yuan amount ("99", "99.5", "99.50"; JSON numbers too, as the gateway
    takes them), or None when malformed or outside 0.01 .. 100000000."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        value = ("%d" % value) if isinstance(value, int) else repr(value)
    if not isinstance(value, str):
        return None
    m = AMOUNT_RE.match(value)
    if not m:
        return None
    cents = int(m.group(1)) * 100 + int((m.group(2) or "").ljust(2, "0"))
    return cents if 1 <= cents <= MAX_AMOUNT_CENTS else None


def yuan(cents):
    return "%d.%02d" % (cents // 100, cents % 100)


def cst(epoch=None):
    return datetime.fromtimestamp(time.time() if epoch is None else epoch, CST).strftime(TIME_FMT)


def cst_ms(epoch=None):
    t = time.time() if epoch is None else epoch
    return datetime.fromtimestamp(t, CST).strftime(TIME_FMT) + ".%03d" % (int(t * 1000) % 1000)


def parse_cst(text):
    if not isinstance(text, str) or not TIME_RE.match(text):
        return None
    try:
        return datetime.strptime(text, TIME_FMT).replace(tzinfo=CST).timestamp()
    except ValueError:
        return None


def parse_form(raw):
    """(name, value) pairs of an application/x-www-form-urlencoded byte string, both
    decoded as UTF-8 (UnicodeDecodeError when they are not)."""
    pairs = []
    for field in raw.split(b"&"):
        if not field:
            continue
        name, _, value = field.partition(b"=")
        name = urllib.parse.unquote_to_bytes(name.replace(b"+", b" ")).decode("utf-8")
        value = urllib.parse.unquote_to_bytes(value.replace(b"+", b" ")).decode("utf-8")
        pairs.append((name, value))
    return pairs


def write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def http_post(url, body):
    """POST a form to url. (status or None, first 64 KiB of the answer, error or None)."""
    conn = None
    try:
        u = urllib.parse.urlsplit(url)
        cls = http.client.HTTPSConnection if u.scheme == "https" else http.client.HTTPConnection
        conn = cls(u.hostname, u.port, timeout=NOTIFY_TIMEOUT_S)
        path = (u.path or "/") + ("?" + u.query if u.query else "")
        conn.request("POST", path, body=body, headers={
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
            "User-Agent": "Mozilla/4.0",
        })
        resp = conn.getresponse()
        return resp.status, resp.read(65536), None
    except (OSError, http.client.HTTPException, ValueError) as e:
        return None, b"", "%s: %s" % (type(e).__name__, e)
    finally:
        if conn is not None:
            conn.close()


def valid_url(url):
    try:
        u = urllib.parse.urlsplit(url)
        u.port  # raises ValueError on a malformed port
        return u.scheme in ("http", "https") and bool(u.hostname)
    except ValueError:
        return False


# ---------------------------------------------------------------------------
# The gateway


class Gateway:
    def __init__(self, args):
        self.args = args
        self.app_id = args.app_id
        self.app_key = load_key(args.app_public_key, private=False)
        self.alipay_key = load_key(args.alipay_private_key, private=True)
        self.seller_id = args.seller_id or "2088" + str(int(hashlib.sha256(args.app_id.encode()).hexdigest(), 16))[:12]
        self.retry_s = args.notify_retry_ms / 1000.0
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.stopping = False
        self.root = os.path.abspath(args.data)
        self.trade_dir = os.path.join(self.root, "trades")
        try:
            os.makedirs(self.trade_dir, exist_ok=True)
            self.lockfile = open(os.path.join(self.root, "emulator.lock"), "w")
        except OSError as e:
            sys.exit("alipay-emulator: cannot use the data folder %s: %s" % (self.root, e))
        try:
            fcntl.flock(self.lockfile, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            sys.exit("alipay-emulator: another emulator uses %s" % self.root)
        self.trades = {}  # out_trade_no -> trade, each with its notifies
        self.by_trade_no = {}
        self.pending = {}  # notify_id -> a notify not yet answered `success` nor given up
        self.inflight = set()
        self.notify_log = []
        self.seq = 0
        self.load()
        self.log_file = open(os.path.join(self.root, NOTIFY_LOG_FILE), "a", encoding="utf-8")

    # -- state: DIR/trades/<out_trade_no>.json, one file per trade, rewritten
    # atomically when the trade changes; DIR/notifies.jsonl, the notify log.

    def load(self):
        for name in sorted(os.listdir(self.trade_dir)):
            if not name.endswith(".json"):
                continue
            path = os.path.join(self.trade_dir, name)
            try:
                with open(path, encoding="utf-8") as f:
                    t = json.load(f)
                otn, app = t["out_trade_no"], t["app_id"]
                self.by_trade_no[t["trade_no"]] = t
                notifies = t["notifies"]
            except (OSError, ValueError, KeyError, TypeError) as e:
                sys.exit("alipay-emulator: cannot read %s: %s" % (path, e))
            if app != self.app_id:
                sys.exit("alipay-emulator: %s is a trade of app %s, not %s" % (path, app, self.app_id))
            self.trades[otn] = t
            for n in notifies:
                if not n["done"]:
                    # Pending notifies go on, with this run's retry delay.
                    n["next_at"] = min(n["next_at"], time.time() + self.retry_s)
                    self.pending[n["notify_id"]] = n
        path = os.path.join(self.root, NOTIFY_LOG_FILE)
        try:
            with open(path, encoding="utf-8") as f:
                for line in f:
                    try:
                        self.notify_log.append(json.loads(line))
                    except ValueError:
                        pass  # a line cut short by a crash
                    del self.notify_log[:-NOTIFY_LOG_MAX]
        except FileNotFoundError:
            pass
        except OSError as e:
            sys.exit("alipay-emulator: cannot read %s: %s" % (path, e))

    def save(self, t):
        write_atomic(os.path.join(self.trade_dir, t["out_trade_no"] + ".json"),
                     json.dumps(t, ensure_ascii=False, separators=(",", ":")))

    def log(self, fmt, *args):
        if self.args.verbose:
            sys.stderr.write("alipay-emulator: " + (fmt % args) + "\n")
            sys.stderr.flush()

    def next_seq(self):
        self.seq += 1
        return self.seq

    def new_trade_no(self):
        while True:
            no = "%s2200%06d%010d" % (datetime.now(CST).strftime("%Y%m%d"), self.next_seq() % 1000000,
                                      secrets.randbelow(10 ** 10))
            if no not in self.by_trade_no:
                return no

    def find(self, out_trade_no, trade_no):
        """The trade a biz_content names (trade_no first, as Alipay), or None."""
        if trade_no:
            t = self.by_trade_no.get(trade_no)
            if t is not None and out_trade_no and t["out_trade_no"] != out_trade_no:
                return None
            return t
        return self.trades.get(out_trade_no) if out_trade_no else None

    def refresh(self, t):
        """Apply the trade's expiry: an unpaid trade past time_expire is closed (a
        trade a buyer has seen gets the TRADE_CLOSED notify). Saves what it changes."""
        if t["status"] != WAIT or time.time() < t["expire_epoch"]:
            return
        t["status"] = CLOSED
        t["gmt_close"] = cst(t["expire_epoch"])
        t["close_reason"] = "expired"
        if t["scanned"]:
            self.queue_notify(t, CLOSED, {"gmt_close": t["gmt_close"]})
        self.save(t)

    def expire_loop(self):
        while True:
            time.sleep(0.5)
            with self.lock:
                if self.stopping:
                    return
                for t in self.trades.values():
                    self.refresh(t)

    # -- notifies ----------------------------------------------------------

    def notify_params(self, t, status, extra):
        paid = t.get("gmt_payment") is not None
        p = {
            "notify_time": cst(), "notify_type": "trade_status_sync",
            "notify_id": "%s%s%06d" % (datetime.now(CST).strftime("%Y%m%d%H%M%S"), secrets.token_hex(8),
                                       self.next_seq() % 1000000),
            "app_id": self.app_id, "auth_app_id": self.app_id, "charset": "utf-8", "version": "1.0",
            "sign_type": "RSA2", "trade_no": t["trade_no"], "out_trade_no": t["out_trade_no"],
            "trade_status": status, "total_amount": t["total_amount"], "seller_id": self.seller_id,
            "buyer_id": t.get("buyer_id") or "", "buyer_logon_id": t.get("buyer_logon_id") or "",
            "gmt_create": t["gmt_create"], "subject": t["subject"],
        }
        if paid:
            p.update({
                "receipt_amount": t["total_amount"], "invoice_amount": t["total_amount"],
                "buyer_pay_amount": t["total_amount"], "point_amount": "0.00", "gmt_payment": t["gmt_payment"],
                "fund_bill_list": json.dumps([{"amount": t["total_amount"], "fundChannel": "ALIPAYACCOUNT"}],
                                             separators=(",", ":")),
            })
        p.update(extra)
        p = {k: v for k, v in p.items() if v != ""}
        p["sign"] = rsa2_sign(self.alipay_key, sign_content(p, ("sign", "sign_type")))
        return p

    def queue_notify(self, t, status, extra):
        """Add a notify to the trade and wake the sender. The caller holds the lock
        and saves the trade. Returns the notify_id, or None without notify_url."""
        if not t.get("notify_url"):
            return None
        p = self.notify_params(t, status, extra)
        n = {
            "notify_id": p["notify_id"], "out_trade_no": t["out_trade_no"], "trade_status": status,
            "url": t["notify_url"], "body": urllib.parse.urlencode(p), "attempts": 0, "done": False,
            "result": "pending", "next_at": time.time(),
        }
        t["notifies"].append(n)
        self.pending[n["notify_id"]] = n
        self.cond.notify_all()
        return n["notify_id"]

    def attempt(self, n, replay):
        """Send one notify once (without the lock) and log the answer."""
        status, answer, err = http_post(n["url"], n["body"].encode("ascii"))
        ok = status == 200 and answer == b"success"
        with self.lock:
            n["attempts"] += 1
            entry = {
                "out_trade_no": n["out_trade_no"], "notify_id": n["notify_id"], "trade_status": n["trade_status"],
                "attempt": n["attempts"], "status_code": status, "body": answer.decode("utf-8", "replace"),
                "ok": ok, "replay": replay, "at": cst_ms(),
            }
            if err:
                entry["error"] = err
            self.notify_log.append(entry)
            del self.notify_log[:-NOTIFY_LOG_MAX]
            self.log_file.write(json.dumps(entry, ensure_ascii=False) + "\n")
            self.log_file.flush()
            self.log("notify %s %s attempt %d -> %s %r", n["out_trade_no"], n["trade_status"], n["attempts"],
                     status, err or answer[:40])
            return entry, ok

    def deliver(self, n):
        _, ok = self.attempt(n, replay=False)
        with self.lock:
            if ok or n["attempts"] >= MAX_NOTIFY_ATTEMPTS:
                n["done"] = True
                n["result"] = "delivered" if ok else "gave up"
                self.pending.pop(n["notify_id"], None)
            else:
                n["next_at"] = time.time() + self.retry_s
            self.inflight.discard(n["notify_id"])
            self.save(self.trades[n["out_trade_no"]])
            self.cond.notify_all()

    def notify_loop(self):
        with self.cond:
            while not self.stopping:
                now = time.time()
                wait = 1.0
                for nid, n in self.pending.items():
                    if nid in self.inflight:
                        continue
                    if n["next_at"] <= now:
                        self.inflight.add(nid)
                        threading.Thread(target=self.deliver, args=(n,), daemon=True).start()
                    else:
                        wait = min(wait, n["next_at"] - now)
                self.cond.wait(timeout=max(0.005, wait))

    # -- the API -----------------------------------------------------------

    def check_common(self, params):
        """The common parameters and the request signature, in the gateway's order:
        app first (unknown app: unsigned answers), then presence, values, signature."""
        app_id = params.get("app_id", "")
        if not app_id:
            raise GatewayError("40001", "isv.missing-app-id", signed=False)
        if app_id != self.app_id:
            raise GatewayError("40002", "isv.invalid-app-id", signed=False)
        if not params.get("sign_type"):
            raise GatewayError("40001", "isv.missing-signature-type")
        if not params.get("sign"):
            raise GatewayError("40001", "isv.missing-signature")
        if not params.get("timestamp"):
            raise GatewayError("40001", "isv.missing-timestamp")
        if not params.get("version"):
            raise GatewayError("40001", "isv.missing-version")
        charset = params.get("charset", "")
        if charset and charset.lower() not in ("utf-8", "utf8"):
            raise GatewayError("40002", "isv.invalid-charset", "this gateway speaks utf-8 only, not %s" % charset)
        fmt = params.get("format", "")
        if fmt and fmt.upper() != "JSON":
            raise GatewayError("40002", "isv.invalid-format")
        if params["sign_type"] == "RSA":
            raise GatewayError("40002", "isv.missing-signature-config")
        if params["sign_type"] != "RSA2":
            raise GatewayError("40002", "isv.invalid-signature-type")
        ts = parse_cst(params["timestamp"])
        if ts is None:
            raise GatewayError("40002", "isv.invalid-timestamp", "expected yyyy-MM-dd HH:mm:ss (UTC+8)")
        if abs(ts - time.time()) > TIMESTAMP_WINDOW_S:
            raise GatewayError("40002", "isv.invalid-timestamp",
                               "%s is more than %d minutes from the gateway's time %s (UTC+8)"
                               % (params["timestamp"], TIMESTAMP_WINDOW_S // 60, cst()))
        if params["version"] != "1.0":
            raise GatewayError("40002", "isv.invalid-parameter", "version must be 1.0")
        content = sign_content(params, ("sign",))
        if not rsa2_verify(self.app_key, content, params["sign"]):
            raise GatewayError("40002", "isv.invalid-signature", content)
        for url_param in ("notify_url", "return_url"):
            if params.get(url_param) and not valid_url(params[url_param]):
                raise GatewayError("40002", "isv.invalid-parameter", "%s is not an http(s) URL" % url_param)
        raw = params.get("biz_content", "")
        if not raw:
            raise invalid("biz_content is required")
        try:
            biz = json.loads(raw)
        except ValueError:
            biz = None
        if not isinstance(biz, dict):
            raise GatewayError("40002", "isv.invalid-parameter", "biz_content is not a JSON object")
        return biz

    @staticmethod
    def biz_str(biz, name, required=True, maxlen=256, pattern=None):
        v = biz.get(name)
        if isinstance(v, int) and not isinstance(v, bool):
            v = str(v)
        if v is None or v == "":
            if required:
                raise invalid("%s is required" % name)
            return None
        if not isinstance(v, str) or len(v) > maxlen or (pattern and not pattern.match(v)):
            raise invalid("%s is malformed" % name)
        return v

    def expiry(self, biz):
        """The epoch a new trade expires at (time_expire wins over timeout_express)."""
        now = time.time()
        te = biz.get("time_expire")
        if te not in (None, ""):
            at = parse_cst(te)
            if at is None:
                raise invalid("time_expire must be yyyy-MM-dd HH:mm:ss (UTC+8)")
            if at <= now:
                raise invalid("time_expire %s is already past" % te)
            return at
        tx = biz.get("timeout_express")
        if tx not in (None, ""):
            m = TIMEOUT_RE.match(tx) if isinstance(tx, str) else None
            if not m:
                raise invalid("timeout_express must be like 90m, 2h, 1d or 1c")
            n, unit = int(m.group(1)), m.group(2)
            if unit == "c":
                if n != 1:
                    raise invalid("timeout_express: only 1c")
                day = datetime.now(CST).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
                return day.timestamp()
            secs = n * {"m": 60, "h": 3600, "d": 86400}[unit]
            if secs > MAX_TIMEOUT_S:
                raise invalid("timeout_express ranges from 1m to 15d")
            return now + secs
        return now + DEFAULT_TIMEOUT_S

    def create(self, biz, params, how):
        """Create the trade, or find the same one again. Caller holds the lock."""
        otn = self.biz_str(biz, "out_trade_no", maxlen=64, pattern=OUT_NO_RE)
        cents = parse_amount(biz.get("total_amount"))
        if cents is None:
            raise invalid("total_amount must be yuan with at most two decimals, 0.01 to 100000000")
        subject = self.biz_str(biz, "subject", maxlen=256)
        if how == PAGE_PAY and biz.get("product_code") != "FAST_INSTANT_TRADE_PAY":
            raise invalid("product_code must be FAST_INSTANT_TRADE_PAY")
        expire = self.expiry(biz)
        t = self.trades.get(otn)
        if t is not None:
            self.refresh(t)
            if t["status"] == SUCCESS:
                raise GatewayError("40004", "ACQ.TRADE_HAS_SUCCESS", extra={"out_trade_no": otn})
            if t["status"] == CLOSED:
                raise GatewayError("40004", "ACQ.TRADE_HAS_CLOSE", extra={"out_trade_no": otn})
            if t["amount_cents"] != cents or t["subject"] != subject:
                raise GatewayError("40004", "ACQ.CONTEXT_INCONSISTENT",
                                   "out_trade_no %s exists with total_amount %s and another subject or amount"
                                   % (otn, t["total_amount"]), extra={"out_trade_no": otn})
            return t, False
        t = {
            "out_trade_no": otn, "trade_no": self.new_trade_no(), "app_id": self.app_id, "created_by": how,
            "subject": subject, "amount_cents": cents, "total_amount": yuan(cents), "status": WAIT,
            "scanned": False, "qr_code": None, "notify_url": params.get("notify_url") or None,
            "return_url": params.get("return_url") or None, "gmt_create": cst(),
            "expire_epoch": expire, "time_expire": cst(expire), "buyer_id": None, "buyer_logon_id": None,
            "gmt_payment": None, "gmt_close": None, "close_reason": None,
            "refunds": {}, "refunded_cents": 0, "notifies": [],
        }
        self.trades[otn] = t
        self.by_trade_no[t["trade_no"]] = t
        return t, True

    def m_precreate(self, biz, params):
        with self.lock:
            t, created = self.create(biz, params, "precreate")
            if not t["qr_code"]:
                t["qr_code"] = "https://qr.alipay.com/bax0%s" % secrets.token_hex(10)
                created = True
            if created:
                self.save(t)
            return {"code": "10000", "msg": "Success", "out_trade_no": t["out_trade_no"], "qr_code": t["qr_code"]}

    def visible(self, biz):
        """The trade for query/close/refund: a trade no buyer has scanned or paid does
        not exist yet for the gateway's trade core."""
        otn = self.biz_str(biz, "out_trade_no", required=False, maxlen=64)
        tno = self.biz_str(biz, "trade_no", required=False, maxlen=64)
        if not otn and not tno:
            raise invalid("out_trade_no or trade_no is required")
        t = self.find(otn, tno)
        if t is not None:
            self.refresh(t)
        if t is None or not t["scanned"]:
            extra = {"out_trade_no": otn} if otn else {"trade_no": tno}
            raise GatewayError("40004", "ACQ.TRADE_NOT_EXIST", extra=extra)
        return t

    def m_query(self, biz, params):
        with self.lock:
            zero = {"buyer_pay_amount": "0.00", "invoice_amount": "0.00", "point_amount": "0.00",
                    "receipt_amount": "0.00"}
            try:
                t = self.visible(biz)
            except GatewayError as e:
                if e.sub_code == "ACQ.TRADE_NOT_EXIST":
                    e.extra.update(zero)
                raise
            paid = t["gmt_payment"] is not None
            amount = t["total_amount"] if paid else "0.00"
            r = {"code": "10000", "msg": "Success", "buyer_logon_id": t["buyer_logon_id"],
                 "buyer_pay_amount": amount, "buyer_user_id": t["buyer_id"], "invoice_amount": amount,
                 "out_trade_no": t["out_trade_no"], "point_amount": "0.00", "receipt_amount": amount,
                 "total_amount": t["total_amount"], "trade_no": t["trade_no"], "trade_status": t["status"]}
            if paid:
                r["send_pay_date"] = t["gmt_payment"]
            return r

    def m_close(self, biz, params):
        with self.lock:
            t = self.visible(biz)
            if t["status"] != WAIT:
                raise GatewayError("40004", "ACQ.TRADE_STATUS_ERROR",
                                   "only a trade waiting for payment can be closed; this one is %s" % t["status"],
                                   extra={"out_trade_no": t["out_trade_no"], "trade_no": t["trade_no"]})
            t["status"] = CLOSED
            t["gmt_close"] = cst()
            t["close_reason"] = "closed"
            self.queue_notify(t, CLOSED, {"gmt_close": t["gmt_close"]})
            self.save(t)
            return {"code": "10000", "msg": "Success", "out_trade_no": t["out_trade_no"], "trade_no": t["trade_no"]}

    def m_refund(self, biz, params):
        with self.lock:
            cents = parse_amount(biz.get("refund_amount"))
            if cents is None:
                raise invalid("refund_amount must be yuan with at most two decimals, 0.01 to 100000000")
            req = self.biz_str(biz, "out_request_no", required=False, maxlen=64)
            reason = self.biz_str(biz, "refund_reason", required=False, maxlen=256)
            t = self.visible(biz)
            req = req or t["out_trade_no"]  # Alipay: absent means the trade's one refund
            ids = {"out_trade_no": t["out_trade_no"], "trade_no": t["trade_no"]}
            done = t["refunds"].get(req)
            if done is not None:
                if done["amount_cents"] != cents:
                    raise GatewayError("40004", "ACQ.DISCORDANT_REPEAT_REQUEST",
                                       "out_request_no %s already refunded %s" % (req, done["refund_amount"]),
                                       extra=ids)
                fund_change, gmt = "N", done["gmt_refund_pay"]
            else:
                if t["gmt_payment"] is None:
                    raise GatewayError("40004", "ACQ.TRADE_STATUS_ERROR", "the trade is not paid", extra=ids)
                left = t["amount_cents"] - t["refunded_cents"]
                if cents > left:
                    raise GatewayError("40004", "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL",
                                       "refund_amount %s is more than the %s left to refund"
                                       % (yuan(cents), yuan(left)),
                                       extra=ids)
                now = time.time()
                gmt = cst(now)
                t["refunds"][req] = {"amount_cents": cents, "refund_amount": yuan(cents), "reason": reason,
                                     "gmt_refund_pay": gmt}
                t["refunded_cents"] += cents
                extra = {"refund_fee": yuan(t["refunded_cents"]), "gmt_refund": cst_ms(now), "out_biz_no": req}
                if t["refunded_cents"] == t["amount_cents"]:
                    t["status"] = CLOSED
                    t["gmt_close"] = gmt
                    t["close_reason"] = "refunded"
                    extra["gmt_close"] = gmt
                self.queue_notify(t, t["status"], extra)
                self.save(t)
                fund_change = "Y"
            return {"code": "10000", "msg": "Success", "buyer_logon_id": t["buyer_logon_id"],
                    "buyer_user_id": t["buyer_id"], "fund_change": fund_change, "gmt_refund_pay": gmt,
                    "out_trade_no": t["out_trade_no"], "refund_fee": yuan(t["refunded_cents"]),
                    "send_back_fee": yuan(cents), "trade_no": t["trade_no"]}

    def m_refund_query(self, biz, params):
        with self.lock:
            req = self.biz_str(biz, "out_request_no", maxlen=64)
            otn = self.biz_str(biz, "out_trade_no", required=False, maxlen=64)
            tno = self.biz_str(biz, "trade_no", required=False, maxlen=64)
            if not otn and not tno:
                raise invalid("out_trade_no or trade_no is required")
            t = self.find(otn, tno)
            if t is None or not t["scanned"]:
                raise GatewayError("40004", "ACQ.TRADE_NOT_EXIST", extra={"out_trade_no": otn} if otn else {})
            r = {"code": "10000", "msg": "Success", "out_request_no": req, "out_trade_no": t["out_trade_no"],
                 "trade_no": t["trade_no"]}
            done = t["refunds"].get(req)
            if done is not None:  # no refund fields at all means: no such refund
                r.update({"gmt_refund_pay": done["gmt_refund_pay"], "refund_amount": done["refund_amount"],
                          "refund_status": "REFUND_SUCCESS", "total_amount": t["total_amount"]})
            return r

    METHODS = {
        "alipay.trade.precreate": "m_precreate",
        "alipay.trade.query": "m_query",
        "alipay.trade.close": "m_close",
        "alipay.trade.refund": "m_refund",
        "alipay.trade.fastpay.refund.query": "m_refund_query",
        PAGE_PAY: None,
    }

    def api(self, params):
        """Answer one gateway call: (content type, body bytes)."""
        method = params.get("method", "")
        page = method == PAGE_PAY
        if not method:
            err, key = GatewayError("40001", "isv.missing-method", signed=False), "error_response"
        elif method not in self.METHODS:
            err, key = GatewayError("40002", "isv.invalid-method", signed=False), "error_response"
        else:
            err, key = None, method.replace(".", "_") + "_response"
        obj = None
        if err is None:
            try:
                biz = self.check_common(params)
                if page:
                    return self.page_pay(biz, params)
                obj = getattr(self, self.METHODS[method])(biz, params)
            except GatewayError as e:
                err = e
        if err is not None:
            self.log("%s -> %s %s %s", method or "(no method)", err.code, err.sub_code, err.sub_msg)
            if page:
                return self.error_page(err)
            obj = err.body()
        # Serialise the value once, sign exactly those bytes and splice them in unchanged.
        text = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).replace("/", "\\/")
        body = '{"%s":%s' % (key, text)
        if err is None or err.signed:
            body += ',"sign":"%s"' % rsa2_sign(self.alipay_key, text)
        body += "}"
        return "application/json;charset=utf-8", body.encode("utf-8")

    # -- page.pay: the cashier page ---------------------------------------

    def page_pay(self, biz, params):
        with self.lock:
            try:
                t, created = self.create(biz, params, PAGE_PAY)
            except GatewayError as e:
                return self.error_page(e)
            if created:
                self.save(t)
        e = html.escape
        page = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>支付宝 - 网上支付 (emulator)</title></head>
<body>
<h1>Alipay cashier (emulator)</h1>
<table>
<tr><th>Subject</th><td id="subject">%s</td></tr>
<tr><th>Amount</th><td id="total_amount">%s</td></tr>
<tr><th>Order</th><td id="out_trade_no">%s</td></tr>
<tr><th>Pay before</th><td id="time_expire">%s</td></tr>
<tr><th>Status</th><td id="status">%s</td></tr>
</table>
<form method="post" action="/emulator/pay">
<input type="hidden" name="out_trade_no" value="%s">
<input type="hidden" name="redirect" value="1">
<button type="submit">Pay %s yuan</button>
</form>
</body></html>
""" % (e(t["subject"]), e(t["total_amount"]), e(t["out_trade_no"]), e(t["time_expire"]), e(t["status"]),
       e(t["out_trade_no"], quote=True), e(t["total_amount"]))
        return "text/html;charset=utf-8", page.encode("utf-8")

    @staticmethod
    def error_page(err):
        code = err.sub_code[4:] if err.sub_code.startswith("isv.") else err.sub_code
        page = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>支付宝 - 网上支付 (emulator)</title></head>
<body>
<p>调试错误，请回到请求来源地，重新发起请求。</p>
<p>错误代码 <span id="sub_code">%s</span> 错误原因: <span id="sub_msg">%s</span></p>
<p id="code">%s %s</p>
</body></html>
""" % (html.escape(code), html.escape(err.sub_msg), html.escape(err.code), html.escape(MSG[err.code]))
        return "text/html;charset=utf-8", page.encode("utf-8")

    # -- test controls -----------------------------------------------------

    def control_trade(self, otn):
        t = self.trades.get(otn) if otn else None
        if t is None:
            raise Refused(409, "no trade with out_trade_no %r" % otn)
        self.refresh(t)
        if t["status"] == SUCCESS:
            raise Refused(409, "trade %s is already paid" % otn)
        if t["status"] == CLOSED:
            raise Refused(409, "trade %s is closed (%s at %s)" % (otn, t["close_reason"], t["gmt_close"]))
        return t

    @staticmethod
    def buyer(form, t):
        if not t["buyer_id"]:
            t["buyer_id"] = form.get("buyer_id") or "2088" + "".join(str(secrets.randbelow(10)) for _ in range(12))
            t["buyer_logon_id"] = form.get("buyer_logon_id") or "buy***@sandbox.com"

    def scan(self, form):
        with self.lock:
            t = self.control_trade(form.get("out_trade_no"))
            self.buyer(form, t)
            t["scanned"] = True
            self.save(t)
            return dict(t)

    def pay(self, form):
        with self.lock:
            t = self.control_trade(form.get("out_trade_no"))
            self.buyer(form, t)
            t["scanned"] = True
            t["status"] = SUCCESS
            t["gmt_payment"] = cst()
            nid = self.queue_notify(t, SUCCESS, {})
            self.save(t)
            out = dict(t)
            out["notify_id"] = nid
            return out

    def return_url(self, t):
        """Where the cashier sends the browser after payment, with Alipay's signed
        synchronous return parameters (verified like a notify)."""
        p = {"app_id": self.app_id, "auth_app_id": self.app_id, "charset": "utf-8",
             "method": "alipay.trade.page.pay.return", "out_trade_no": t["out_trade_no"],
             "seller_id": self.seller_id, "sign_type": "RSA2", "timestamp": cst(),
             "total_amount": t["total_amount"], "trade_no": t["trade_no"], "version": "1.0"}
        p["sign"] = rsa2_sign(self.alipay_key, sign_content(p, ("sign", "sign_type")))
        sep = "&" if "?" in t["return_url"] else "?"
        return t["return_url"] + sep + urllib.parse.urlencode(p)

    def notify_again(self, form):
        otn = form.get("out_trade_no")
        with self.lock:
            t = self.trades.get(otn) if otn else None
            if t is None:
                raise Refused(409, "no trade with out_trade_no %r" % otn)
            nid = form.get("notify_id")
            n = next((n for n in reversed(t["notifies"]) if not nid or n["notify_id"] == nid), None)
            if n is None:
                raise Refused(409, "trade %s has no notify %s to send again" % (otn, nid or ""))
        entry, _ = self.attempt(n, replay=True)
        with self.lock:
            self.save(t)
        return entry


# ---------------------------------------------------------------------------
# HTTP


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "alipay-emulator"
    sys_version = ""
    gw = None

    def log_message(self, fmt, *args):
        self.gw.log("%s %s", self.address_string(), fmt % args)

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def send(self, status, ctype, body, headers=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def send_json(self, status, obj):
        self.send(status, "application/json; charset=utf-8",
                  (json.dumps(obj, ensure_ascii=False, indent=1) + "\n").encode("utf-8"))

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            out = b""
            while True:
                line = self.rfile.readline(1024)
                try:
                    n = int(line.split(b";")[0].strip(), 16)
                except ValueError:
                    raise Refused(400, "malformed chunked body")
                if n == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                if len(out) + n > MAX_BODY:
                    self.close_connection = True
                    raise Refused(413, "body larger than %d bytes" % MAX_BODY)
                out += self.rfile.read(n)
                self.rfile.readline(1024)
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        try:
            n = int(length)
        except ValueError:
            raise Refused(400, "malformed Content-Length")
        if n < 0 or n > MAX_BODY:
            self.close_connection = True
            raise Refused(413, "body larger than %d bytes" % MAX_BODY)
        return self.rfile.read(n)

    def is_form(self):
        ctype = self.headers.get("Content-Type", "")
        return ctype.split(";")[0].strip().lower() == "application/x-www-form-urlencoded"

    def route(self, method):
        try:
            split = urllib.parse.urlsplit(self.path)
            path = split.path
            query = split.query.encode("latin-1")
            body = self.read_body() if method == "POST" else b""
            if path == "/gateway.do":
                return self.h_gateway(query, body)
            if path.startswith("/emulator/"):
                return self.h_control(method, path[len("/emulator/"):], query, body)
            raise Refused(404, "no such path: %s" % path)
        except Refused as e:
            self.send_json(e.status, {"error": e.message})
        except Exception as e:  # a bug of the emulator: say so loudly, keep serving
            traceback.print_exc()
            self.close_connection = True
            self.send_json(500, {"error": "emulator bug: %s: %s" % (type(e).__name__, e)})

    def h_gateway(self, query, body):
        params = {}
        try:
            # A servlet reads the body as parameters only when it is a form, so does this.
            pairs = parse_form(query) + (parse_form(body) if body and self.is_form() else [])
        except UnicodeDecodeError:
            pairs = None
        if body and not self.is_form():
            self.gw.log("gateway: body ignored, Content-Type %r is not a form", self.headers.get("Content-Type"))
        dup = None
        for k, v in pairs or ():
            if k in params and params[k] != v:
                dup = k
            params[k] = v
        if pairs is None or dup:
            method = params.get("method", "")
            key = method.replace(".", "_") + "_response" if method in Gateway.METHODS else "error_response"
            err = (GatewayError("40002", "isv.invalid-charset", "parameters are not UTF-8", signed=False)
                   if pairs is None else
                   GatewayError("40002", "isv.invalid-parameter", "%s is given twice with different values" % dup,
                                signed=False))
            text = json.dumps(err.body(), ensure_ascii=False, separators=(",", ":")).replace("/", "\\/")
            return self.send(200, "application/json;charset=utf-8", ('{"%s":%s}' % (key, text)).encode("utf-8"))
        ctype, out = self.gw.api(params)
        self.send(200, ctype, out)

    def h_control(self, method, what, query, body):
        form = {}
        try:
            for k, v in parse_form(query) + (parse_form(body) if body else []):
                form[k] = v
        except UnicodeDecodeError:
            raise Refused(400, "the form is not UTF-8")
        gw = self.gw
        if method == "POST" and what == "pay":
            trade = gw.pay(form)
            if form.get("redirect") and trade.get("return_url"):
                return self.send(302, "text/plain; charset=utf-8", b"paid\n",
                                 [("Location", gw.return_url(trade))])
            if form.get("redirect"):
                return self.send(200, "text/html;charset=utf-8",
                                 ("<!DOCTYPE html><html><body><p>Paid %s yuan for %s.</p></body></html>\n"
                                  % (html.escape(trade["total_amount"]), html.escape(trade["out_trade_no"])))
                                 .encode("utf-8"))
            return self.send_json(200, trade)
        if method == "POST" and what == "scan":
            return self.send_json(200, gw.scan(form))
        if method == "POST" and what == "notify-again":
            return self.send_json(200, gw.notify_again(form))
        if method == "GET" and what == "trades":
            with gw.lock:
                return self.send_json(200, list(gw.trades.values()))
        if method == "GET" and what.startswith("trades/"):
            otn = urllib.parse.unquote(what[len("trades/"):])
            with gw.lock:
                t = gw.trades.get(otn)
                if t is None:
                    raise Refused(404, "no trade with out_trade_no %r" % otn)
                gw.refresh(t)
                return self.send_json(200, t)
        if method == "GET" and what == "notifies":
            with gw.lock:
                otn = form.get("out_trade_no")
                return self.send_json(200, [n for n in gw.notify_log if not otn or n["out_trade_no"] == otn])
        raise Refused(404, "no such control: %s /emulator/%s" % (method, what))


def main():
    ap = argparse.ArgumentParser(description="Alipay OpenAPI gateway emulator for tests (see docs/alipay-emulator.md).")
    ap.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    ap.add_argument("--port", type=int, required=True, help="port to listen on (0: any free port)")
    ap.add_argument("--data", required=True, help="folder for the state file")
    ap.add_argument("--app-id", required=True, help="the one app this gateway knows")
    ap.add_argument("--app-public-key", required=True, help="the app's RSA public key (verifies requests)")
    ap.add_argument("--alipay-private-key", required=True, help="the gateway's RSA private key (signs answers)")
    ap.add_argument("--notify-retry-ms", type=int, default=1000,
                    help="delay between notify attempts while the answer is not `success` (1000)")
    ap.add_argument("--seller-id", help="seller_id in notifies (default: 2088 and 12 digits derived from the app id)")
    ap.add_argument("--verbose", action="store_true", help="log every request and notify on stderr")
    args = ap.parse_args()
    if args.notify_retry_ms < 1:
        ap.error("--notify-retry-ms must be at least 1")
    if not args.app_id:
        ap.error("--app-id must not be empty")

    gw = Gateway(args)
    Handler.gw = gw
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    threading.Thread(target=gw.notify_loop, daemon=True).start()
    threading.Thread(target=gw.expire_loop, daemon=True).start()

    def stop(signum, frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    host, port = server.server_address[:2]
    sys.stdout.write("alipay emulator listening on %s:%d\n" % (host, port))
    sys.stdout.flush()
    server.serve_forever(poll_interval=0.1)
    with gw.lock:
        gw.stopping = True
        gw.cond.notify_all()
    server.server_close()


if __name__ == "__main__":
    main()
