"""Signs and verifies tickets with the real peer implementations, for
sessiond's interoperability tests (crates/server/tests/tickets.rs).

    ticket_peers.py sign   IMPL DIGEST SECRET USER TOKENS DATA IP TIME
    ticket_peers.py verify IMPL DIGEST SECRET COOKIE IP NOW TIMEOUT

IMPL is plone (plone.session's tktauth), paste (paste.auth.auth_tkt) or
pyramid (pyramid.authentication). DIGEST is md5, sha256, sha512 or
hmac-sha256 (plone's default). TOKENS is comma-separated. `sign` prints the
cookie value the peer would send; `verify` prints the ticket as JSON, or
exits 1 with the peer's reason.
"""

import base64
import binascii
import hashlib
import importlib.util
import json
import os
import sys


def load_tktauth():
    """plone.session's tktauth, loaded by path: importing the plone.session
    package would need Zope; the module itself needs only the standard library."""
    import site

    for base in site.getsitepackages():
        path = os.path.join(base, "plone", "session", "tktauth.py")
        if os.path.exists(path):
            spec = importlib.util.spec_from_file_location("tktauth", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
    raise SystemExit("plone.session's tktauth.py is not installed")


def sign(impl, digest, secret, user, tokens, data, ip, when):
    tokens = [t for t in tokens.split(",") if t]
    if impl == "plone":
        tkt = load_tktauth()
        ticket = tkt.createTicket(
            secret, user, tokens, data, ip=ip, timestamp=when,
            mod_auth_tkt=(digest == "md5"),
        )
        # As plone.session's plugin sets the cookie.
        return binascii.b2a_base64(ticket).rstrip().decode()
    if impl == "paste":
        from paste.auth.auth_tkt import AuthTicket

        t = AuthTicket(secret, user, ip, tokens=tokens, user_data=data, time=when,
                       digest_algo=getattr(hashlib, digest))
        return t.cookie_value().decode()
    if impl == "pyramid":
        from pyramid.authentication import AuthTicket

        t = AuthTicket(secret, user, ip, tokens=tokens, user_data=data, time=when,
                       hashalg=digest)
        return t.cookie_value()
    raise SystemExit(f"unknown implementation {impl}")


def verify(impl, digest, secret, cookie, ip, now, timeout):
    if impl == "plone":
        tkt = load_tktauth()
        ticket = binascii.a2b_base64(cookie)
        data = tkt.validateTicket(secret, ticket, ip=ip, timeout=timeout, now=now,
                                  mod_auth_tkt=(digest == "md5"))
        if data is None:
            raise SystemExit("plone: ticket not valid")
        _, user, tokens, user_data, ts = data
        return {"user": user, "tokens": [t for t in tokens if t], "user_data": user_data, "issued": ts}
    if impl == "paste":
        from paste.auth.auth_tkt import BadTicket, parse_ticket

        value = cookie.encode()
        if b"!" not in value:  # the base64 form of AuthTicket.cookie()
            value = base64.b64decode(value)
        try:
            ts, user, tokens, user_data = parse_ticket(secret, value, ip, getattr(hashlib, digest))
        except BadTicket as e:
            raise SystemExit(f"paste: {e}")
        if timeout and ts + timeout < now:
            raise SystemExit("paste: expired")
        return {"user": user, "tokens": [t.decode() for t in tokens if t],
                "user_data": user_data.decode(), "issued": ts}
    if impl == "pyramid":
        from pyramid.authentication import BadTicket, parse_ticket

        try:
            ts, user, tokens, user_data = parse_ticket(secret, cookie, ip, digest)
        except BadTicket as e:
            raise SystemExit(f"pyramid: {e}")
        if timeout and ts + timeout < now:
            raise SystemExit("pyramid: expired")
        return {"user": user, "tokens": [t for t in tokens if t], "user_data": user_data, "issued": ts}
    raise SystemExit(f"unknown implementation {impl}")


def main(argv):
    if argv[1] == "sign":
        impl, digest, secret, user, tokens, data, ip, when = argv[2:10]
        print(sign(impl, digest, secret, user, tokens, data, ip, int(when)))
    elif argv[1] == "verify":
        impl, digest, secret, cookie, ip, now, timeout = argv[2:9]
        print(json.dumps(verify(impl, digest, secret, cookie, ip, int(now), int(timeout))))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
