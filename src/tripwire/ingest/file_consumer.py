"""Load the NDJSON spool files that ``FileTransport`` writes into the store, at least once.

A serving process's :class:`tripwire.logger.FileTransport` appends one event per line to files
``events-<start>-<n>.ndjson`` in a directory; ``tripwire consume files`` reads them into the
store. The files are read in name order (a writer's files sort in the order it wrote them),
each from where the last stored batch ended: a batch takes up to ``batch_size`` complete lines,
from as many files as it needs, goes through ``Collector.ingest_events`` (the same validation
and quarantine as ``tripwire serve``), and only after that call returns, which is after the
store's transaction committed, is the new position of each file it read from recorded. A
consumer killed between the two reads the batch again after a restart; the store keeps one row
per (model, event id), so the second copy changes nothing, and each quarantined line is named
by its origin, ``file <directory>/<name>:<line>``, so it is kept once. Delivery is at least
once, storage exactly once.

The last line of a file a logger is still writing may be incomplete (the writer's buffer is
flushed in pieces): only lines that end in a newline are read, and a partial last line waits
until it is complete. A line that is not JSON, or whose event fails validation, is quarantined
with its origin and the run goes on.

Progress is kept in a small state file in the spool directory, :data:`STATE_NAME`: per file
(by name), the byte offset just past its last stored line and that line's number. It is
replaced atomically (written beside, fsynced, renamed over, and the directory fsynced) after
each stored batch. Why there rather than in the store: it travels with the files it describes
(a directory moved, restored or copied elsewhere keeps its positions), it needs no schema
migration and works the same on DuckDB and PostgreSQL, and a store rebuilt from scratch is
refilled by deleting one file. What it costs: the position is not in the store's transaction,
so a crash between the two re-reads a batch, which the event ids make harmless; and one
directory feeds one store (the state file names the store it was written for, and a consumer
into another store warns that the lines marked as stored there are not read again).

One consumer per directory: the consumer holds an exclusive ``flock`` on :data:`LOCK_NAME` in
the directory while it runs (released by the kernel however the process ends, ``kill -9``
included), and a second one is refused with the first one's pid.

When a file is finished (never to be written again), its every line stored and ``on_finished``
is ``delete`` or ``move``, the file is deleted or moved to the ``done/`` folder of the
directory. A file ``<prefix>-<number>.<ext>`` is finished once a file of the same writer with a
higher number exists, ``<prefix>-<higher>.<ext>`` (FileTransport fsyncs and closes a file before
it opens the next), or once its marker ``<name>.closed`` exists (FileTransport leaves one beside
its last file on close; touch one by hand for the last file of a writer that died). A file
still being written is never removed. A finished file whose last line has no newline (its
writer failed part way through a write) has that piece quarantined as cut off.

After its batches (and while idle), at most every ``report_interval_s`` seconds, the consumer
records its lag, the complete lines in the directory's files not stored yet, and the events it
stored in the store (``Store.record_consumer``: source ``file``, the directory as the stream,
the host as the group, since a path names a directory only on its machine), where ``tripwire
serve``'s ``/metrics`` reads them. The lines are counted once each, as they are appended.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import re
import socket
import threading
from collections.abc import Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic_core import from_json

from tripwire.errors import TripwireError
from tripwire.events import Rejected
from tripwire.ingest import progress
from tripwire.logger import CLOSED_SUFFIX
from tripwire.server.body import PAYLOAD_CHARS, Batch

if TYPE_CHECKING:
    from tripwire.server.collector import Collector

__all__ = [
    "DONE_DIR",
    "LOCK_NAME",
    "SOURCE",
    "STATE_NAME",
    "ConsumerStats",
    "DirectoryBusyError",
    "FileConsumer",
    "finished_files",
]

_log = logging.getLogger(__name__)

SOURCE = "file"
"""The consumer's ``source`` in the store's ``consumers`` table and on ``/metrics``."""
STATE_NAME = ".tripwire-consume.json"
"""The consumer's progress, in the spool directory."""
LOCK_NAME = ".tripwire-consume.lock"
"""The file a running consumer holds locked, in the spool directory."""
DONE_DIR = "done"
"""Where ``on_finished="move"`` puts finished, stored files: a folder of the spool directory."""
OnFinished = Literal["keep", "delete", "move"]
ON_FINISHED: tuple[OnFinished, ...] = ("keep", "delete", "move")

