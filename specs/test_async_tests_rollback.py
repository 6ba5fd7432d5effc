"""Async tests and the test database: is what the async ORM writes in a test rolled back?

Claimed (pytest-asyncio issue 226): "When using pytest-django's `pytest.mark.django_db` marker in
conjunction with `pytest.mark.asyncio`, any writes to the database are not rolled back when the
test completes and affect subsequent tests." And, explaining it (srtab/daiv pull request 1441,
https://github.com/srtab/daiv/pull/1441): "Async ORM writes run on a thread-local connection — not
the one pytest-django wrapped in a rollback-only atomic block — so they **commit for real**", and
"run one of these tests first and it fails outright with `OperationalError: database table is
locked`, the async write colliding with a write lock the main thread's transaction already holds."

The spec observes it from inside pytest: it runs a small generated test module (``TESTS`` below)
with pytest, pytest-django and pytest-asyncio (``asyncio_mode=auto``) in a subprocess, on SQLite,
and reads what each generated test recorded. What is true, on every Django version the spec runs:

- In an ``async def`` test marked ``django_db`` (not transactional), ``await
  Author.objects.acreate(...)`` succeeds, and its row is still there in the next test: it is not
  rolled back. The test's coroutine runs on the main thread, where pytest-django opened its atomic
  block; the ORM's query runs on another thread (asgiref's one shared thread,
  ``ThreadPoolExecutor-<n>_0``), whose connection is in autocommit and in no atomic block.
- If the test's own transaction already holds SQLite's write lock (a sync fixture created a row),
  the async write fails with ``django.db.utils.OperationalError``; with the spec's test database,
  a file, SQLite says "database is locked" once the connection's busy timeout runs out (the
  generated run sets it to 0.1 s).
- Written where the ORM runs on the main thread, the same test is rolled back: an ``async def``
  method of Django's ``TestCase`` (the method runs on another thread, the ORM on the main thread,
  inside the test's atomic block), or a sync pytest-django test that runs its async body with
  ``async_to_sync``.
- A transactional test (``django_db(transaction=True)``, or Django's ``TransactionTestCase``) still
  writes in autocommit, but the tables are flushed after it: the next transactional test finds
  them empty.

Why: pytest-django's ``django_db`` runs a ``django.test.TestCase`` around the test from a sync
fixture, so ``TestCase._enter_atomics`` opens the atomic block on the main thread's connection.
pytest-asyncio runs the test's coroutine on an event loop on that thread, with no ``AsyncToSync``
around it, so ``asgiref.sync.SyncToAsync.__call__`` (thread-sensitive, behind ``acreate``) has no
``ThreadSensitiveContext`` and no ``AsyncToSync`` executor to go back to and uses the process-wide
``SyncToAsync.single_thread_executor``; connections are per thread
(``django.db.utils.ConnectionHandler.thread_critical``), so that thread opens its own connection,
in autocommit. Django's own runner wraps a coroutine test method in ``async_to_sync``
(``django.test.testcases.SimpleTestCase._setup_and_call``): ``AsyncToSync.__call__`` runs it on a
new thread and makes the main thread the executor that thread-sensitive ``sync_to_async`` calls go
back to. ``TransactionTestCase._fixture_teardown`` flushes every table, whichever connection wrote.
"""

import json
import os
import re
import subprocess
import sys

import pytest

from harness import ROOT
from harness.env import server_env
from harness.spec import SQLITE_LOCKED, Claim, Statement

