"""The one way the tests wait for something that happens in another process."""

import time


def wait_until(predicate, timeout=10.0, interval=0.05):
    """Call ``predicate`` until it returns something truthy, and return that.

    At the timeout, return its last (falsy) value: the caller's ``assert``
    says what was expected. ``predicate`` may raise to stop early.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def wakeups(thread):
    """How many times ``thread`` (of this process) has gone to sleep and been woken, from the
    kernel's count of its voluntary context switches."""
    with open(f"/proc/self/task/{thread.native_id}/status") as status:
        for line in status:
            if line.startswith("voluntary_ctxt_switches:"):
                return int(line.split()[1])
    raise LookupError(f"no context switch count for thread {thread.native_id}")


def settled_wakeups(thread, quiet=0.2, timeout=5):
    """``wakeups(thread)`` once it stayed the same for ``quiet`` seconds: a thread that just
    said it will sleep may still wait for the GIL (a wake-up) on its way into the kernel."""
    deadline = time.monotonic() + timeout
    count = wakeups(thread)
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = wakeups(thread)
        if now == count:
            return count
        count = now
    raise AssertionError(f"thread {thread.native_id} never settled: {count} wake-ups")
