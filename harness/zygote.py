"""A preloaded Python process that forks the spec's servers.

Starting a server is mostly importing: Python, Django and the server package cost 0.15-0.3 s of
CPU per process, and a run starts dozens. The zygote imports what every server needs once (Django's
handlers, ORM and HTTP modules, each installed server package), then forks one child per server.
Each child becomes exactly the process ``python -m uvicorn ...`` (or ``manage.py runserver``)
would have been: its own session, working directory, environment, output file and
``sys.argv``, then the server's own command-line entry point runs as ``__main__``. What differs
is only that the preloaded modules are already in ``sys.modules``, as with gunicorn's
``--preload``. Nothing that reads the environment at import is preloaded: not the project's
settings (the child's environment picks them), not ``daphne.server`` (it creates the Twisted
reactor's event loop, which must not be shared between children).

Protocol, one JSON object per line. The harness writes
``{"argv": [...], "env": {...}, "cwd": ..., "log": ..., "stop": SIGNAL}`` on stdin and reads
``{"pid": N}`` back; when a child ends the zygote writes ``{"exited": N, "code": C}``.

Dying with the test process: when the test process ends without stopping its servers (its stdin
closes) or dies (``PR_SET_PDEATHSIG`` sends the zygote SIGTERM), the zygote sends each child's
process group the child's own prompt-stop signal and exits. Should the zygote itself be killed,
each child gets SIGTERM (its own ``PR_SET_PDEATHSIG``). A killed pytest leaves no server behind.
"""

import ctypes
import gc
import importlib
import json
import os
import queue
import select
import shutil
import signal
import subprocess
import sys
import threading
import time

PR_SET_PDEATHSIG = 1

# Imported once, shared by every child (copy-on-write). Only modules that read no environment and
# start no thread or event loop at import.
PRELOAD = (
    "asyncio", "concurrent.futures", "json", "logging.config", "sqlite3", "wsgiref.simple_server",
    "asgiref.sync", "asgiref.local",
    "django.core.handlers.asgi", "django.core.handlers.wsgi", "django.core.wsgi",
    "django.core.asgi", "django.core.management", "django.core.management.commands.runserver",
    "django.core.management.commands.migrate", "django.core.servers.basehttp",
    "django.db.models", "django.db.backends.sqlite3.base", "django.http", "django.urls",
    "django.views.generic", "django.template.defaulttags", "django.template.loader_tags",
    "django.views.debug", "django.middleware.common", "django.contrib.contenttypes.apps",
    "django.contrib.auth.apps",
    "uvicorn.main", "uvicorn.config", "uvicorn.server", "uvicorn.protocols.http.h11_impl",
    "uvicorn.loops.asyncio", "uvicorn.lifespan.on", "uvicorn.supervisors.multiprocess",
    "hypercorn.config", "hypercorn.asyncio", "hypercorn.asyncio.run", "hypercorn.run",
    "gunicorn.app.wsgiapp", "gunicorn.arbiter", "gunicorn.workers.gthread", "gunicorn.glogging",
    "granian.cli", "granian.server.mp", "granian.asgi",
    "twisted.internet.asyncioreactor", "twisted.web.http", "autobahn.twisted.websocket",
    "daphne.http_protocol", "daphne.ws_protocol", "daphne.access", "daphne.endpoints",
)  # fmt: skip


def _preload():
    missing = []
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:  # a server package that is not installed; its servers are skipped
            missing.append(name)
    for name in ("twisted.internet.reactor", "daphne.server", "project.settings"):
        if name in sys.modules:
            raise RuntimeError(f"the zygote must not import {name} (it would be shared)")
    threads = os.listdir("/proc/self/task")
    if len(threads) != 1:  # a fork copies only the forking thread: nothing may run beside it
        raise RuntimeError(f"preloading started threads ({len(threads)}); fork is unsafe")
    return missing


def _die_with(sig):
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, sig)
    except (OSError, AttributeError):
        pass


_PROTOCOL = {}  # "fd": where the zygote's answers go (its original stdout)


def _send(message):
    """Tell the test process; False once it is gone (its end of the pipe closed)."""
    try:
        os.write(_PROTOCOL["fd"], (json.dumps(message) + "\n").encode())
    except BrokenPipeError:
        return False
    return True


