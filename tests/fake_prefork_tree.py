"""A real process tree shaped like an Odoo prefork server, without Odoo.

Run as ``python fake_prefork_tree.py MASTER`` it forks one HTTP-like child,
one child that lowers its priority like WorkerCron, and starts
``python fake_prefork_tree.py gevent`` like PreforkServer.long_polling_spawn.
With ``--titles`` the children name themselves like Odoo does with
setproctitle. It prints the children's pids as ``role pid`` lines, then waits
for stdin to close.
"""

import os
import subprocess
import sys
import time


def child(title, nice):
    pid = os.fork()
    if pid:
        return pid
    if nice:
        os.nice(nice)
    if title:
        from setproctitle import setproctitle  # noqa: PLC0415

        setproctitle(title % os.getpid())
    while os.getppid() != 1:
        time.sleep(0.2)
    os._exit(0)


def main():
    if sys.argv[1] == "gevent":
        while os.getppid() != 1:
            time.sleep(0.2)
        return
    titles = "--titles" in sys.argv
    http = child("odoo: WorkerHTTP %d " if titles else None, 0)
    cron = child("odoo: WorkerCron %d somedb" if titles else None, 10)
    gevent = subprocess.Popen([sys.executable, sys.argv[0], "gevent"])
    print("http", http)
    print("cron", cron)
    print("gevent", gevent.pid, flush=True)
    sys.stdin.read()
    for pid in (http, cron, gevent.pid):
        os.kill(pid, 9)


if __name__ == "__main__":
    main()
