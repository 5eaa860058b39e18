"""The demo's serving process: a separate Python process, as serving is in production, that logs
each prediction with :class:`tripwire.Logger` to the collector.

It runs as ``python -m tripwire.demo.serving CONFIG`` and reads its instructions from stdin,
one per line: first the collector's URL and token (kept off the command line), then the path
of each Parquet file of traffic to serve, its columns named as ``CONFIG`` names them. After
each file it prints how many events the collector has stored so far, once the logger has
shipped them all.

Serving in its own process keeps the logger's work (building and encoding events) off the
demo process, which runs the collector and the scheduler: the two run on separate cores, and
the next day is served while the scheduler checks the last.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pyarrow.parquet as pq

from tripwire.config import load_config
from tripwire.demo.service import Collector
from tripwire.demo.traffic import log_predictions
from tripwire.errors import TripwireError
from tripwire.logger import HttpTransport, Logger

# Seconds a batch may wait for its answer: the collector holds it while the scheduler checks
# a window (the store has one writer), which takes longer than the logger's default allows on a
# busy machine; a batch that timed out is sent again, which is harmless but wasted work.
REQUEST_TIMEOUT = 120.0


def main(argv: list[str] | None = None) -> None:
    """Serve the traffic files named on stdin (see the module's docstring)."""
    [config_path] = sys.argv[1:] if argv is None else argv
    # The demo starts this process early, so that its imports overlap the demo's own start,
    # and connects it once the collector runs (and the config is written).
    url, token = sys.stdin.readline().split()
    config = load_config(Path(config_path))
    transport = HttpTransport(url, token, timeout=REQUEST_TIMEOUT)
    with Logger(config.name, transport) as logger:
        logged = 0
        for line in sys.stdin:
            logged += log_predictions(logger, config, pq.read_table(line.strip()))
            # The demo's clock moves on only once the file is shipped: a window must hold its
            # day's events when the scheduler checks it, as the grace period ensures in
            # production. An event the collector did not store would change every figure
            # downstream, so losing one stops the demo.
            logger.flush()
            if (stats := logger.stats).sent != logged:
                raise TripwireError(
                    f"the collector stored {stats.sent:,} of {logged:,} events: {stats}"
                )
            print(logged, flush=True)


class ServingProcess:
    """The demo's handle on its serving process; made by :func:`serving_process`."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self._process = process

    def connect(self, collector: Collector) -> None:
        """Log to ``collector`` from now on."""
        self._say(f"{collector.url} {collector.token}")

    def serve(self, traffic: Path) -> None:
        """Serve the predictions in ``traffic``, a Parquet file, now; returns at once."""
        self._say(str(traffic))

    def shipped(self) -> int:
        """Wait until the file being served is shipped; how many events have been stored."""
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            code = self._process.wait()
            raise TripwireError(f"the demo's serving process stopped (exit code {code})")
        return int(line)

    def _say(self, line: str) -> None:
        assert self._process.stdin is not None
        self._process.stdin.write(line + "\n")
        self._process.stdin.flush()


@contextmanager
def serving_process(config_path: Path) -> Iterator[ServingProcess]:
    """Start the serving process for the model of ``config_path``; stop it when the block
    ends: at once if the block failed, else once it has shipped everything."""
    process = subprocess.Popen(
        [sys.executable, "-m", __name__, str(config_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        yield ServingProcess(process)
    except BaseException:
        process.kill()
        raise
    finally:
        assert process.stdin is not None and process.stdout is not None
        with suppress(BrokenPipeError):  # it has exited already
            process.stdin.close()  # its end of input: it closes its logger and exits
        process.wait()
        process.stdout.close()


if __name__ == "__main__":
    main()
