#!/usr/bin/env python3
"""How long a write on one sessiond instance takes to reach another's near
cache: log in on B, check on A until A answers from its cache, then revoke
(or log in again: supersede) on B and poll A until it no longer says YES.
Prints one line per sample: kind, milliseconds. Used by bench/propagation.sh.

    propagation.py A_BASE B_BASE SAMPLES
"""
import http.client
import sys
import time
import urllib.parse


def conn(base):
    host = urllib.parse.urlsplit(base).netloc
    return http.client.HTTPConnection(host)


def get(c, path):
    c.request("GET", path)
    r = c.getresponse()
    return r.read().decode()


def main():
    a_base, b_base, samples = sys.argv[1], sys.argv[2], int(sys.argv[3])
    a, b = conn(a_base), conn(b_base)
    login = "/auth_token?realm=bench&user=prop{}&pwd=bench-pw"
    for i in range(samples):
        kind = "revoke" if i % 2 == 0 else "supersede"
        user = i % 50
        token = get(b, login.format(user)).splitlines()[0]
        q = urllib.parse.quote(token)
        for _ in range(3):  # the first check fills A's cache
            assert get(a, f"/valid?realm=bench&token={q}").startswith("YES")
        start = time.perf_counter()
        if kind == "revoke":
            get(b, f"/revoke?realm=bench&token={q}")
        else:
            get(b, login.format(user))
        while get(a, f"/valid?realm=bench&token={q}").startswith("YES"):
            if time.perf_counter() - start > 5:
                sys.exit(f"{kind}: still YES on A after 5 s")
        print(kind, f"{(time.perf_counter() - start) * 1000:.3f}")


main()
