"""What a sampling profile costs the sampled worker.

Goal (issue 12): while "Profile" samples a process (every thread, about
100 Hz) the process loses at most 5% of its CPU work; nothing runs when no
profile does. A child process stands in for a busy worker: one thread runs
pure-Python work at the bottom of a 40-frame stack (Odoo's depth in a
route), with an inspector like every Odoo process that loads the addon, and
counts its work units. The parent measures interleaved rounds:

- ``off``: no profile (two halves compared: the A/A control);
- ``on``: a profile of the round's length requested through the inspector.

It prints the work rate of each kind, the A/A ratio beside the A/B ratio,
the samples taken and the CPU time of the sampling thread (``time.thread_time``).

    python benchmarks/bench_profile.py [--rounds 6] [--seconds 2]
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from worker_inspector.engine import stacks
from worker_inspector.engine.identity import process_key

CHILD = r"""
import os, sys, threading, time
sys.path.insert(0, {root!r})
from worker_inspector.engine.recorder import Recorder

rec = Recorder(lambda: (os.getpid(), 4), base={base!r}, inspect=True)
rec.slot()
counter = [0]

def work(depth):
    if depth:
        return work(depth - 1)
    while True:
        total = 0
        for i in range(2000):
            total += i % 7
        counter[0] += 1

worker = threading.Thread(target=work, args=(40,), name="burner", daemon=True)
worker.start()
print(worker.native_id, flush=True)
for line in sys.stdin:
    print(counter[0], flush=True)
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=6, help="rounds of each kind")
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    base = tempfile.mkdtemp(prefix="wi-bench-profile-")
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD.format(root=str(ROOT), base=base)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    child.stdout.readline()  # the burner started
    key = process_key(child.pid)
    server = child.pid  # the child is its own (threaded) server

    def count():
        child.stdin.write("\n")
        child.stdin.flush()
        return int(child.stdout.readline())

    rates = {"off": [], "on": []}
    sampler_cpu = []
    samples = []
    time.sleep(1.0)
    try:
        for _round in range(args.rounds):
            for kind in ("off", "on"):
                before, started = count(), time.monotonic()
                if kind == "on":
                    profile = stacks.request_profile(server, key, args.seconds, base=base)
                    sampler_cpu.append(profile["cpu_seconds"] / profile["duration"])
                    samples.append(len(profile["samples"]))
                else:
                    time.sleep(args.seconds + 0.05)
                rates[kind].append((count() - before) / (time.monotonic() - started))
    finally:
        child.kill()
        child.wait()
    off, on = rates["off"], rates["on"]
    half = len(off) // 2
    print(f"work units/s without profile: median {statistics.median(off):.0f} ({len(off)} rounds)")
    print(f"work units/s while profiled:  median {statistics.median(on):.0f} ({len(on)} rounds)")
    print(f"A/A (off, first half / second half): {statistics.median(off[:half]) / statistics.median(off[half:]):.3f}")
    print(f"A/B (on / off): {statistics.median(on) / statistics.median(off):.3f}  (goal >= 0.95)")
    rate = statistics.median(samples) / args.seconds
    print(f"samples per second: {rate:.0f} (2 threads each)")
    print(f"CPU of the sampling thread (its thread_time): {statistics.median(sampler_cpu):.1%} of one core")


if __name__ == "__main__":
    main()