_CHUNK = 1024 * 1024  # bytes read at a time
_STATE_VERSION = 1
# <prefix>-<number>[.<ext>]: the writer is (prefix, ext), its files numbered in write order.
_NUMBERED = re.compile(r"(?P<prefix>.+)-(?P<n>\d+)(?P<ext>\.[^.\-]*)?")
# Waits after a failed poll in --follow (a store error), doubling up to the last.
_BACKOFF_S = (0.5, 1.0, 2.0, 5.0)


class DirectoryBusyError(TripwireError):
    """Another consumer holds the spool directory's lock."""


@dataclass
class ConsumerStats(progress.ConsumerStats):
    """What the consumer has done since it was made (its batches are those recorded in the
    state file, its lag the complete lines not stored yet, see ``FileConsumer.lag``)."""

    lines: int = 0
    """Lines ingested (stored, duplicate or quarantined; blank lines are skipped)."""
    files_done: int = 0
    """Finished, stored files deleted or moved to ``done/``."""


@dataclass
class _Position:
    """How far a file is stored: the byte just past its last stored line, and its number."""

    offset: int = 0
    line: int = 0


@dataclass(frozen=True)
class _File:
    name: str
    size: int
    finished: bool


@dataclass
class _Read:
    """What a batch took from one file: where it started and ended, and the newlines in it."""

    name: str
    start: _Position
    end: _Position
    newlines: int


@dataclass
class _Ahead:
    """Newlines counted in a file from its stored position up to ``counted_to`` (for the lag)."""

    counted_to: int = 0
    newlines: int = 0


@dataclass
class _Batch:
    batch: Batch = field(default_factory=Batch)
    reads: list[_Read] = field(default_factory=list)
    lines: int = 0  # every line taken, blank ones too


def finished_files(names: Sequence[str]) -> set[str]:
    """Those of ``names`` (the entries of a spool directory) that are finished, by the rules in
    the module's docstring: a later-numbered file of the same writer, or a ``.closed`` marker."""
    present = set(names)
    latest: dict[tuple[str, str], int] = {}
    numbered: dict[str, tuple[tuple[str, str], int]] = {}
    for name in names:
        match = _NUMBERED.fullmatch(name)
        if match is None or name.endswith(CLOSED_SUFFIX):
            continue
        writer, n = (match["prefix"], match["ext"] or ""), int(match["n"])
        numbered[name] = (writer, n)
        latest[writer] = max(n, latest.get(writer, n))
    done = set()
    for name in names:
        if name + CLOSED_SUFFIX in present:
            done.add(name)
        elif name in numbered:
            writer, n = numbered[name]
            if n < latest[writer]:
                done.add(name)
    return done


