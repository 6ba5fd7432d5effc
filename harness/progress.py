"""How long the harness waits is decided by progress, not by a stopwatch.

A wait for something that should happen (a rendezvous, a server's first answer, a view's next
event) ends the moment it happens. It gives up early only when the processes that could make it
happen have gone *quiet*: none of their threads ran or was ready to run for ``QUIET`` seconds,
seen by at least ``QUIET_SAMPLES`` looks in a row.

- On a loaded machine a thread that wants the CPU is runnable (state ``R``): load lengthens a wait,
  it never ends one. That is what keeps a slow machine from producing a false verdict.
- A process that cannot go on (a server whose only event loop is blocked, a request queued behind a
  lock, a deadlock) goes quiet at once, so a wait that cannot succeed ends in a fraction of a
  second instead of running out a long window. That is what keeps failing fast.

What is watched: the processes named (a server's whole process group, this test process), and
always the kernel's ``ksoftirqd`` threads, which deliver loopback packets when the machine is
busy: a packet on its way is progress too. Where the watched processes wait on something else
that runs elsewhere (a database server), that must be watched as well (``Activity.add``).

Activity is read from Linux: each process's CPU clock (``clock_getcpuclockid``, nanoseconds, all
threads) and each thread's state in ``/proc/PID/task/TID/stat``. Every thread of this process that
watches (samples an Activity) is left out of both, for every watcher: two waits running at once
(the meeting point's, and a test's) must not take each other's looking for progress. Where that
is not available (not Linux), nothing is ever quiet and waits run to their cap.
"""

import ctypes
import os
import threading
import time
from pathlib import Path

# Quiet for this long means stuck. It must be far longer than any pause in a system that is
# still making progress: loopback I/O wakes its reader at once, no server in the spec waits on a
# timer while a request is pending, and the spec's connections are short, so TCP acknowledges at
# once (a delayed acknowledgement, 40 ms on loopback, comes only later in a connection's life).
# harness/tests/test_progress.py measures the longest pause in progressing rendezvous and
# requires it to stay far below this.
QUIET = 0.1
# How often the watcher looks, and how many looks in a row must find nothing: a watcher that was
# itself kept off the CPU for a while must look again before it concludes anything.
SAMPLE = 0.005
QUIET_SAMPLES = 10
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