def _stop_all(children):
    """Stop every child's process group with its own prompt signal (hypercorn removes its
    semaphores then), give them a few seconds, then kill what is left."""
    for pid, stop in children.items():
        try:
            os.killpg(pid, stop)
        except OSError:
            pass
    waiting, deadline = set(children), time.monotonic() + 3
    while waiting and time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            time.sleep(0.01)
        waiting.discard(pid)
    for pid in children:  # their workers too, whether or not the master has ended
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass


def _serve(workdir):
    """The zygote's loop: fork on request, report exits. Returns only in a forked child, with the
    request it is to carry out. Once the test process is gone, stops every child and removes
    ``workdir`` (the session's folder)."""
    parent = os.getppid()
    # Answers go out on a descriptor of their own; anything printed (a warning at import, say)
    # goes to stderr, the zygote's log, and can never garble them.
    _PROTOCOL["fd"] = os.dup(1)
    os.dup2(2, 1)
    orphaned = []
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *args: None)  # wake the select below
    signal.signal(signal.SIGTERM, lambda *args: orphaned.append(True))
    _die_with(signal.SIGTERM)
    if os.getppid() != parent:
        sys.exit(1)  # the test process died before the line above
    children = {}  # pid -> the signal that stops its group promptly
    stdin = os.fdopen(0, "rb", buffering=0, closefd=False)
    pending = b""
    missing = _preload()
    # Keep the preloaded objects out of the children's garbage collections, which would
    # otherwise touch (and so copy) the pages they share with the zygote.
    gc.freeze()
    _send({"ready": os.getpid(), "missing": missing})
    while True:
        readable, _, _ = select.select([0, wake_r], [], [])
        if wake_r in readable:
            os.read(wake_r, 4096)
        while children:  # reap every child that has ended
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            children.pop(pid, None)
            if not _send({"exited": pid, "code": os.waitstatus_to_exitcode(status)}):
                orphaned.append(True)  # nobody to tell: clean up as for a closed stdin
        chunk = stdin.read(65536) if 0 in readable else None
        if orphaned or chunk == b"":  # the test process is gone: nothing we started may outlive it
            _stop_all(children)
            if os.path.basename(workdir).startswith("spec-session-"):  # never anything else
                shutil.rmtree(workdir, ignore_errors=True)
            os._exit(0)
        if not chunk:
            continue
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            request = json.loads(line)
            ready_r, ready_w = os.pipe()
            pid = os.fork()
            if pid == 0:
                signal.set_wakeup_fd(-1)
                for fd in (wake_r, wake_w, ready_r, _PROTOCOL["fd"]):
                    os.close(fd)
                _detach(os.getppid())
                os.write(ready_w, b"+")  # now it can be stopped by its group
                os.close(ready_w)
                return request
            os.close(ready_w)
            os.read(ready_r, 1)  # empty if it died first; either way, its group is settled
            os.close(ready_r)
            children[pid] = request["stop"]
            if not _send({"pid": pid}):
                orphaned.append(True)


def _detach(zygote):
    """In a forked child, before the zygote answers with its pid: a session and process group of
    its own (the harness stops the whole group), the signal dispositions of a fresh interpreter,
    and SIGTERM when the zygote dies."""
    os.setsid()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in (signal.SIGQUIT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)
    _die_with(signal.SIGTERM)
    if os.getppid() != zygote:
        os._exit(1)


def _become(request):
    """Turn this forked child into the server process the request describes."""
    os.chdir(request["cwd"])
    log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    os.close(null)
    os.environ.clear()
    os.environ.update(request["env"])
    argv = request["argv"]
    if argv[0] != sys.executable:
        raise ValueError(f"the zygote runs Python programs only, not {argv[0]!r}")
    import atexit
    import runpy
    import traceback

    try:
        if argv[1] == "-m":
            sys.argv = [argv[2], *argv[3:]]
            sys.path[0] = os.getcwd()  # what `python -m` puts first
            runpy.run_module(argv[2], run_name="__main__", alter_sys=True)
        else:
            sys.argv = argv[1:]
            sys.path[0] = os.path.dirname(os.path.abspath(argv[1]))
            runpy.run_path(argv[1], run_name="__main__")
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    except KeyboardInterrupt:
        traceback.print_exc()
        code = "interrupted"
    except BaseException:
        traceback.print_exc()
        code = 1
    # What Python does at exit, minus tearing down every module and object: in a forked child
    # that would write to (and so copy) every page shared with the zygote, and with dozens of
    # servers stopping at once that alone takes seconds.
    threading._shutdown()
    atexit._run_exitfuncs()
    if code == "interrupted":  # as Python does: die by the signal
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code or 0)


