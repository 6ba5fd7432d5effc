"""How long the harness waits is decided by progress, not by a stopwatch.

A wait for something that should happen (a rendezvous, a server's first answer, a view's next
event) ends the moment it happens. It gives up early only when the processes that could make it
happen have gone *quiet*: none of their threads ran or was ready to run for ``QUIET`` seconds.

- On a loaded machine a thread that wants the CPU is runnable (state ``R``): load lengthens a wait,
  it never ends one. That is what keeps a slow machine from producing a false verdict.
- A process that cannot go on (a server whose only event loop is blocked, a request queued behind a
  lock, a deadlock) goes quiet at once, so a wait that cannot succeed ends in a fraction of a
  second instead of running out a long window. That is what keeps failing fast.

Activity is read from Linux: each process's CPU clock (``clock_getcpuclockid``, nanoseconds, all
threads) and each thread's state in ``/proc/PID/task/TID/stat``. The thread doing the watching is
left out of both. Where that is not available (not Linux), nothing is ever quiet and waits run to
their cap.
"""

import ctypes
import os
import threading
import time
from pathlib import Path

# Quiet for this long means stuck. The longest pause seen in a *progressing* run of the spec is
# far shorter (harness/tests/test_progress.py measures it): loopback I/O wakes its reader at once,
# and no server in the spec waits on a timer while a request is pending.
QUIET = 0.1
# How often the watcher looks.
SAMPLE = 0.005
# CPU a quiet set of processes may still use in one QUIET span: idle servers wake up now and then
# (gunicorn's arbiter every second, runserver's poll loop) for a few microseconds.
IDLE_CPU_NS = 2_000_000

_BUSY_STATES = {"R", "D"}  # running or ready to run; waiting on disk
_GROUP_REFRESH = 0.05  # how often the members of a process group are looked up again

try:
    _libc = ctypes.CDLL(None, use_errno=True)
    _libc.clock_getcpuclockid.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
except (OSError, AttributeError):  # not Linux/glibc
    _libc = None

SUPPORTED = _libc is not None and Path("/proc/self/task").is_dir()


def _cpu_ns(pid):
    """Total CPU time of process ``pid`` (all its threads), or None once it is gone."""
    clock = ctypes.c_int()
    if _libc.clock_getcpuclockid(pid, ctypes.byref(clock)) != 0:
        return None
    try:
        return time.clock_gettime_ns(clock.value)
    except OSError:
        return None


def _busy_thread(pid, skip_tid):
    """True when a thread of ``pid`` (other than ``skip_tid``) is running or ready to run."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    for tid in tids:
        if int(tid) == skip_tid:
            continue
        try:
            with open(f"/proc/{pid}/task/{tid}/stat", "rb") as stat:
                state = stat.read().rsplit(b")", 1)[1].split(None, 1)[0].decode()
        except (OSError, IndexError):
            continue
        if state in _BUSY_STATES:
            return True
    return False


_GROUPS = {"at": None, "groups": {}}
_GROUPS_LOCK = threading.Lock()


def group_members(pgid, fresh=False):
    """The processes of process group ``pgid`` (a server and its workers).

    One scan of /proc serves every caller for ``_GROUP_REFRESH`` seconds (dozens of servers may
    be waited for at once); ``fresh=True`` scans now."""
    with _GROUPS_LOCK:
        now = time.monotonic()
        if fresh or _GROUPS["at"] is None or now - _GROUPS["at"] > _GROUP_REFRESH:
            groups = {}
            for entry in os.listdir("/proc"):
                if entry.isdigit():
                    try:
                        groups.setdefault(os.getpgid(int(entry)), []).append(int(entry))
                    except OSError:
                        pass
            _GROUPS.update(at=now, groups=groups)
        return list(_GROUPS["groups"].get(pgid, []))


class Activity:
    """The activity of a set of processes: this one, named processes, and whole process groups.

    ``sample()`` returns (CPU nanoseconds used so far, is a thread busy right now). Call it from
    one thread only: that thread's own work is subtracted, so watching never looks like progress
    (a new sampling thread starts a new count: compare only samples taken by one thread).
    """

    def __init__(self, pids=(), groups=(), include_self=True):
        self._pids = set(pids)
        self._groups = set(groups)
        if include_self:
            self._pids.add(os.getpid())
        self._members = []
        self._members_at = None
        self._lock = threading.Lock()
        self._sampler = None  # (native id, CPU time) of the thread that samples, at its first sample

    def add(self, pid=None, group=None):
        with self._lock:
            if pid is not None:
                self._pids.add(pid)
            if group is not None:
                self._groups.add(group)
            self._members_at = None

    def _current(self):
        now = time.monotonic()
        with self._lock:
            if self._members_at is None or now - self._members_at > _GROUP_REFRESH:
                members = set(self._pids)
                for pgid in self._groups:
                    # A group's leader counts even before the next scan sees it.
                    members.update(group_members(pgid), [pgid])
                self._members, self._members_at = sorted(members), now
            return self._members

    def sample(self):
        me, my_tid = os.getpid(), threading.get_native_id()
        if self._sampler is None or self._sampler[0] != my_tid:
            self._sampler = (my_tid, time.thread_time_ns())
        cpu, busy, watching_me = 0, False, False
        for pid in self._current():
            used = _cpu_ns(pid)
            if used is not None:
                cpu += used
            watching_me = watching_me or pid == me
            busy = busy or _busy_thread(pid, my_tid if pid == me else None)
        if watching_me:
            # The watcher's own work (sampling, sleeping between samples) is CPU this process
            # used, but not progress of anything watched.
            cpu -= time.thread_time_ns() - self._sampler[1]
        return cpu, busy


class Quiet:
    """Tells how long an ``Activity`` has been quiet. Only one thread may call ``check()``;
    ``progress()`` (progress seen by other means, a rendezvous arrival say) may come from any."""

    def __init__(self, activity, quiet=QUIET):
        self.activity = activity
        self.quiet = quiet
        self._since = time.monotonic()
        self._cpu = None  # CPU total at the last progress, taken at the next check
        self.longest_pause = 0.0  # the longest quiet span that still ended in progress

    def progress(self):
        self._since, self._cpu = time.monotonic(), None

    def check(self):
        """Sample once; return for how many seconds nothing watched has made progress."""
        if not SUPPORTED:
            return 0.0
        now = time.monotonic()
        cpu, busy = self.activity.sample()
        if self._cpu is None:
            self._cpu = cpu
        if busy or cpu - self._cpu > IDLE_CPU_NS:
            self.longest_pause = max(self.longest_pause, now - self._since)
            self._since, self._cpu = now, cpu
        return now - self._since

    def stalled(self):
        return self.check() >= self.quiet


def wait_until(predicate, activity, quiet=QUIET, cap=30.0, sample=SAMPLE):
    """Wait until ``predicate()`` is true (returns True), or until the watched processes have been
    quiet for ``quiet`` seconds or ``cap`` seconds have passed (returns False)."""
    watch = Quiet(activity, quiet)
    deadline = time.monotonic() + cap
    while True:
        if predicate():
            return True
        if watch.check() >= quiet or time.monotonic() >= deadline:
            return predicate()
        time.sleep(sample)
