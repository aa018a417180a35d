"""Exactly-once work on a run: an atomic claim file with a heartbeat, safe across processes and nodes.

A process that works on a run holds its claim file (where: :mod:`lightning_dims.runs.folder`): who
(host, pid), since when, and a random token. It is created atomically
(:func:`~lightning_dims.utils.publish_new`: a private temporary file hard-linked to the claim's
name, which fails if the name exists: atomic on local POSIX filesystems and on NFS), and its
modification time is the holder's heartbeat, refreshed every :data:`HEARTBEAT_S` seconds by a
daemon thread.

A claim is *stale*, and may be taken over with a warning, when its holder is on this host and its
pid is gone, or when its heartbeat is older than the stale timeout (default
:data:`STALE_AFTER_S`; ``LIGHTNING_DIMS_CLAIM_TIMEOUT`` seconds). Ages are measured against the
folder's own filesystem clock (a freshly touched file's modification time), so clock skew between
nodes sharing an NFS folder does not matter. A takeover renames the stale file away first: of
several processes taking over at once exactly one rename succeeds.

A child process (``lightning-dims fit`` started by the sweep runner, DDP workers) *adopts* its
parent's claim when it is given the claim's token in :data:`TOKEN_ENV`; then both refresh it, and
the claim lives as long as either does.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from lightning_dims.errors import LightningDimsError
from lightning_dims.utils import publish_new

__all__ = [
    "HEARTBEAT_S",
    "STALE_AFTER_S",
    "TIMEOUT_ENV",
    "TOKEN_ENV",
    "Claim",
    "ClaimHeldError",
    "ClaimInfo",
    "StaleClaimWarning",
    "filesystem_now",
    "pid_alive",
    "read_claim",
    "stale_after_s",
]

TOKEN_ENV = "LIGHTNING_DIMS_CLAIM_TOKEN"
TIMEOUT_ENV = "LIGHTNING_DIMS_CLAIM_TIMEOUT"
HEARTBEAT_S = 30.0
STALE_AFTER_S = 600.0


class ClaimHeldError(LightningDimsError, RuntimeError):
    """Another live process holds the claim on this run."""


class StaleClaimWarning(UserWarning):
    """A claim whose holder stopped was taken over."""


def stale_after_s() -> float:
    """The stale timeout in seconds: ``$LIGHTNING_DIMS_CLAIM_TIMEOUT`` or :data:`STALE_AFTER_S`."""
    value = os.environ.get(TIMEOUT_ENV)
    try:
        return float(value) if value else STALE_AFTER_S
    except ValueError:
        raise ValueError(f"{TIMEOUT_ENV}={value!r} is not a number of seconds") from None


def filesystem_now(folder: Path) -> float:
    """The current time as ``folder``'s filesystem sees it (the mtime of a file just created there)."""
    handle, name = tempfile.mkstemp(prefix=".clock-", dir=folder)
    try:
        return os.fstat(handle).st_mtime
    finally:
        os.close(handle)
        os.unlink(name)


def pid_alive(pid: int) -> bool:
    """True when a process ``pid`` exists on this host and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


@dataclass(frozen=True)
class ClaimInfo:
    """What a claim file says, and its heartbeat (the file's modification time)."""

    host: str
    pid: int
    token: str
    started_at: str
    heartbeat: float

    @property
    def holder(self) -> str:
        return f"{self.host}:{self.pid}"

    def stale_reason(self, now: float, timeout: float) -> str | None:
        """Why the claim may be taken over, or None while its holder is alive."""
        if self.host == socket.gethostname() and not pid_alive(self.pid):
            return f"process {self.pid} on this host is gone"
        if now - self.heartbeat > timeout:
            return f"no heartbeat for {now - self.heartbeat:.0f} s (timeout {timeout:.0f} s)"
        return None


def read_claim(path: Path) -> ClaimInfo | None:
    """The claim at ``path``, or None when there is none (or it vanished while being read)."""
    try:
        heartbeat = path.stat().st_mtime
        data = json.loads(path.read_text())
        return ClaimInfo(str(data["host"]), int(data["pid"]), str(data["token"]), str(data["started_at"]), heartbeat)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):  # half-written by a crashed holder: treat as stale
        return ClaimInfo("?", -1, "", "", 0.0)


