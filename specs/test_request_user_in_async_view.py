"""request.user in an async view: when does it raise SynchronousOnlyOperation?

Claimed (PostHog's Django middleware fix, October 2025): "Django's `request.user` is a
`SimpleLazyObject` that defers database access until the attribute is touched. In async context,
accessing it triggers blocking DB operations, raising `SynchronousOnlyOperation`." The same error
is reported by DRF's async branch (encode/django-rest-framework#8655: "Log out of admin (or delete
`sessionid` cookie)", then "Access the view, no exception") and by allauth and sentry-python.

The view the claim is about (project/views/request_user.py), under Django's SessionMiddleware and
AuthenticationMiddleware::

    async def touched(request):
        return JsonResponse({"authenticated": request.user.is_authenticated})

What is true, on every version from 4.2 to 6.1, under ASGI and under WSGI (an async view runs on
an event loop either way):

- request.user is a SimpleLazyObject left unevaluated by AuthenticationMiddleware, and a view that
  does not touch it answers 200 even for a logged-in session;
- touched, it raises SynchronousOnlyOperation only when the request carries a session cookie that
  could be a key (at least 8 characters: SessionBase._validate_session_key), even one naming no
  session: the first query is the session's own lookup (SessionStore._get_session_from_db), before
  any user is looked up;
- without such a cookie (none, or a shorter one) the session has no key, nothing is queried, and
  request.user is AnonymousUser: the view answers 200. The claim's "accessing it triggers blocking
  DB operations" holds only for requests that carry a session key;
- ``await request.auser()`` (Django >= 5.0) gives the user in an async view, logged in or not;
  before 5.0 the request has no ``auser``: AttributeError.

Why: django.contrib.auth.middleware.AuthenticationMiddleware.process_request sets
``request.user = SimpleLazyObject(lambda: get_user(request))``; evaluating it calls
django.contrib.auth.get_user -> _get_user_session_key -> ``request.session[SESSION_KEY]`` ->
SessionBase._get_session, which returns {} when ``session_key`` is None and otherwise calls
SessionStore.load -> _get_session_from_db -> ``Session.objects.get``, whose cursor() is guarded by
django.utils.asyncio.async_unsafe. ``request.auser`` (5.0) is django.contrib.auth.middleware.auser
-> django.contrib.auth.aget_user: ``sync_to_async(get_user)`` in 5.0 and 5.1, native from 5.2
(``await request.session.aget(...)``, ``await backend.aget_user(...)``).
"""

import traceback

import pytest
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore
from django.core.exceptions import SynchronousOnlyOperation

from harness.spec import (
    ASYNC_UNSAFE,
    Claim,
    Statement,
    When,
    answered,
    each_interface,
    handler,
    no_attribute,
    nothing_logged,
    serve_once,
    server_error_record,
    with_cookie,
)

