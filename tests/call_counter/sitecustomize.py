# Put this folder first on PYTHONPATH, with WI_CALL_COUNTER naming a directory, to count
# exactly what a real Odoo server's threads call: each Python function and each builtin.
#
# Counting starts and stops on signal ``COUNT_SIGNAL`` (sent to one process: a prefork
# worker). At the start the process creates ``<WI_CALL_COUNTER>/<pid>.counting``; at the
# stop it removes it and writes ``<pid>.json``: per thread name, ``[caller file, caller
# line, caller function, called, count]`` rows (``called`` is "" for a Python function's
# own call, else the builtin's name), and under "" what the process holds (objects the
# garbage collector tracks, modules) and the collections it ran meanwhile, per generation.
# A thread is named as it is when counting stops, or as it was when it ended (the threaded
# server's request threads end with their connection); threads of one name add up.
# Counts, not times: the same on a noisy machine as on a quiet one, so a test can assert them.
import collections
import gc
import json
import os
import signal
import sys
import threading

COUNT_SIGNAL = signal.SIGRTMIN + 5  # Odoo handles none of the real-time signals

_counts = None
_gc_at_start = None
# Each counted thread by its ident, seen first as it made a call: its name when it ended.
_threads = {}
_get_ident = threading.get_ident
_current_thread = threading.current_thread


def _profile(frame, event, arg):
    counts = _counts
    if counts is None:
        return
    code = frame.f_code
    ident = _get_ident()
    if ident not in _threads:
        _threads[ident] = _current_thread()  # no profile event inside the profile function
    if event == "call":
        counts[(ident, code.co_filename, code.co_firstlineno, code.co_name, "")] += 1
    elif event == "c_call":
        name = getattr(arg, "__qualname__", None) or getattr(arg, "__name__", "?")
        counts[(ident, code.co_filename, code.co_firstlineno, code.co_name, name)] += 1


def _toggle(signum, frame):
    global _counts, _gc_at_start
    started = _path(".counting")
    if _counts is None:
        _gc_at_start = gc.get_stats()
        _threads.clear()
        _counts = collections.Counter()
        open(started, "w").close()  # the sender waits for it: counting from now on
        return
    counts, _counts = _counts, None
    os.unlink(started)
    names = {ident: thread.name for ident, thread in list(_threads.items())}
    names.update((thread.ident, thread.name) for thread in threading.enumerate())
    merged = collections.Counter()
    for (ident, *key), count in counts.items():
        merged[(names.get(ident, str(ident)), *key)] += count
    rows = collections.defaultdict(list)
    for (name, *key), count in merged.items():
        rows[name].append([*key, count])
    stats = zip(_gc_at_start, gc.get_stats(), strict=True)
    collections_run = [end["collections"] - start["collections"] for start, end in stats]
    rows[""] = {"gc_objects": len(gc.get_objects()), "modules": len(sys.modules), "gc_collections": collections_run}
    path = _path(".json")
    with open(path + ".tmp", "w") as handle:
        json.dump(rows, handle)
    os.replace(path + ".tmp", path)  # the reader waits for the whole file


def _path(suffix):
    return os.path.join(os.environ["WI_CALL_COUNTER"], f"{os.getpid()}{suffix}")


def _run_shadowed():
    """Run the ``sitecustomize`` this one shadows (the next on ``sys.path``, such as Debian's),
    as Python would have without this folder first."""
    import importlib.machinery
    import importlib.util

    here = os.path.dirname(os.path.abspath(__file__))
    rest = [entry for entry in sys.path if os.path.abspath(entry or os.curdir) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is not None and spec.loader is not None:
        spec.loader.exec_module(importlib.util.module_from_spec(spec))


if __name__ == "sitecustomize":  # imported by Python at start, not by the tests' helpers
    _run_shadowed()

if os.environ.get("WI_CALL_COUNTER"):
    # Threads started from now on (a prefork worker's work thread, the threaded
    # server's request threads); the interpreter's main thread too.
    threading.setprofile(_profile)
    sys.setprofile(_profile)
    signal.signal(COUNT_SIGNAL, _toggle)
