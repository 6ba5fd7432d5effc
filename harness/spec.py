"""Everything a spec module uses from the harness, in one import.

    from harness.spec import Claim, Statement, When, serving, fire, get, ...

- the record: ``Claim``, ``Statement``, ``When``, ``SEED`` (harness/claims.py);
- evidence for one statement per parameter value: ``each_proves``;
- real servers: ``serving``, ``ServerRequest``, ``ServerConfig``, ``SERVERS``, ``ASGI_SERVERS``,
  ``WSGI_SERVERS`` (harness/plugin.py, harness/servers.py), with the ``server`` and ``meeting``
  fixtures; ``serving(..., databases=DATABASES)`` serves on SQLite and on PostgreSQL
  (harness/postgres.py; ``postgres_cluster``, ``ServerProcess.dbname`` to look at its database,
  ``AdvisoryLock`` for queries held where PostgreSQL shows them);
- evidence from requests: ``get``, ``get_with_output``, ``fire``, ``fire_sleeping``, ``meeting_params``, ``Volley``,
  ``Hit``, ``max_in_flight``, ``read_http_response`` (a raw socket's response) (harness/probe.py); waits that end on progress: ``progress``;
- Django's handlers in process: ``handler``, ``asgi_get``, ``wsgi_get``, ``serve_once``,
  ``http_scope``, ``server_error_record``, ``assert_view_outcome``, ``middleware_stack``,
  ``each_interface`` (one test per handler), ``with_cookie``, ``answered``, ``nothing_logged``, ``forget_exception`` (harness/inprocess.py),
  and the ``runtime_warnings`` fixture (harness/plugin.py);
- versions: ``by_version``, ``requires_django`` (harness/versions.py);
- the messages specs assert: everything in harness/messages.py, where a new one goes.
"""

from harness import progress
from harness.claims import DATABASES, SEED, Claim, Statement, When
from harness.inprocess import (
    answered,
    asgi_get,
    asgiref_shared_thread,
    assert_view_outcome,
    each_interface,
    forget_exception,
    handler,
    http_scope,
    middleware_stack,
    nothing_logged,
    serve_once,
    server_error_record,
    with_cookie,
    wsgi_get,
)
from harness import messages
from harness.messages import *  # noqa: F403 (every message is the spec authors'; see __all__)
from harness.plugin import ServerRequest, each_proves, serving
from harness.probe import (
    Hit,
    Volley,
    fire,
    fire_sleeping,
    get,
    get_with_output,
    max_in_flight,
    meeting_params,
    read_http_response,
)
from harness.postgres import AdvisoryLock, connections_once, pool_waiting
from harness.protocol import meet_line
from harness.servers import ASGI_SERVERS, SERVERS, WSGI_SERVERS, ServerConfig, postgres_cluster
from harness.versions import by_version, requires_django

__all__ = [
    "ASGI_SERVERS", "AdvisoryLock", "Claim", "DATABASES", "Hit", "SEED", "SERVERS", "ServerConfig", "ServerRequest",
    "Statement", "Volley", "WSGI_SERVERS", "When", "asgi_get", "assert_view_outcome",
    "by_version", "each_proves", "fire", "fire_sleeping", "get", "get_with_output", "handler",
    "connections_once", "http_scope",
    "max_in_flight", "meet_line", "meeting_params", "read_http_response", "middleware_stack", "pool_waiting",
    "postgres_cluster", "progress",
    "requires_django", "serve_once", "server_error_record", "serving", "with_cookie", "wsgi_get",
    "forget_exception", "answered", "nothing_logged", "asgiref_shared_thread", "each_interface",
    *(name for name in vars(messages) if not name.startswith("_")),
]  # fmt: skip