def _busy_thread(pid, skip_tids=()):
    """True when a thread of ``pid`` (other than ``skip_tids``) is running or ready to run."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    for tid in tids:
        if int(tid) in skip_tids:
            continue
        try:
            with open(f"/proc/{pid}/task/{tid}/stat", "rb") as stat:
                state = stat.read().rsplit(b")", 1)[1].split(None, 1)[0].decode()
        except (OSError, IndexError):
            continue
        if state in _BUSY_STATES:
            return True
    return False


def _kernel_helpers():
    """The kernel's ksoftirqd threads (visible where /proc shows the host's kernel threads)."""
    helpers = []
    if not SUPPORTED:
        return helpers
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as comm:
                    if comm.read().startswith("ksoftirqd/"):
                        helpers.append(int(entry))
            except OSError:
                pass
    return helpers


KERNEL_HELPERS = _kernel_helpers()

_EVENTS = {"last": 0.0, "held": 0}
_EVENTS_LOCK = threading.Lock()


def event():
    """Record that the harness has just set something in motion (the meeting point answered a
    caller, say). Every wait counts it as progress: what the woken process does next may be what
    another wait is waiting for."""
    _EVENTS["last"] = time.monotonic()


def held(change):
    """The meeting point holds one caller more (+1) or less (-1) until the watched processes go
    quiet. While it holds any, no other wait concludes that nothing more will happen: the hold's
    end will set the caller going again."""
    with _EVENTS_LOCK:
        _EVENTS["held"] += change
    event()


_WATCHERS = {}  # threading.Thread -> (its native id, its CPU time when it began to watch)
_WATCHERS_LOCK = threading.Lock()


def _thread_cpu_ns(thread):
    return time.clock_gettime_ns(time.pthread_getcpuclockid(thread.ident))


def _watching():
    """Register the calling thread as a watcher; return (native ids of all live watchers, CPU
    they have spent watching so far)."""
    me = threading.current_thread()
    with _WATCHERS_LOCK:
        if me not in _WATCHERS:
            _WATCHERS[me] = (me.native_id, _thread_cpu_ns(me))
        tids, spent = set(), 0
        for thread, (tid, base) in list(_WATCHERS.items()):
            if not thread.is_alive():
                del _WATCHERS[thread]
                continue
            tids.add(tid)
            try:
                spent += _thread_cpu_ns(thread) - base
            except OSError:  # ended while we looked
                pass
        return tids, spent

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
    """The activity of a set of processes: this one, named processes, whole process groups, and
    the kernel's packet-delivery threads.

    ``sample()`` returns (CPU nanoseconds the watched processes have used since watching began,
    is one of their threads running or ready to run right now). The CPU figure only grows: it
    adds up each process's own increase, so a process that ends takes nothing away, and one that
    appears (a new worker) counts as progress. Call ``sample()`` from one thread at a time.
    """

    def __init__(self, pids=(), groups=(), include_self=True):
        self._pids = set(pids) | set(KERNEL_HELPERS)
        self._groups = set(groups)
        if include_self:
            self._pids.add(os.getpid())
        self._members = []
        self._members_at = None
        self._lock = threading.Lock()
        self._seen = {}  # pid -> its CPU figure at the last sample
        self._used = 0  # what sample() returns
        self._sampled = False

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
        me = os.getpid()
        watchers, watching_cpu = _watching()
        first, self._sampled = not self._sampled, True  # the first sample is the baseline
        busy = False
        for pid in self._current():
            used = _cpu_ns(pid)
            if used is None:
                self._seen.pop(pid, None)
                continue
            if pid == me:
                # Watching (sampling, sleeping between samples) is CPU this process used, but
                # not progress of anything watched.
                used -= watching_cpu
            before = self._seen.get(pid)
            self._seen[pid] = used
            if not first:
                self._used += max(0, used - before) if before is not None else max(0, used)
            busy = busy or _busy_thread(pid, watchers if pid == me else ())
        return self._used, busy


class Quiet:
    """Tells how long an ``Activity`` has been quiet. Only one thread may call ``check()``;
    ``progress()`` (progress seen by other means, a rendezvous arrival say) may come from any."""

    def __init__(self, activity, quiet=QUIET, heed_holds=True):
        self.activity = activity
        self.quiet = quiet
        self.heed_holds = heed_holds  # False only for the meeting point's own holds
        self._lock = threading.Lock()
        self._since = time.monotonic()
        self._base = None  # CPU figure at the last progress, taken at the next check
        self._looks = 0  # looks in a row that found nothing
        self.longest_pause = 0.0  # the longest quiet span that still ended in progress

    def progress(self):
        with self._lock:
            self._since, self._base, self._looks = time.monotonic(), None, 0

    def check(self):
        """Sample once; return for how many seconds nothing watched has made progress."""
        if not SUPPORTED:
            return 0.0
        used, busy = self.activity.sample()
        now = time.monotonic()
        with self._lock:
            if self._base is None:
                self._base = used
            elif (
                busy
                or used - self._base > IDLE_CPU_NS
                or _EVENTS["last"] > self._since
                or (self.heed_holds and _EVENTS["held"] > 0)
            ):
                self.longest_pause = max(self.longest_pause, now - self._since)
                self._since, self._base, self._looks = now, used, 0
            else:
                self._looks += 1
            return now - self._since

    def stalled(self):
        quiet = self.check()
        return quiet >= self.quiet and self._looks >= QUIET_SAMPLES


def wait_until(predicate, activity, quiet=QUIET, cap=30.0, sample=SAMPLE):
    """Wait until ``predicate()`` is true (returns True), or until the watched processes have been
    quiet for ``quiet`` seconds or ``cap`` seconds have passed (returns False)."""
    watch = Quiet(activity, quiet)
    deadline = time.monotonic() + cap
    while True:
        if predicate():
            return True
        if watch.stalled() or time.monotonic() >= deadline:
            return predicate()
        time.sleep(sample)
