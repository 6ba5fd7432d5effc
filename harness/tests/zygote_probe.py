"""Prints, as JSON, what a Python program can see of how it was started (harness/tests/test_zygote.py
runs it both forked from the zygote and as a fresh interpreter, and compares)."""

import json
import os
import signal
import sys
import threading
import warnings


def snapshot():
    return {
        "argv": sys.argv,
        "cwd": os.getcwd(),
        "path0": sys.path[0],
        "environ": dict(os.environ),
        "own_session": os.getsid(0) == os.getpid(),
        "signals": {
            name: str(signal.getsignal(getattr(signal, name)))
            for name in ("SIGINT", "SIGTERM", "SIGQUIT", "SIGCHLD", "SIGPIPE", "SIGHUP")
        },
        "flags": str(sys.flags),
        "warning_filters": [str(f[:1] + f[2:]) for f in warnings.filters],
        "threads": threading.active_count(),
        "main": __name__,
        "stdin": os.read(0, 1).decode(),  # /dev/null: nothing to read
    }


if __name__ == "__main__":
    print(json.dumps(snapshot()), flush=True)
    sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