CLAIM = Claim(
    id="request-user-in-async-view",
    source="PostHog/posthog-python pull request #358, \"fix(django): handle request.user in async "
    "middleware context\"",
    url="https://github.com/PostHog/posthog-python/pull/358",
    claim=(
        "Django's `request.user` is a `SimpleLazyObject` that defers database access until the "
        "attribute is touched. In async context, accessing it triggers blocking DB operations, "
        "raising `SynchronousOnlyOperation`."
    ),
    statements=[
        Statement(
            "lazy",
            "request.user is a SimpleLazyObject that AuthenticationMiddleware leaves unevaluated: "
            "an async view that does not touch it answers 200, even for a logged-in session.",
            "holds",
        ),
        Statement(
            "raises-with-session-cookie",
            "In an async view, request.user.is_authenticated for a request with a logged-in "
            "session cookie raises SynchronousOnlyOperation('You cannot call this from an async "
            "context - use a thread or sync_to_async.'): a 500.",
            "holds",
        ),
        Statement(
            "raises-without-session-cookie",
            "In an async view, request.user.is_authenticated raises SynchronousOnlyOperation also "
            "for a request without a session cookie.",
            "refuted",
            reality=(
                "Without a session cookie (or with one shorter than 8 characters, which "
                "SessionBase._validate_session_key refuses) the session has no key, "
                "SessionBase._get_session gives {} without a query, request.user is AnonymousUser "
                "and the view answers 200 ({\"authenticated\": false})."
            ),
        ),
        Statement(
            "any-session-cookie",
            "Any session cookie that could be a key (8 characters or more) is enough, even one "
            "naming no session: the query that raises is "
            "the session's own lookup (SessionStore._get_session_from_db), before any user is "
            "looked up.",
            "holds",
            claimed=False,
        ),
        Statement(
            "auser",
            "await request.auser() gives the request's user in an async view (the logged-in User, "
            "or AnonymousUser without a session cookie), with no SynchronousOnlyOperation.",
            "holds",
            when=[When("refuted", django="<5.0", why="request.auser arrived in Django 5.0")],
            reality=(
                "Before Django 5.0 the request has no auser: AttributeError: 'ASGIRequest' object "
                "has no attribute 'auser' ('WSGIRequest' under WSGI), a 500."
            ),
            claimed=False,
        ),
    ],
    mechanism=(
        "django.contrib.auth.middleware.AuthenticationMiddleware.process_request "
        "(SimpleLazyObject(lambda: get_user(request)), request.auser = partial(auser, request) "
        "from 5.0); django.contrib.auth.get_user -> _get_user_session_key -> "
        "django.contrib.sessions.backends.base.SessionBase._get_session ({} without a key) -> "
        "django.contrib.sessions.backends.db.SessionStore.load -> _get_session_from_db, guarded by "
        "django.utils.asyncio.async_unsafe; django.contrib.auth.aget_user (sync_to_async(get_user) "
        "in 5.0 and 5.1, session.aget and backend.aget_user from 5.2)."
    ),
    docs="https://docs.djangoproject.com/en/5.2/ref/request-response/#django.http.HttpRequest.auser",
    question="Does touching request.user in an async view raise SynchronousOnlyOperation?",
    topic="auth",
    code=("project.views.request_user.touched", "project.views.request_user.untouched"),
    instead=("project.views.request_user.auser",),
)
# Only the tests that store a user or a session touch the database (each then flushes it).
ON_THE_DATABASE = pytest.mark.django_db(transaction=True)
lazy = CLAIM.statement("lazy")
raises_with_session_cookie = CLAIM.statement("raises-with-session-cookie")
raises_without_session_cookie = CLAIM.statement("raises-without-session-cookie")
any_session_cookie = CLAIM.statement("any-session-cookie")
auser = CLAIM.statement("auser")

# A well-formed key (32 of VALID_KEY_CHARS) that no session has.
UNKNOWN_KEY = "x" * 32


def no_auser(interface):
    """Python's AttributeError for the missing request.auser (Django < 5.0)."""
    request_class = {"asgi": "ASGIRequest", "wsgi": "WSGIRequest"}[interface]
    return no_attribute(request_class, "auser")


def serve(interface, path, cookie=None):
    """One request through Django's handler with SessionMiddleware + AuthenticationMiddleware."""
    return serve_once(interface, with_cookie(handler(interface, "auth"), interface, cookie), path)


@pytest.fixture
def ada():
    return User.objects.create_user("ada")


