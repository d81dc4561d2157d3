"""A real process tree shaped like an Odoo prefork server, without Odoo.

Run as ``python fake_prefork_tree.py master [--titles] [--http N] [--cron M]``
it forks N HTTP-like children (default 1), M children that lower their
priority like WorkerCron (default 1), and starts
``python fake_prefork_tree.py gevent`` like PreforkServer.long_polling_spawn.
With ``--titles`` the children name themselves like Odoo does with
setproctitle; with ``--board`` they publish a busy request or scheduled action
on the activity board, as Odoo workers with the addon do. It prints the
children's pids as ``role pid`` lines, then waits for stdin to close.
"""

import os
import signal
import subprocess
import sys
import time


def child(title, nice, board=False):
    master = os.getpid()
    pid = os.fork()
    if pid:
        return pid
    stopping = []
    # Like Odoo's Worker.signal_handler: SIGINT ends the loop; SIGTERM stays fatal.
    signal.signal(signal.SIGINT, lambda *_args: stopping.append(True))
    if nice:
        os.nice(nice)
    if title:
        from setproctitle import setproctitle

        setproctitle(title % os.getpid())
    recorder = publish_activity(master, cron=bool(nice)) if board else None
    while os.getppid() != 1 and not stopping:
        time.sleep(0.2)
    del recorder
    os._exit(0)


def publish_activity(master, cron):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from worker_inspector.engine.recorder import Recorder

    recorder = Recorder(lambda: (master, 4))
    if cron:
        recorder.begin_cron(7, "Mail: Email Queue Manager", "prod", uid=1)
    else:
        recorder.begin_request("/web/dataset/call_kw/sale.order/web_read")
        recorder.set_user("prod", 2, "admin")
    return recorder  # the caller keeps it for as long as the child lives


def main():
    if sys.argv[1] == "gevent":
        print("ready", flush=True)  # started up: its memory no longer moves
        while os.getppid() != 1:
            time.sleep(0.2)
        return
    titles = "--titles" in sys.argv
    counts = {"http": 1, "cron": 1}
    for role in counts:
        if "--" + role in sys.argv:
            counts[role] = int(sys.argv[sys.argv.index("--" + role) + 1])
    board = "--board" in sys.argv
    children = [("http", child("odoo: WorkerHTTP %d " if titles else None, 0, board)) for _ in range(counts["http"])]
    children += [
        ("cron", child("odoo: WorkerCron %d somedb" if titles else None, 10, board)) for _ in range(counts["cron"])
    ]
    gevent = subprocess.Popen([sys.executable, sys.argv[0], "gevent"], stdout=subprocess.PIPE, text=True)
    gevent.stdout.readline()
    children.append(("gevent", gevent.pid))
    for role, pid in children:
        print(role, pid)
    sys.stdout.flush()
    sys.stdin.read()
    for _role, pid in children:
        os.kill(pid, 9)


if __name__ == "__main__":
    main()
