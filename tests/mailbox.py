"""A real SMTP server for tests that do not run the whole stack: aiosmtpd keeping mails as `citypair run`'s does."""

from pathlib import Path

from aiosmtpd.controller import Controller

from citypair_cli.mailbox import KeepInFolder, read_mails
from citypair_cli.stack import free_port


class Mailbox:
    """Started and stopped at will, always on the same port (a restarted mail server is the same server)."""

    def __init__(self, folder: Path, port: int | None = None):
        self.folder = folder
        self.port = port or free_port()
        self.controller: Controller | None = None

    def start(self) -> "Mailbox":
        self.controller = Controller(KeepInFolder(self.folder), hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def mails(self, to: str | None = None) -> list:
        return [m for m in read_mails(self.folder) if to is None or m["To"] == to]
