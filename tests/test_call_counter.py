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


def _run(tmp_path, extra_path=()):
    counts = tmp_path / "counts"
    counts.mkdir()
    env = {**os.environ, **counting_env(counts), "MARK": str(tmp_path / "mark")}
    env["PYTHONPATH"] = os.pathsep.join([str(COUNTER_DIR), *map(str, extra_path)])
    done = subprocess.run(
        [sys.executable, "-c", COUNT_TWICE], env=env, capture_output=True, text=True, timeout=60, check=False
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
