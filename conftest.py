"""Wires the harness into pytest (see harness/plugin.py).

The environment is pinned before Django is imported, so nothing the calling shell exports
(DJANGO_ALLOW_ASYNC_UNSAFE, SPEC_MIDDLEWARE, ...) can change how the project is set up.
"""

import pytest

from harness.env import pin_process_env

pin_process_env()

pytest_plugins = ["harness.plugin"]


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, request):
    """pytest-django's hook for changing the databases before it creates the test databases: with
    ``--db postgresql`` the in-process tests run on PostgreSQL too (harness/plugin.py)."""
    from harness.plugin import in_process_database

    in_process_database(request.config)


@pytest.fixture(scope="session")
def django_db_keepdb(request):
    """Keep the test database at the end where it is PostgreSQL's: the session's cluster goes
    with all its databases, and dropping it would fail on the connections that threads of the
    run (asgiref's shared thread, say) still hold."""
    from harness.plugin import process_database

    return bool(request.config.getvalue("reuse_db")) or process_database(request.config) == "postgresql"
