"""``renice``: a daemon's niceness reaches every thread it has (on Linux a thread's own)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from sleigh.daemons.control.supervisor import renice

#: A process with a second thread, started before it is reniced (as a daemon's are).
TWO_THREADS = """
import threading, time
threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
print("ready", flush=True)
time.sleep(60)
"""


def _tasks(pid: int) -> list[int]:
    return [int(task) for task in os.listdir(f"/proc/{pid}/task")]


def test_every_thread_gets_the_niceness() -> None:
    proc = subprocess.Popen([sys.executable, "-c", TWO_THREADS], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        assert len(_tasks(proc.pid)) == 2
        assert renice("two threads", proc.pid, 7)  # (raising it takes no privilege)
        assert {os.getpriority(os.PRIO_PROCESS, task) for task in _tasks(proc.pid)} == {7}
    finally:
        proc.kill()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{proc.pid}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not renice("gone", proc.pid, 7)
