"""What `genqueue up` keeps in its data directory, and how other commands find it."""

import contextlib
import fcntl
import json
import os
import secrets
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genqueue.errors import CliError
from models.settings import default_data_dir


@dataclass(frozen=True)
class DataDir:
    root: Path

    @classmethod
    def from_env(cls) -> "DataDir":
        """The data dir the settings would use, without validating every other setting."""
        raw = os.environ.get("GENQUEUE_DATA_DIR")
        return cls(Path(raw).expanduser() if raw else default_data_dir())

    @property
    def dev_key_file(self) -> Path:
        return self.root / "dev-api-key"

    @property
    def flower_password_file(self) -> Path:
        return self.root / "flower-password"

    @property
    def flower_db(self) -> Path:
        return self.root / "flower" / "state"

    @property
    def state_file(self) -> Path:
        """Written by a running `genqueue up`: its URLs, read by the client commands."""
        return self.root / "up.json"

    @property
    def lock_file(self) -> Path:
        return self.root / "up.lock"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def redis(self) -> Path:
        return self.root / "redis"

    @property
    def simulator(self) -> Path:
        """The built-in simulator's jobs, and the port it listens on (``port``)."""
        return self.root / "simulator"

    @property
    def beat_schedule(self) -> Path:
        return self.root / "celerybeat-schedule"

    def metrics(self, port: int) -> Path:
        return self.root / "metrics" / f"worker-{port}"

    def make_private(self) -> None:
        """Create the data dir 0700 and make everything in it private to its owner: directories
        0700, files 0600 (sockets and links left alone). A data dir of an earlier version
        (0755, files 0644) is tightened too. What is created later is private through the
        0700 directory (and ``genqueue up``'s umask)."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            _make_private(str(self.root), 0o700)
            for top, dirs, files in os.walk(self.root):
                for name in dirs:
                    _make_private(os.path.join(top, name), 0o700)
                for name in files:
                    _make_private(os.path.join(top, name), 0o600)
        except PermissionError as exc:
            raise CliError(
                f"cannot make {exc.filename} private to this user ({exc.strerror}); "
                f"{self.root} must belong to the user that runs genqueue"
            ) from None

    def read_secret(self, path: Path) -> str | None:
        try:
            value = path.read_text().strip()
        except (FileNotFoundError, PermissionError):
            return None
        return value or None

    def write_secret(self, path: Path, value: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(value + "\n")

    def flower_password(self) -> str:
        """The stored Flower password, generated on first use."""
        password = self.read_secret(self.flower_password_file)
        if password is None:
            password = secrets.token_urlsafe(12).replace("-", "x").replace("_", "y")
            self.write_secret(self.flower_password_file, password)
        return password

    def running_state(self) -> dict[str, Any] | None:
        try:
            state = json.loads(self.state_file.read_text())
        except (FileNotFoundError, ValueError, PermissionError):
            return None
        return state if isinstance(state, dict) else None

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the data dir for one `genqueue up`; the lock file (with its pid) exists exactly
        while it is held, whatever way `up` ends."""
        while True:
            fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = os.read(fd, 32).decode(errors="replace").strip() or "?"
                os.close(fd)
                raise CliError(
                    f"another `genqueue up` (pid {owner}) is using {self.root}; stop it or "
                    "pass --data-dir"
                ) from None
            if _same_file(fd, self.lock_file):
                break
            os.close(fd)  # its holder removed it as we opened it: take the new one
        try:
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
            yield
        finally:
            self.lock_file.unlink(missing_ok=True)  # before the unlock: nobody can lock it then
            os.close(fd)


def _make_private(path: str, mode: int) -> None:
    """chmod a directory or a regular file (not a link, a socket or what has gone)."""
    try:
        kind = os.lstat(path).st_mode
        if stat.S_ISDIR(kind) or stat.S_ISREG(kind):
            os.chmod(path, mode)
    except FileNotFoundError:
        pass


def _same_file(fd: int, path: Path) -> bool:
    try:
        on_disk = path.stat()
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (on_disk.st_dev, on_disk.st_ino)
