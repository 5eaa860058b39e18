"""A Kafka-protocol cluster on 127.0.0.1 for tests: librdkafka's built-in mock brokers.

Run as a process (``python mock_kafka_cluster.py --brokers 3``); it prints one line,
``BOOTSTRAP host:port[,host:port...]``, once the brokers listen, then keeps them alive until
it is terminated. The brokers speak the real protocol over TCP (topics, partitions, consumer
groups, committed offsets), so any client reaches them at the printed address.

The mock cluster belongs to a librdkafka client handle: it lives exactly as long as the
Producer made here, whose only other job is to say where the brokers listen. librdkafka
logs "Mock cluster enabled: original bootstrap.servers and security.protocol ignored and
replaced with <addresses>" when it starts them; that line is caught through the client's
``logger`` and the addresses printed. Auto-created topics get the mock's default of 4
partitions.
"""

from __future__ import annotations

import argparse
import logging
import re
import signal
import sys
import threading
from types import FrameType

from confluent_kafka import Producer

_ADDRESSES = re.compile(r"replaced with (\S+)")


class _Bootstrap(logging.Handler):
    """Catches the mock cluster's addresses in librdkafka's log."""

    def __init__(self) -> None:
        super().__init__()
        self.found = threading.Event()
        self.address = ""

    def emit(self, record: logging.LogRecord) -> None:
        match = _ADDRESSES.search(record.getMessage())
        if match and not self.found.is_set():
            self.address = match.group(1)
            self.found.set()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--brokers", type=int, default=1, help="how many mock brokers")
    args = parser.parse_args(argv)

    handler = _Bootstrap()
    log = logging.getLogger("mock_kafka_cluster")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    producer = Producer(
        {
            # Ignored (replaced by the mock brokers' addresses), but required.
            "bootstrap.servers": "127.0.0.1:1",
            "test.mock.num.brokers": args.brokers,
            "logger": log,
        }
    )
    producer.poll(0)  # serves the log queue
    if not handler.found.wait(10):
        print("the mock cluster did not start (no address in librdkafka's log)", file=sys.stderr)
        return 1
    print(f"BOOTSTRAP {handler.address}", flush=True)

    stop = threading.Event()

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, request_stop)
    while not stop.wait(0.5):
        producer.poll(0)  # keeps librdkafka's log queue drained
    del producer  # the brokers go with their handle
    return 0


if __name__ == "__main__":
    sys.exit(main())
