"""An SMTP sink for the peer tests: accepts every message and writes it, as received, to
one .eml file per message in a folder. Start it before `cargo test --features peer-tests`:

    python3 tests/peers/smtp_sink.py --host 127.0.0.1 --port 2525 --dir target/smtp-sink
"""

import argparse
import asyncio
import os
import time
import uuid

from aiosmtpd.controller import Controller


class FolderHandler:
    def __init__(self, folder):
        self.folder = folder

    async def handle_DATA(self, server, session, envelope):
        name = f"{time.time_ns()}-{uuid.uuid4().hex}.eml"
        tmp = os.path.join(self.folder, name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(f"X-Envelope-To: {', '.join(envelope.rcpt_tos)}\r\n".encode())
            f.write(envelope.original_content or envelope.content)
        # Rename last, so a reader never sees half a message.
        os.replace(tmp, os.path.join(self.folder, name))
        return "250 Message accepted for delivery"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=2525)
    p.add_argument("--dir", default="target/smtp-sink")
    args = p.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    controller = Controller(FolderHandler(args.dir), hostname=args.host, port=args.port)
    controller.start()
    print(f"smtp sink on {args.host}:{args.port} writing to {args.dir}", flush=True)
    try:
        asyncio.get_event_loop().run_forever()
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