@pytest.fixture
def logged_in(ada):
    """The cookie of a session in which ada is logged in (what django.contrib.auth.login stores)."""
    session = SessionStore()
    session[SESSION_KEY] = str(ada.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = ada.get_session_auth_hash()
    session.save()
    return f"sessionid={session.session_key}"


def functions_of(record):
    return [(frame.filename.replace("\\", "/"), frame.name) for frame in traceback.extract_tb(record.exc_info[2])]


@lazy
@each_interface
@ON_THE_DATABASE
def test_untouched_user_is_a_lazy_object_and_nothing_fails(interface, logged_in, caplog):
    caplog.set_level("ERROR", logger="django.request")
    hit = serve(interface, "/request-user/untouched/", logged_in)
    assert answered(hit, caplog) == {"class": "SimpleLazyObject", "evaluated": False}
    assert nothing_logged(caplog)


@raises_with_session_cookie
@each_interface
@ON_THE_DATABASE
def test_touching_user_with_a_session_cookie_raises(interface, logged_in, caplog):
    caplog.set_level("ERROR", logger="django.request")
    hit = serve(interface, "/request-user/touched/", logged_in)
    assert hit.status == 500
    record = server_error_record(caplog, "/request-user/touched/")
    assert record.exc_info[0] is SynchronousOnlyOperation
    assert str(record.exc_info[1]) == ASYNC_UNSAFE


@any_session_cookie
@each_interface
@pytest.mark.parametrize("cookie", ["logged-in", "unknown-key", "8-characters"])
@ON_THE_DATABASE
def test_the_query_that_raises_is_the_session_lookup(interface, cookie, logged_in, caplog):
    caplog.set_level("ERROR", logger="django.request")
    # The shortest key SessionBase._validate_session_key accepts is looked up too.
    sent = {"logged-in": logged_in, "unknown-key": f"sessionid={UNKNOWN_KEY}",
            "8-characters": "sessionid=abcdefgh"}[cookie]  # fmt: skip
    hit = serve(interface, "/request-user/touched/", sent)
    assert hit.status == 500
    record = server_error_record(caplog, "/request-user/touched/")
    assert (record.exc_info[0], str(record.exc_info[1])) == (SynchronousOnlyOperation, ASYNC_UNSAFE)
    functions = functions_of(record)
    # The chain, from the view down: the lazy object, auth's get_user, the session's lookup.
    names = [name for _, name in functions]
    assert names.index("touched") < names.index("get_user") < names.index("_get_session_from_db")
    assert any(path.endswith("django/contrib/sessions/backends/db.py") and name == "_get_session_from_db"
               for path, name in functions)
    # Raised by async_unsafe's wrapper, before any user lookup (no backend's get_user ran).
    assert functions[-1][0].endswith("django/utils/asyncio.py")
    assert not any(path.endswith("django/contrib/auth/backends.py") for path, _ in functions)


@raises_without_session_cookie
@each_interface
@pytest.mark.parametrize("cookie", [None, "sessionid=abcdefg"], ids=["none", "too-short-for-a-key"])
def test_touching_user_without_a_session_cookie_answers(interface, cookie, caplog):
    caplog.set_level("ERROR", logger="django.request")
    hit = serve(interface, "/request-user/touched/", cookie)
    # Any query from the view's thread would have raised (the guard above): none was made.
    assert answered(hit, caplog) == {"authenticated": False}
    assert nothing_logged(caplog)


@auser
@each_interface
@pytest.mark.parametrize("cookie", ["logged-in", "none"])
@ON_THE_DATABASE
def test_auser_in_an_async_view(interface, cookie, logged_in, caplog):
    caplog.set_level("ERROR", logger="django.request")
    hit = serve(interface, "/request-user/auser/", logged_in if cookie == "logged-in" else None)
    if CLAIM.expected("auser", interface=interface) == "holds":
        expected = (
            {"class": "User", "authenticated": True, "username": "ada"}
            if cookie == "logged-in"
            else {"class": "AnonymousUser", "authenticated": False, "username": ""}
        )
        assert answered(hit, caplog) == expected
        assert nothing_logged(caplog)
    else:
        assert hit.status == 500
        record = server_error_record(caplog, "/request-user/auser/")
        assert (record.exc_info[0], str(record.exc_info[1])) == (AttributeError, no_auser(interface))