class FileConsumer:
    """Read the spool files in ``directory`` and store their events via ``collector``.

    Parameters
    ----------
    directory
        Where a ``FileTransport`` writes. The consumer locks it (:data:`LOCK_NAME`) until
        :meth:`close`, and keeps its progress there (:data:`STATE_NAME`).
    collector
        Validates, stores and quarantines each batch (it owns the store).
    batch_size
        The most lines stored in one transaction.
    pattern
        The files to read (a shell pattern on the name; hidden files and ``.closed`` markers
        never match).
    on_finished
        What to do with a finished file once every line of it is stored: ``keep`` it,
        ``delete`` it, or ``move`` it to the directory's ``done/`` folder.
    group
        The ``group`` the consumer reports under (default: this host's name).
    report_interval_s
        The least seconds between two reports of the lag and the events stored to the store
        (0: after every poll).
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        collector: Collector,
        batch_size: int = 1000,
        pattern: str = "*.ndjson",
        on_finished: OnFinished = "keep",
        group: str | None = None,
        report_interval_s: float = 5.0,
    ) -> None:
        if batch_size < 1 or report_interval_s < 0:
            raise ValueError("batch_size must be >= 1 and report_interval_s >= 0")
        if on_finished not in ON_FINISHED:
            raise ValueError(f"on_finished must be one of {', '.join(ON_FINISHED)}")
        self.directory = Path(directory).resolve()
        if not self.directory.is_dir():
            raise TripwireError(f"{self.directory}: no such directory")
        self.collector = collector
        self.batch_size = batch_size
        self.pattern = pattern
        self.on_finished = on_finished
        self.group = group or socket.gethostname()
        self.report_interval_s = report_interval_s
        self.stats = ConsumerStats()
        self._reporter = progress.LagReporter(
            self,
            SOURCE,
            str(self.directory),
            self.group,
            report_interval_s,
            lag_failure="counting the lines not stored yet failed",
        )
        self.state_path = self.directory / STATE_NAME
        self._store = _store_name(collector.store)
        self._positions: dict[str, _Position] = {}
        self._unsaved = False  # positions changed since the state file was written
        self._ahead: dict[str, _Ahead] = {}
        self._unreadable: set[str] = set()  # files whose read failed, warned about once
        self._lock: int | None = _hold_lock(self.directory / LOCK_NAME)
        try:
            self._load()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Release the directory's lock. Positions are saved per batch: nothing is lost."""
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def __enter__(self) -> FileConsumer:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FileConsumer({str(self.directory)!r})"

    # -- the loop ----------------------------------------------------------------------

    def run(self, stop: threading.Event, follow: bool = False, poll_interval: float = 1.0) -> None:
        """Store what the files hold until none has a complete line left, then return; with
        ``follow``, keep polling every ``poll_interval`` seconds for new lines and files until
        ``stop`` is set. The batch in hand is finished first. Without ``follow`` a failing poll
        (a store error) is raised, its batch not recorded; with it, it is logged and retried
        after a growing pause."""
        failures = 0
        try:
            while not stop.is_set():
                try:
                    handled = self.poll_once()
                except Exception:
                    if not follow:
                        raise
                    pause = _BACKOFF_S[min(failures, len(_BACKOFF_S) - 1)]
                    failures += 1
                    _log.exception("%r: poll failed; retrying in %.1f s", self, pause)
                    stop.wait(pause)
                    continue
                failures = 0
                if not handled:
                    if not follow:
                        break
                    stop.wait(poll_interval)
        finally:
            self.report()  # as it stops: the report's age on /metrics then says it stopped

    def poll_once(self) -> int:
        """Remove the files that are finished and stored (``on_finished``), then store one
        batch of complete lines and record the files' new positions. Returns the lines taken,
        0 when no file had a complete line to read."""
        files = self._scan()
        self._retire(files)
        taken = self._read(files)
        if taken.lines:
            self._store_batch(taken)
        elif self._unsaved:
            self._save()
        self._reporter.report_if_due()
        return taken.lines

    # -- the lag, for /metrics ---------------------------------------------------------

    def lag(self) -> int:
        """Complete lines in the directory's files that are not stored yet. Each file's new
        bytes are counted once, as they are appended."""
        total = 0
        for file in self._scan():
            position = self._positions.get(file.name, _Position())
            ahead = self._ahead.setdefault(file.name, _Ahead(position.offset))
            if ahead.counted_to < position.offset:
                ahead.counted_to, ahead.newlines = position.offset, 0
            if file.size > ahead.counted_to:
                with suppress(OSError):  # gone, or unreadable: counted when it can be read
                    ahead.newlines += _count_newlines(
                        self.directory / file.name, ahead.counted_to, file.size
                    )
                    ahead.counted_to = file.size
            total += ahead.newlines
        return total

    def report(self) -> None:
        """Record the :meth:`lag` and the events this consumer stored since its last report in
        the store, for ``/metrics``. Never raises: a lag that cannot be counted is recorded as
        unknown, and a report the store refuses is logged and its events are counted in the
        next one."""
        self._reporter.report()

    # -- the directory -----------------------------------------------------------------

    def _scan(self) -> list[_File]:
        """The files to read, in name order, with their sizes and whether they are finished;
        positions of files that are gone are forgotten."""
        with os.scandir(self.directory) as entries:
            every = {entry.name: entry for entry in entries}
        # The listing is taken before any size: a file seen finished here has its final size.
        finished = finished_files(list(every))
        files = []
        for name in sorted(every):
            if name.startswith(".") or name.endswith(CLOSED_SUFFIX):
                continue
            if not fnmatch.fnmatchcase(name, self.pattern):
                continue
            with suppress(OSError):  # removed since the listing
                entry = every[name]
                if entry.is_file():
                    files.append(_File(name, entry.stat().st_size, name in finished))
        present = {file.name for file in files}
        for name in [name for name in self._positions if name not in present]:
            del self._positions[name]  # deleted or moved (by us, or by hand): nothing to read
            self._unsaved = True
        for name in [name for name in self._ahead if name not in present]:
            del self._ahead[name]
        if self.on_finished != "keep":
            for name in every:  # markers whose file we removed before we could remove them
                if name.endswith(CLOSED_SUFFIX) and name.removesuffix(CLOSED_SUFFIX) not in every:
                    with suppress(FileNotFoundError):
                        (self.directory / name).unlink()
        return files

    def _retire(self, files: list[_File]) -> None:
        """Delete or move the files that are finished and stored to their end."""
        if self.on_finished == "keep":
            return
        done = [f for f in files if f.finished and self._at(f.name).offset == f.size]
        if not done:
            return
        if self._unsaved:
            self._save()  # a file is removed only once the state file says it is stored
        for file in done:
            path = self.directory / file.name
            if self.on_finished == "move":
                folder = self.directory / DONE_DIR
                folder.mkdir(exist_ok=True)
                os.replace(path, folder / file.name)
            else:
                path.unlink(missing_ok=True)
            path.with_name(file.name + CLOSED_SUFFIX).unlink(missing_ok=True)
            if self._positions.pop(file.name, None) is not None:
                self._unsaved = True
            self._ahead.pop(file.name, None)
            self.stats.files_done += 1
        files[:] = [f for f in files if f not in done]

    def _at(self, name: str) -> _Position:
        return self._positions.get(name) or _Position()

    # -- reading a batch ---------------------------------------------------------------

    def _read(self, files: list[_File]) -> _Batch:
        taken = _Batch()
        for file in files:
            if taken.lines >= self.batch_size:
                break
            start = self._at(file.name)
            if file.size < start.offset:
                _log.warning(
                    "%r: %s is shorter (%d bytes) than its stored position (%d): it was "
                    "replaced or truncated; reading it again from its start",
                    self,
                    file.name,
                    file.size,
                    start.offset,
                )
                start = _Position()
                self._positions.pop(file.name, None)
                self._ahead.pop(file.name, None)
                self._unsaved = True
            if file.size == start.offset:
                continue
            try:
                self._read_file(file, start, taken)
            except OSError as exc:
                if file.name not in self._unreadable:
                    self._unreadable.add(file.name)
                    _log.warning("%r: %s: cannot read it, skipped: %s", self, file.name, exc)
                continue
            self._unreadable.discard(file.name)
        return taken

    def _read_file(self, file: _File, start: _Position, taken: _Batch) -> None:
        """Take complete lines of ``file`` from ``start`` into ``taken`` until the batch is full
        or the file ends; a finished file's last piece without a newline too."""
        path = self.directory / file.name
        batch = taken.batch
        offset, line = start.offset, start.line
        newlines = 0
        with path.open("rb") as stream:
            stream.seek(offset)
            for raw, complete in _lines(stream, self.batch_size - taken.lines):
                if complete:
                    newlines += 1
                elif not file.finished:
                    break  # a line still being written: wait for its end
                line += 1
                offset += len(raw) + complete
                taken.lines += 1
                text = raw.strip()
                if not text:
                    continue  # blank lines hold no event
                index = len(batch.origins)
                batch.origins.append(f"file {path}:{line}")
                if not complete:
                    reason = (
                        f"{path}:{line}: the file ended inside this line (no newline): cut off "
                        "when its writer failed part way through a write"
                    )
                    batch.unreadable.append(_rejected(index, reason, raw))
                    continue
                try:
                    batch.items.append(from_json(text, cache_strings="keys"))
                except ValueError as exc:
                    reason = f"{path}:{line}: not JSON: {exc}"
                    batch.unreadable.append(_rejected(index, reason, raw))
                    continue
                batch.indices.append(index)
        if offset > start.offset:
            taken.reads.append(_Read(file.name, start, _Position(offset, line), newlines))

    def _store_batch(self, taken: _Batch) -> None:
        batch = taken.batch
        if batch.origins:
            result = self.collector.ingest_events(batch, source=f"file {self.directory}")
            # Only now: the collector's transaction has committed, so the lines are stored (or
            # quarantined) for good. A crash before the state file is replaced below reads
            # them again, harmlessly.
            self.stats.add(result)
            if result.rejected:
                # One line per batch: a systematic problem would otherwise flood the log.
                first = result.rejected[0]
                reason = first.reason
                origin = batch.origins[first.index].removeprefix("file ")
                if not reason.startswith(origin):
                    reason = f"{origin}: {reason}"
                _log.warning(
                    "%r: quarantined %d of %d lines; first: %s",
                    self,
                    len(result.rejected),
                    len(batch.origins),
                    reason,
                )
        for read in taken.reads:
            self._positions[read.name] = read.end
            ahead = self._ahead.get(read.name)
            if ahead is not None:
                if read.end.offset <= ahead.counted_to:
                    ahead.newlines = max(ahead.newlines - read.newlines, 0)
                else:
                    ahead.counted_to, ahead.newlines = read.end.offset, 0
        self._unsaved = True
        self._save()
        self.stats.batches += 1
        self.stats.lines += len(batch.origins)

    # -- the state file ----------------------------------------------------------------

    def _load(self) -> None:
        try:
            text = self.state_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        try:
            state = json.loads(text)
            files = state["files"]
            positions = {
                str(name): _Position(int(at["offset"]), int(at["line"]))
                for name, at in files.items()
            }
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise TripwireError(
                f"{self.state_path}: not a consumer's state file ({exc}); delete it to read "
                "every file again from its start (events already stored are not stored twice)"
            ) from None
        self._positions = positions
        store = state.get("store")
        if store and store != self._store:
            _log.warning(
                "%s was written by a consumer into %s, not %s: the lines it records as stored "
                "are not read again (delete it to load every file into this store)",
                self.state_path,
                store,
                self._store,
            )
            self._unsaved = True

    def _save(self) -> None:
        """Replace the state file atomically: a crash leaves the old one or the new one."""
        state = {
            "version": _STATE_VERSION,
            "store": self._store,
            "files": {
                name: {"offset": at.offset, "line": at.line}
                for name, at in sorted(self._positions.items())
            },
        }
        temporary = self.state_path.with_name(STATE_NAME + ".tmp")
        with temporary.open("w", encoding="utf-8") as out:
            json.dump(state, out, indent=1)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, self.state_path)
        _fsync_directory(self.directory)
        self._unsaved = False


