#!/usr/bin/env python3
"""Hold N keep-alive HTTP/1.1 connections open to a daemon, for its RSS figures.

    hold_conns.py HOST PORT N PATH

Steps, each announced on stdout as one line so that the caller can read the
daemon's memory between them; the caller moves it on with SIGUSR1:
  1. opens N TCP connections                                 -> "connected N"
  2. one GET PATH on each connection, one after the other (each answer read before
     the next request): N idle keep-alive connections         -> "idle N OK"
  3. one GET PATH on every connection at once, then reads all the answers: N
     requests in flight together, as at the start of a sale  -> "burst N OK"
  4. closes everything and exits 0 (also on SIGTERM at any wait).
OK counts the 200 answers. Any failure prints "error: ..." on stderr and exits 1.
Plain sockets only; bounded by timeouts (10 s per connect, 60 s per round of
answers, 300 s per wait for a signal).
"""
import resource
import selectors
import signal
import socket
import sys
import time


class Failure(Exception):
    pass


def wait_signal():
    got = signal.sigtimedwait([signal.SIGUSR1, signal.SIGTERM], 300)
    if got is None:
        raise Failure("no signal within 300 s")
    return got.si_signo


def answered(buf):
    """None while the answer in buf is incomplete, else whether it is a 200."""
    head, sep, body = buf.partition(b"\r\n\r\n")
    if not sep:
        return None
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if len(body) < length:
        return None
    return head.startswith(b"HTTP/1.1 200")


def ask(socks, req, together):
    """One request on every socket; returns how many got a 200."""
    sel = selectors.DefaultSelector()
    ok = 0
    groups = [socks] if together else [[s] for s in socks]
    deadline = time.monotonic() + 60
    for group in groups:
        bufs = {}
        for s in group:
            s.sendall(req)
            sel.register(s, selectors.EVENT_READ)
            bufs[s] = b""
        while bufs:
            if time.monotonic() > deadline:
                raise Failure(f"{len(bufs)} connections got no answer within 60 s")
            for key, _ in sel.select(1):
                s = key.fileobj
                data = s.recv(65536)
                if not data:
                    raise Failure("the daemon closed a connection before answering")
                bufs[s] += data
                status = answered(bufs[s])
                if status is not None:
                    ok += status
                    sel.unregister(s)
                    del bufs[s]
    sel.close()
    return ok


def main():
    if len(sys.argv) != 5:
        print("usage: hold_conns.py HOST PORT N PATH", file=sys.stderr)
        return 2
    host, port, n, path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1, signal.SIGTERM])

    need = n + 64
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            print(f"error: {n} connections need {need} file descriptors; the hard limit is {hard}", file=sys.stderr)
            return 1
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))

    socks = []
    req = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    try:
        for i in range(n):
            try:
                s = socket.create_connection((host, port), timeout=10)
            except OSError as e:
                raise Failure(f"connection {i + 1} of {n} to {host}:{port}: {e}")
            s.setblocking(False)
            socks.append(s)
        print(f"connected {len(socks)}", flush=True)
        for word, together in (("idle", False), ("burst", True)):
            if wait_signal() == signal.SIGTERM:
                return 0
            print(f"{word} {n} {ask(socks, req, together)}", flush=True)
        wait_signal()
        return 0
    except (Failure, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        for s in socks:
            s.close()


if __name__ == "__main__":
    sys.exit(main())