CLAIM = Claim(
    id="async-test-rollback",
    source="pytest-asyncio issue 226 (JakeUrban)",
    url="https://github.com/pytest-dev/pytest-asyncio/issues/226",
    claim=(
        "When using pytest-django's `pytest.mark.django_db` marker in conjunction with "
        "`pytest.mark.asyncio`, any writes to the database are not rolled back when the test "
        "completes and affect subsequent tests."
    ),
    statements=[
        Statement(
            "not-rolled-back",
            "In an async test marked django_db (pytest-django, pytest-asyncio), rows the async "
            "ORM writes are not rolled back when the test completes: the next test sees them.",
            "holds",
        ),
        Statement(
            "other-connection",
            "The async ORM's queries run on another thread's connection, in autocommit, not on "
            "the connection pytest-django wrapped in its rollback-only atomic block.",
            "holds",
        ),
        Statement(
            "write-lock",
            "When the test's transaction already holds SQLite's write lock (a sync fixture wrote "
            "a row), the async ORM's write fails with OperationalError.",
            "holds",
        ),
        Statement(
            "testcase-rolls-back",
            "In an async method of Django's TestCase the ORM runs on the main thread, inside the "
            "test's atomic block, and its rows are rolled back.",
            "holds",
            claimed=False,
        ),
        Statement(
            "async-to-sync-rolls-back",
            "A sync pytest-django test that runs its async body with async_to_sync gets the same: "
            "the ORM on the main thread, inside the atomic block, its rows rolled back.",
            "holds",
            claimed=False,
        ),
        Statement(
            "transactional-flushes",
            "With django_db(transaction=True) or Django's TransactionTestCase, the async ORM "
            "still writes in autocommit, but the tables are flushed after the test: the next "
            "transactional test finds them empty.",
            "holds",
            claimed=False,
        ),
    ],
    mechanism=(
        "pytest_django.fixtures._django_db_helper (a django.test.TestCase: "
        "TestCase._enter_atomics on the main thread); asgiref.sync.SyncToAsync.__call__ "
        "(no ThreadSensitiveContext, no AsyncToSync: SyncToAsync.single_thread_executor); "
        "django.db.utils.ConnectionHandler.thread_critical; "
        "django.test.testcases.SimpleTestCase._setup_and_call (async_to_sync around a coroutine "
        "test method); TransactionTestCase._fixture_teardown (flush)."
    ),
    docs="https://docs.djangoproject.com/en/5.2/topics/testing/tools/#testing-asynchronous-code",
    question="Do ORM writes in an async django_db test escape the rollback?",
    topic="tests",
    code=(
        "specs.test_async_tests_rollback.test_the_next_test_sees_the_async_tests_row",
        "specs.test_async_tests_rollback.test_the_async_orm_runs_on_another_threads_connection",
    ),
    instead=(
        "specs.test_async_tests_rollback.test_django_testcase_async_method_is_rolled_back",
        "specs.test_async_tests_rollback.test_async_to_sync_in_a_sync_test_is_rolled_back",
    ),
)
not_rolled_back = CLAIM.statement("not-rolled-back")
other_connection = CLAIM.statement("other-connection")
write_lock = CLAIM.statement("write-lock")
django_testcase_rolls_back = CLAIM.statement("testcase-rolls-back")
async_to_sync_rolls_back = CLAIM.statement("async-to-sync-rolls-back")
transactional_flushes = CLAIM.statement("transactional-flushes")


# A one-thread executor's thread: asgiref's process-wide one (SyncToAsync.single_thread_executor,
# for thread-sensitive calls with no request context and no async_to_sync around them), or the
# one AsyncToSync makes to run a coroutine when no loop runs in the calling thread.
EXECUTOR_THREAD = re.compile(r"ThreadPoolExecutor-\d+_0")

# The generated run's settings: the project's, with SQLite's busy timeout cut from 5 s to 0.1 s
# so that a write that waits for the lock fails at once.
SETTINGS = """\
from project.settings import *  # noqa: F403

DATABASES["default"]["OPTIONS"] = {"timeout": 0.1}  # noqa: F405
"""

