"""An independent SMTP server (aiosmtpd) for the connector's PIN-mail test.

Listens on 127.0.0.1:<argv[1]>, prints "READY" once listening, then one JSON line per
message received: {"mail_from", "rcpt_tos", "data"}. Runs until killed.
"""
import json
import sys
import time

from aiosmtpd.controller import Controller


class Handler:
    async def handle_DATA(self, server, session, envelope):
        print(json.dumps({
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "data": envelope.content.decode("utf-8", "replace"),
        }), flush=True)
        return "250 Message accepted"


controller = Controller(Handler(), hostname="127.0.0.1", port=int(sys.argv[1]))
controller.start()
print("READY", flush=True)
try:
    while True:
        time.sleep(3600)
finally:
    controller.stop()
