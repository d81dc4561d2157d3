"""The call counter that ``bench_calls`` and ``test_hotpath_e2e`` put first on ``PYTHONPATH``
(plain tests, real interpreters)."""

import json
import os
import subprocess
import sys

from call_counting import COUNTER_DIR, counting_env

COUNT_TWICE = (
    "import os, sitecustomize\n"
    "os.kill(os.getpid(), sitecustomize.COUNT_SIGNAL)\n"
    "len('counted')\n"
    "os.kill(os.getpid(), sitecustomize.COUNT_SIGNAL)\n"
)


# Two threads of one name, each ended before counting stops, then renamed as it runs (as
# Odoo names its request threads).
ENDED_THREADS = (
    "import os, threading, sitecustomize\n"
    "def serve():\n"
    "    threading.current_thread().name = 'request'\n"
    "    len('served')\n"
    "os.kill(os.getpid(), sitecustomize.COUNT_SIGNAL)\n"
    "for _ in range(2):\n"
    "    thread = threading.Thread(target=serve)\n"
    "    thread.start()\n"
    "    thread.join()\n"
    "os.kill(os.getpid(), sitecustomize.COUNT_SIGNAL)\n"
)


def _run(tmp_path, extra_path=(), code=COUNT_TWICE):
    counts = tmp_path / "counts"
    counts.mkdir()
    env = {**os.environ, **counting_env(counts), "MARK": str(tmp_path / "mark")}
    env["PYTHONPATH"] = os.pathsep.join([str(COUNTER_DIR), *map(str, extra_path)])
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    (result,) = counts.glob("*.json")
    return json.loads(result.read_text())


def test_it_counts_the_builtins_a_thread_calls_between_two_signals(tmp_path):
    rows = _run(tmp_path)["MainThread"]
    assert [count for *_where, called, count in rows if called == "len"] == [1]


def test_it_runs_the_sitecustomize_it_shadows(tmp_path):
    shadowed = tmp_path / "site"
    shadowed.mkdir()
    (shadowed / "sitecustomize.py").write_text("import os\nopen(os.environ['MARK'], 'w').write('ran')\n")
    rows = _run(tmp_path, [shadowed])["MainThread"]
    assert (tmp_path / "mark").read_text() == "ran"
    assert [count for *_where, called, count in rows if called == "len"] == [1]


def test_threads_that_ended_before_the_count_stopped_keep_their_last_name(tmp_path):
    rows = _run(tmp_path, code=ENDED_THREADS)
    assert [count for *_where, called, count in rows["request"] if called == "len"] == [2]
    assert not [name for name in rows if name.isdigit()]