class Claim:
    """A held claim file; use :meth:`acquire`, then :meth:`release` (or ``with``).

    Attributes:
        path: the claim file.
        token: this holder's token (pass it to a child in :data:`TOKEN_ENV` to let it adopt the claim).
        taken_over: the stale claim this one replaced, if any (its last heartbeat ends the killed attempt).
        lost: set when the heartbeat found the file gone or someone else's.
    """

    def __init__(self, path: Path, token: str, taken_over: ClaimInfo | None = None, heartbeat_s: float = HEARTBEAT_S):
        self.path = path
        self.token = token
        self.taken_over = taken_over
        self.heartbeat_s = heartbeat_s
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def acquire(
        cls,
        path: str | os.PathLike[str],
        *,
        adopt_token: str | None = None,
        timeout: float | None = None,
        heartbeat_s: float = HEARTBEAT_S,
        what: str = "this run",
    ) -> "Claim":
        """Create the claim file ``path`` (its folder too, if needed) or raise :class:`ClaimHeldError` naming the live holder.

        ``adopt_token``: a parent's token; a claim holding it is adopted instead of refused.
        """
        path = Path(path)
        folder = path.parent
        folder.mkdir(parents=True, exist_ok=True)
        timeout = stale_after_s() if timeout is None else timeout
        taken_over = None
        for _ in range(100):
            current = read_claim(path)
            if current is not None and adopt_token and current.token == adopt_token:
                return cls(path, adopt_token, None, heartbeat_s).start()
            if current is None:
                token = secrets.token_hex(8)
                if cls._create(path, token):
                    return cls(path, token, taken_over, heartbeat_s).start()
                continue  # someone else created it first: look again
            reason = current.stale_reason(filesystem_now(folder), timeout)
            if reason is None:
                raise ClaimHeldError(
                    f"{what} is being run by {current.holder} (since {current.started_at}, last heartbeat "
                    f"{max(0.0, filesystem_now(folder) - current.heartbeat):.0f} s ago); wait for it, or if that "
                    f"process is gone from another host, remove {path} (it is taken over by itself after "
                    f"{timeout:.0f} s without a heartbeat)"
                )
            aside = path.with_name(f".{path.name}.stale-{secrets.token_hex(4)}")
            try:
                os.rename(path, aside)  # exactly one of several takers succeeds
            except FileNotFoundError:
                continue
            moved = read_claim(aside)
            if moved is not None and moved.token != current.token:  # a fresh claim appeared meanwhile: put it back
                try:
                    os.link(aside, path)
                except FileExistsError:
                    pass  # its holder's heartbeat notices the loss (Claim.lost)
                os.unlink(aside)
                continue
            os.unlink(aside)
            warnings.warn(
                f"taking over the claim on {what} from {current.holder} (started {current.started_at}): {reason}",
                StaleClaimWarning,
                stacklevel=2,
            )
            taken_over = current
        raise ClaimHeldError(f"could not claim {what} at {path}: it keeps changing hands")

    @staticmethod
    def _create(path: Path, token: str) -> bool:
        """Atomically create the claim file; False when it already exists."""
        content = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "token": token,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        return publish_new(path, json.dumps(content), fsync=False)

    def owned(self) -> bool:
        current = read_claim(self.path)
        return current is not None and current.token == self.token

    def start(self) -> "Claim":
        """Start the heartbeat thread (a daemon: it dies with the process, so a killed holder goes stale)."""
        self._thread = threading.Thread(target=self._beat, name=f"claim-heartbeat-{self.path.parent.name}", daemon=True)
        self._thread.start()
        return self

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            if not self.owned():
                self.lost.set()
                return
            try:
                os.utime(self.path)
            except OSError:
                self.lost.set()
                return

    def release(self) -> None:
        """Stop the heartbeat and remove the claim file if it is still this holder's."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        if self.owned():
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> "Claim":
        return self

    def __exit__(self, *exc) -> None:
        self.release()
