"""The harness's own tests.

The whole-run tests (test_runs.py) start their pytest runs as soon as collection ends, when they
are among the selected tests, so that those runs go on while the spec's tests run: they mostly
wait, and the session does not wait for them at the end.
"""

import shutil
import tempfile
from pathlib import Path


def pytest_collection_finish(session):
    if hasattr(session.config, "workerinput"):  # under pytest-xdist, each worker starts its own
        return
    if not any(item.nodeid.startswith("harness/tests/test_runs.py") for item in session.items):
        return
    from harness.tests import test_runs

    base = Path(tempfile.mkdtemp(prefix="spec-runs-"))
    test_runs.EARLY["runs"] = test_runs.start_runs(base)
    test_runs.EARLY["base"] = base


def pytest_sessionfinish(session):
    from harness.tests import test_runs

    base = test_runs.EARLY.pop("base", None)
    if base is not None:
        shutil.rmtree(base, ignore_errors=True)