# --- the harness's side --------------------------------------------------------------------------


class Child:
    """A forked server, as the harness sees it: ``subprocess.Popen``'s ``pid``, ``returncode``,
    ``poll()`` and ``wait()``, for a process that is the zygote's child, not ours."""

    def __init__(self, zygote, pid):
        self._zygote, self.pid, self.returncode = zygote, pid, None

    def poll(self):
        if self.returncode is None:
            self.returncode = self._zygote.exit_code(self.pid)
        return self.returncode

    def wait(self, timeout=None):
        if self._zygote.wait_exit(self.pid, timeout) is None:
            raise subprocess.TimeoutExpired(f"server {self.pid}", timeout)
        return self.poll()


class Zygote:
    """The running zygote process (one per test process; see the module docstring)."""

    def __init__(self, env, workdir):
        self.workdir = workdir
        self._env = dict(env)
        self._lock = threading.Lock()
        self._cond = threading.Condition()
        self._exits = {}
        self._replies = queue.Queue()
        self._stderr_path = os.path.join(workdir, "zygote.log")
        started = queue.Queue()
        # PR_SET_PDEATHSIG fires when the *thread* that started the zygote ends: start it from a
        # thread that lasts as long as this process.
        threading.Thread(target=self._parent, args=(started, workdir), daemon=True,
                         name="zygote-parent").start()  # fmt: skip
        outcome = started.get()
        if isinstance(outcome, BaseException):
            raise outcome
        first = self._replies.get(timeout=120)
        if "ready" not in first:
            raise RuntimeError(f"the zygote did not start: {first}; its output:\n{self.output()}")
        self.pid, self.missing = first["ready"], first["missing"]

    def _parent(self, started, workdir):
        try:
            with open(self._stderr_path, "wb") as stderr:
                self._proc = subprocess.Popen(
                    [sys.executable, "-m", "harness.zygote", workdir], stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE, stderr=stderr, env=self._env, cwd=workdir,
                    start_new_session=True,
                )  # fmt: skip
        except BaseException as error:
            started.put(error)
            return
        started.put(None)
        for line in self._proc.stdout:  # until the zygote exits
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if "exited" in message:
                with self._cond:
                    self._exits[message["exited"]] = message["code"]
                    self._cond.notify_all()
            else:
                self._replies.put(message)
        self._replies.put({"zygote exited": self._proc.wait()})
        with self._cond:
            self._cond.notify_all()
        threading.Event().wait()  # never return: this thread is the zygote's parent

    def output(self):
        try:
            with open(self._stderr_path, errors="replace") as stderr:
                return stderr.read()
        except OSError:
            return ""

    def spawn(self, argv, env, cwd, log, stop=signal.SIGTERM):
        """Fork a server process whose group ``stop`` stops promptly; returns a ``Child``."""
        interpreter = {k: v for k, v in env.items() if k.startswith("PYTHON")}
        if interpreter != {k: v for k, v in self._env.items() if k.startswith("PYTHON")}:
            raise ValueError(f"PYTHON* variables are read at interpreter start: {interpreter}")
        request = {"argv": [str(a) for a in argv], "env": env, "cwd": str(cwd), "log": str(log),
                   "stop": int(stop)}  # fmt: skip
        with self._lock:
            self._proc.stdin.write((json.dumps(request) + "\n").encode())
            self._proc.stdin.flush()
            reply = self._replies.get(timeout=60)
        if "pid" not in reply:
            raise RuntimeError(f"the zygote could not fork: {reply}; its output:\n{self.output()}")
        return Child(self, reply["pid"])

    def exit_code(self, pid):
        with self._cond:
            if pid in self._exits:
                return self._exits[pid]
            if self._proc.poll() is not None and not os.path.exists(f"/proc/{pid}"):
                return -1  # the zygote died and cannot tell; the process is gone
            return None

    def wait_exit(self, pid, timeout):
        with self._cond:
            self._cond.wait_for(lambda: self.exit_code(pid) is not None, timeout=timeout)
        return self.exit_code(pid)

    def close(self):
        """Closing its stdin makes the zygote kill what it started and exit."""
        try:
            self._proc.stdin.close()
            self._proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self._proc.kill()


if __name__ == "__main__":
    _become(_serve(sys.argv[1]))  # from here on this process is the server; it never returns
