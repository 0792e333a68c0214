"""The local SMTP server of `citypair run`: it accepts every mail and keeps each, as received (RFC 5322), in a file
`<folder>/<timestamp>-<n>.eml`; nothing is delivered anywhere. web's /dev/mail page and the tests read them there.

Run as a part of the stack: `python -m citypair_cli.mailbox --port 18025 --folder var/mail`."""

import argparse
import asyncio
import email
import email.policy
import itertools
import os
import signal
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session


class KeepInFolder:
    """An aiosmtpd handler: each mail becomes a file, written whole before it appears (a reader never sees half)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self._numbers = itertools.count(1)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        name = f"{stamp}-{next(self._numbers)}.eml"
        partial = self.folder / f".{name}.partial"
        partial.write_bytes(envelope.original_content or envelope.content)
        os.replace(partial, self.folder / name)
        return "250 Message accepted for delivery"


def read_mails(folder: Path) -> list[EmailMessage]:
    """Every mail kept in `folder`, oldest first."""
    if not folder.is_dir():
        return []
    files = sorted(folder.glob("*.eml"))
    return [email.message_from_bytes(path.read_bytes(), policy=email.policy.default) for path in files]


async def serve(host: str, port: int, folder: Path) -> None:
    handler = KeepInFolder(folder)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(handler, hostname="citypair-mailbox"), host, port)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--folder", type=Path, required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port, args.folder))


if __name__ == "__main__":
    main()