# The generated tests, in the order pytest-django runs them (TestCase-like tests first, then the
# transactional ones). Each records what it saw; none asserts, so the run passes as a whole.
TESTS = '''
import json, os, threading

import pytest
from asgiref.sync import SyncToAsync, async_to_sync, sync_to_async
from django.db import connection
from django.test import TestCase, TransactionTestCase

from project.library.models import Author


def record(test, **figures):
    with open(os.environ["SPEC_RECORDS"], "a") as out:
        out.write(json.dumps({"test": test, **figures}) + "\\n")


def shared_thread():
    """The name of asgiref's process-wide thread (SyncToAsync.single_thread_executor's)."""
    return SyncToAsync.single_thread_executor.submit(lambda: threading.current_thread().name).result()


def here():
    """The calling thread, and the state of its connection."""
    return {
        "thread": threading.current_thread().name,
        "in_atomic_block": connection.in_atomic_block,
        "autocommit": connection.get_autocommit(),
    }


def names():
    return sorted(Author.objects.values_list("name", flat=True))


@pytest.fixture
def test_connection(db):
    """Where pytest-django opened the test's atomic block: this sync fixture's thread."""
    record("fixture", **here())


@pytest.fixture
def row_from_fixture(db):
    Author.objects.create(name="fixture")


@pytest.mark.django_db
async def test_django_db_async(test_connection):
    await Author.objects.acreate(name="django_db")
    record("django_db", test_thread=threading.current_thread().name,
           orm=await sync_to_async(here)(), shared=shared_thread())


def test_after_django_db(db):
    record("after django_db", names=names())


@pytest.mark.django_db
async def test_write_lock(row_from_fixture):
    try:
        await Author.objects.acreate(name="after a write")
    except Exception as error:
        record("write lock", error=f"{type(error).__module__}.{type(error).__qualname__}",
               message=str(error))
    else:
        record("write lock", error=None)


class TestDjangoTestCase(TestCase):
    async def test_async_method(self):
        await Author.objects.acreate(name="TestCase")
        record("TestCase", test_thread=threading.current_thread().name,
               orm=await sync_to_async(here)())


def test_after_testcase(db):
    record("after TestCase", names=names())


def test_async_to_sync(db):
    async def body():
        await Author.objects.acreate(name="async_to_sync")
        return await sync_to_async(here)()

    record("async_to_sync", test_thread=threading.current_thread().name,
           orm=async_to_sync(body)())


def test_after_async_to_sync(db):
    record("after async_to_sync", names=names())


@pytest.mark.django_db(transaction=True)
async def test_transactional_async():
    await Author.objects.acreate(name="transaction=True")
    record("transaction=True", orm=await sync_to_async(here)(),
           names=await sync_to_async(names)())


@pytest.mark.django_db(transaction=True)
def test_after_transactional():
    record("after transaction=True", names=names())


class TestDjangoTransactionTestCase(TransactionTestCase):
    async def test_async_method(self):
        await Author.objects.acreate(name="TransactionTestCase")
        record("TransactionTestCase", orm=await sync_to_async(here)(),
               names=await sync_to_async(names)())


@pytest.mark.django_db(transaction=True)
def test_after_transactiontestcase():
    record("after TransactionTestCase", names=names())
'''
GENERATED = 11  # tests in TESTS


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Run TESTS once with pytest in a subprocess; what each test recorded, by name."""
    folder = tmp_path_factory.mktemp("async-tests")
    (folder / "test_generated.py").write_text(TESTS)
    (folder / "generated_settings.py").write_text(SETTINGS)
    records = folder / "records.jsonl"
    argv = [
        sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:random_order",
        "-p", "no:xdist", "-c", os.devnull, "--rootdir", str(folder),
        "--ds=generated_settings", "-o", "asyncio_mode=auto",
        "-o", "asyncio_default_fixture_loop_scope=function", "-q", "test_generated.py",
    ]  # fmt: skip
    env = server_env(SPEC_RECORDS=records, PYTHONPATH=os.pathsep.join([str(ROOT), str(folder)]))
    env.pop("DJANGO_SETTINGS_MODULE")
    done = subprocess.run(
        argv, cwd=folder, env=env, capture_output=True, text=True, timeout=50, check=False
    )
    seen = {}
    for line in (records.read_text().splitlines() if records.exists() else []):
        entry = json.loads(line)
        test = entry.pop("test")
        assert test not in seen, f"{test} recorded twice"
        seen[test] = entry
    return Run(seen, done.stdout + done.stderr, f"{GENERATED} passed" in done.stdout)


class Run(dict):
    """What each generated test recorded; a test that did not get to record it (it raised) makes
    the spec test that reads it fail with the generated run's output."""

    def __init__(self, seen, output, all_passed):
        super().__init__(seen)
        self.output, self.all_passed = output, all_passed

    def __missing__(self, test):
        raise AssertionError(f"the generated test {test!r} recorded nothing:\n{self.output}")


