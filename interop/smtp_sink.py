"""An independent SMTP server (aiosmtpd) for the connector's PIN-mail tests.

    smtp_sink.py PORT [--mode plain|starttls|tls] [--cert PEM --key PEM] [--auth USER:PASSWORD]

Listens on 127.0.0.1:PORT, prints "READY" once listening, then one JSON line per
message received: {"mail_from", "rcpt_tos", "data", "tls", "auth_login"}. Runs until
killed.

- plain (default): no TLS.
- starttls: STARTTLS offered and required before MAIL (certificate and key needed).
- tls: implicit TLS from the first byte (port 465 style).
- --auth: AUTH PLAIN/LOGIN required, accepting only USER:PASSWORD.
"""
import argparse
import json
import ssl
import sys
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Handler:
    async def handle_DATA(self, server, session, envelope):
        login = session.auth_data if session.authenticated else None
        if isinstance(login, bytes):
            login = login.decode("utf-8", "replace")
        print(json.dumps({
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "data": envelope.content.decode("utf-8", "replace"),
            # STARTTLS sets session.ssl; implicit TLS shows on the transport.
            "tls": session.ssl is not None
            or server.transport.get_extra_info("ssl_object") is not None,
            "auth_login": login,
        }), flush=True)
        return "250 Message accepted"


def authenticator_for(user, password):
    def authenticate(server, session, envelope, mechanism, auth_data):
        if (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode()
            and auth_data.password == password.encode()
        ):
            return AuthResult(success=True, auth_data=auth_data.login)
        return AuthResult(success=False, handled=False)

    return authenticate


class ImplicitTlsController(Controller):
    """Implicit TLS: the readiness probe must speak TLS as a client, not with the
    server's context."""

    def _trigger_server(self):
        import socket

        client = ssl.create_default_context()
        client.check_hostname = False
        client.verify_mode = ssl.CERT_NONE
        with socket.create_connection((self.hostname, self.port), 1.0) as raw:
            with client.wrap_socket(raw) as s:
                s.recv(1024)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("port", type=int)
    p.add_argument("--mode", choices=["plain", "starttls", "tls"], default="plain")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--auth")
    a = p.parse_args()

    kwargs = {}
    ctx = None
    if a.mode != "plain":
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(a.cert, a.key)
    if a.auth:
        user, password = a.auth.split(":", 1)
        kwargs.update(
            authenticator=authenticator_for(user, password),
            auth_required=True,
            # aiosmtpd counts only STARTTLS as TLS; implicit TLS is TLS from the start.
            auth_require_tls=a.mode == "starttls",
        )
    if a.mode == "starttls":
        controller = Controller(
            Handler(), hostname="127.0.0.1", port=a.port,
            tls_context=ctx, require_starttls=True, **kwargs,
        )
    elif a.mode == "tls":
        controller = ImplicitTlsController(
            Handler(), hostname="127.0.0.1", port=a.port, ssl_context=ctx, **kwargs,
        )
    else:
        controller = Controller(Handler(), hostname="127.0.0.1", port=a.port, **kwargs)
    controller.start()
    print("READY", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


if __name__ == "__main__":
    sys.exit(main())