def _lines(stream: Any, limit: int) -> Iterator[tuple[bytes, bool]]:
    """Up to ``limit`` lines from ``stream``'s position, without their newline, each with
    whether it had one; the piece after the last newline (if any) comes last, incomplete."""
    pending = b""
    given = 0
    while given < limit:
        chunk = stream.read(_CHUNK)
        if not chunk:
            break
        parts = (pending + chunk).split(b"\n")
        pending = parts.pop()
        for part in parts:
            yield part, True
            given += 1
            if given >= limit:
                return
    if pending and given < limit:
        yield pending, False


def _count_newlines(path: Path, start: int, end: int) -> int:
    count = 0
    with path.open("rb") as stream:
        stream.seek(start)
        left = end - start
        while left > 0:
            chunk = stream.read(min(_CHUNK, left))
            if not chunk:
                break
            count += chunk.count(b"\n")
            left -= len(chunk)
    return count


def _rejected(index: int, reason: str, raw: bytes) -> Rejected:
    text = raw.decode("utf-8", errors="replace")[:PAYLOAD_CHARS]
    return Rejected(index=index, reason=reason, payload=text)


def _store_name(store: Any) -> str:
    """The store as the state file records it: a DuckDB file's absolute path, else ``where``
    (a PostgreSQL DSN without its password)."""
    where = str(getattr(store, "where", ""))
    if getattr(store, "dialect", None) == "duckdb" and where != ":memory:":
        return str(Path(where).resolve())
    return where


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _hold_lock(path: Path) -> int:
    """Hold an exclusive lock on ``path`` (created when missing); its descriptor. Raises
    :class:`DirectoryBusyError`, naming the holder's pid, when another process holds it."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        raise TripwireError("tripwire consume files needs a POSIX system (flock)") from None
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise TripwireError(f"{path}: cannot create the consumer's lock file: {exc}") from None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(descriptor, 64).decode("ascii", errors="replace").strip()
        os.close(descriptor)
        raise DirectoryBusyError(
            f"{path.parent}: another consumer (pid {holder or 'unknown'}) is reading this "
            f"directory; it holds {path}"
        ) from None
    except BaseException:
        os.close(descriptor)
        raise
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
    return descriptor
