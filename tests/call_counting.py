"""Count exactly what a real Odoo server's threads call (``tests/call_counter``).

A server started with ``counting_env(directory)`` in its environment counts,
between two signals, every Python function and builtin its threads call:
counts, not times, so a test can assert them and a benchmark can compare two
servers on a noisy machine.
"""

import collections
import contextlib
import json
import os
import time
from pathlib import Path

# Counts nothing here: it counts only where WI_CALL_COUNTER is set (``counting_env``).
from call_counter.sitecustomize import COUNT_SIGNAL

COUNTER_DIR = Path(__file__).resolve().parent / "call_counter"
Call = collections.namedtuple("Call", "file line function called")


def counting_env(directory):
    """The environment that makes a server's processes count (on ``COUNT_SIGNAL``)."""
    return {
        "WI_CALL_COUNTER": str(directory),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(COUNTER_DIR), os.environ.get("PYTHONPATH")])),
    }


class Counts(dict):
    """``{thread name: Counter({Call: count})}`` of one process, filled when counting stops;
    ``process``: what it held then (``gc_objects``, ``modules``) and the garbage collections
    it ran meanwhile (``gc_collections``, per generation)."""

    process = None

    def thread(self, contains):
        """The counts of the thread named ``contains``, else of the one whose name contains it."""
        if contains in self:
            return self[contains]
        (name,) = [name for name in self if contains in name] or [None]
        assert name is not None, f"no thread named like {contains!r} counted: {sorted(self)}"
        return self[name]


@contextlib.contextmanager
def counting(pid, directory, timeout=30):
    """Count the calls of process ``pid`` for the duration of the ``with`` block."""
    path, started = Path(directory) / f"{pid}.json", Path(directory) / f"{pid}.counting"
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    os.kill(pid, COUNT_SIGNAL)
    _wait_for(started.exists, f"process {pid} did not start counting", timeout)
    counts = Counts()
    yield counts
    os.kill(pid, COUNT_SIGNAL)
    _wait_for(path.exists, f"process {pid} wrote no call counts", timeout)
    rows = json.loads(path.read_text())
    counts.process = rows.pop("")
    for name, calls in rows.items():
        counts[name] = collections.Counter({Call(*row[:4]): row[4] for row in calls})


def _wait_for(condition, failure, timeout):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{failure} in {timeout} s")
        time.sleep(0.05)


def from_files(calls, *fragments):
    """The calls made from functions whose file path contains one of ``fragments``."""
    return collections.Counter({call: n for call, n in calls.items() if any(f in call.file for f in fragments)})