@not_rolled_back
def test_the_next_test_sees_the_async_tests_row(run, evidence):
    assert run.all_passed, run.output
    assert run["django_db"]["orm"]["thread"] != "MainThread"
    assert run["after django_db"]["names"] == ["django_db"]
    evidence("pytest-django django_db", next_test_sees=run["after django_db"]["names"])


@other_connection
def test_the_async_orm_runs_on_another_threads_connection(run, evidence):
    # pytest-django's atomic block: on the main thread's connection, where the test coroutine
    # runs too (pytest-asyncio's loop, on the main thread).
    assert run["fixture"] == {"thread": "MainThread", "in_atomic_block": True,
                                 "autocommit": False}  # fmt: skip
    assert run["django_db"]["test_thread"] == "MainThread"
    orm = run["django_db"]["orm"]
    # asgiref's one process-wide thread, as its executor names it.
    assert orm["thread"] == run["django_db"]["shared"], run["django_db"]
    assert (orm["in_atomic_block"], orm["autocommit"]) == (False, True)
    evidence("pytest-django django_db", test=run["django_db"]["test_thread"], orm=orm["thread"])


@write_lock
def test_an_async_write_after_the_tests_own_write_fails(run, evidence):
    assert run["write lock"] == {
        "error": "django.db.utils.OperationalError",
        "message": SQLITE_LOCKED,
    }
    evidence("pytest-django django_db, SQLite", error=run["write lock"]["message"])


@django_testcase_rolls_back
def test_django_testcase_async_method_is_rolled_back(run, evidence):
    # The method runs under async_to_sync on a thread of its own; its ORM calls come back to the
    # main thread, inside the test's atomic block.
    assert EXECUTOR_THREAD.fullmatch(run["TestCase"]["test_thread"]), run["TestCase"]
    assert run["TestCase"]["orm"] == {"thread": "MainThread", "in_atomic_block": True,
                                      "autocommit": False}  # fmt: skip
    assert "TestCase" not in run["after TestCase"]["names"]
    evidence("django.test.TestCase", test=run["TestCase"]["test_thread"], orm="MainThread")


@async_to_sync_rolls_back
def test_async_to_sync_in_a_sync_test_is_rolled_back(run, evidence):
    assert run["async_to_sync"]["test_thread"] == "MainThread"
    assert run["async_to_sync"]["orm"] == {"thread": "MainThread", "in_atomic_block": True,
                                           "autocommit": False}  # fmt: skip
    assert "async_to_sync" not in run["after async_to_sync"]["names"]
    evidence("pytest-django, async_to_sync", orm="MainThread")


@transactional_flushes
def test_transactional_tests_are_flushed(run, evidence):
    for test in ("transaction=True", "TransactionTestCase"):
        orm = run[test]["orm"]
        assert (orm["in_atomic_block"], orm["autocommit"]) == (False, True), (test, orm)
        # Committed: the row is there, seen from the ORM's thread, during the test.
        assert test in run[test]["names"], run[test]
    assert EXECUTOR_THREAD.fullmatch(run["transaction=True"]["orm"]["thread"])
    assert run["TransactionTestCase"]["orm"]["thread"] == "MainThread"
    assert run["after transaction=True"]["names"] == []
    assert run["after TransactionTestCase"]["names"] == []
    evidence("transactional", after=run["after TransactionTestCase"]["names"])
