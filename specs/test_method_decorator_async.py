"""LoginRequiredMixin and method_decorator(login_required) on a class-based view with async
handlers.

Claimed (django-guardian issue #1022, September 2026, of ``LoginRequiredMixin`` on a View whose
``get`` is ``async def``; the issue adds "Django's own
django.contrib.auth.mixins.LoginRequiredMixin fails identically"): "Authenticated users are served
normally, so only the unauthenticated path fails." The pull request answering it
(django-guardian#1024) says otherwise: "The authenticated path failed too, this time on the lazy
`request.user` lookup inside the event loop."

The views (project/views/method_decorator_async.py), each with one handler, ``async def get``::

    class MixinView(LoginRequiredMixin, View): ...

    @method_decorator(login_required, name="dispatch")
    class DispatchDecorated(View): ...

    class GetDecorated(View):
        @method_decorator(login_required)
        async def get(self, request, *args, **kwargs): ...

    @method_decorator(login_required, name="dispatch")
    class AsyncDispatch(View):                      # the corrected form
        async def dispatch(self, request, *args, **kwargs):
            return await super().dispatch(request, *args, **kwargs)

What is true (Django 4.2 to 6.1, asgiref as pinned):

- ``LoginRequiredMixin`` (and ``method_decorator(login_required, name="dispatch")``, the same
  thing) on an async View: an anonymous request fails, under WSGI and ASGI alike, with
  ``TypeError: object HttpResponseRedirect can't be used in 'await' expression`` (a 500), in every
  version: the sync ``dispatch`` returns the redirect itself, and the view, marked a coroutine
  function, has what it returns awaited.
- A logged-in user is served only under WSGI. Under ASGI the request fails with
  ``SynchronousOnlyOperation`` ("You cannot call this from an async context - use a thread or
  sync_to_async."): ``dispatch`` runs on the event loop's thread and ``request.user``, lazy,
  loads the session from the database there. Under WSGI asgiref's ``AsyncToSync`` calls the view
  function on the request's own thread (no loop in it) and only then runs the coroutine it
  returned, so the lookup works: the guardian issue's sentence holds there.
- ``method_decorator(login_required)`` on ``async def get`` keeps the view async from Django 5.2
  (ticket #35083: ``_multi_decorate`` marks its wrapper with ``markcoroutinefunction``): anonymous
  requests are redirected, a logged-in user's ``get`` runs on the event loop. Before 5.2 the
  decorated ``get`` is a plain function, ``View.view_is_async`` is False and Django serves the
  view as a sync one, which hands back a coroutine: ``ValueError`` ("... didn't return an
  HttpResponse object. It returned an unawaited coroutine instead. ...") for a logged-in user in
  4.2 and 5.0 (the anonymous one is still redirected by login_required's sync wrapper), and for
  both in 5.1, whose login_required gives the coroutine method an async wrapper.
- An ``async def dispatch`` awaiting ``View.dispatch``, under
  ``method_decorator(login_required, name="dispatch")``, works from Django 5.1 (ticket #35030:
  login_required's async wrapper awaits ``request.auser()``); before 5.1 it fails as the mixin.

Why: ``django.contrib.auth.mixins.LoginRequiredMixin.dispatch`` is a plain ``def`` reading
``request.user.is_authenticated`` and returning ``handle_no_permission()``'s redirect;
``django.views.generic.base.View.as_view`` marks ``view`` with ``markcoroutinefunction`` when
``view_is_async`` (only the HTTP handlers count, not ``dispatch``), and ``view`` returns
``self.dispatch(...)`` as it is; ``django.core.handlers.base.BaseHandler._get_response_async``
awaits it on the loop, ``BaseHandler._get_response`` wraps it in ``async_to_sync``
(``asgiref.sync.AsyncToSync.__call__`` calls it in the caller's thread, then awaits the result in
a new loop); ``django.utils.asyncio.async_unsafe`` refuses the session's query on a thread with a
running loop.
"""

import threading

import pytest
from asgiref.sync import iscoroutinefunction
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
    by_version,
    each_interface,
    each_proves,
    forget_exception,
    handler,
    never_awaited,
    not_awaitable,
    nothing_logged,
    serve_once,
    server_error_record,
    unawaited_coroutine,
    with_cookie,
)
from project.views.method_decorator_async import RAN, VIEWS

BASE = "/method-decorator-async/"

CLAIM = Claim(
    id="login-required-async-class-views",
    source="django-guardian issue #1022, \"LoginRequiredMixin raises TypeError on asynchronous "
    "class-based views\" (of guardian's mixin and, it says, Django's own)",
    url="https://github.com/django-guardian/django-guardian/issues/1022",
    claim="Authenticated users are served normally, so only the unauthenticated path fails.",
    question=(
        "On a class-based view with async handlers, does LoginRequiredMixin serve logged-in "
        "users normally, failing only for anonymous ones?"
    ),
    topic="auth",
    code=("project.views.method_decorator_async.MixinView",
          "project.views.method_decorator_async.DispatchDecorated"),
    instead=("project.views.method_decorator_async.AsyncDispatch",
             "project.views.method_decorator_async.GetDecorated"),
    statements=[
        Statement(
            "anonymous-fails",
            "LoginRequiredMixin on a View whose handlers are async: an anonymous request fails "
            "(a 500) with TypeError: object HttpResponseRedirect can't be used in 'await' "
            "expression, instead of the redirect to the login page.",
            "holds",
        ),
        Statement(
            "authenticated-served",
            "LoginRequiredMixin on a View whose handlers are async: a logged-in user is served "
            "normally (the async get runs, 200).",
            "holds",
            when=[When("refuted", interface="asgi",
                       why="dispatch reads the lazy request.user on the event loop's thread")],
            reality=(
                "Under ASGI the request fails (a 500) with SynchronousOnlyOperation: 'You cannot "
                "call this from an async context - use a thread or sync_to_async.': the mixin's "
                "dispatch runs on the event loop's thread, where request.user loads the session "
                "from the database. Only under WSGI (AsyncToSync calls the view function on the "
                "request's own thread) is the logged-in user served."
            ),
        ),
        Statement(
            "dispatch-decorator-same",
            "@method_decorator(login_required, name=\"dispatch\") on such a View fails the same "
            "way: the TypeError for an anonymous request, SynchronousOnlyOperation for a "
            "logged-in user under ASGI, a 200 for them under WSGI.",
            "holds",
            claimed=False,
        ),
        Statement(
            "decorated-get",
            "@method_decorator(login_required) on async def get keeps the view async "
            "(View.view_is_async and iscoroutinefunction(get) are True): an anonymous request is "
            "redirected (302) and a logged-in user's get runs on an event loop (under ASGI, the "
            "one serving the request).",
            "holds",
            when=[When("refuted", django="<5.2",
                       why="method_decorator's wrapper is marked a coroutine function from 5.2, "
                           "ticket #35083")],
            reality=(
                "Before Django 5.2 the decorated get is a plain function: view_is_async is False, "
                "Django serves the view as a sync view and it returns a coroutine: a 500 with "
                "ValueError: 'The view project.views.method_decorator_async.view didn't return an "
                "HttpResponse object. It returned an unawaited coroutine instead. You may need to "
                "add an 'await' into your view.' for a logged-in user (4.2, 5.0; an anonymous one "
                "is still redirected) and for anonymous and logged-in users alike in 5.1."
            ),
            claimed=False,
        ),
        Statement(
            "async-dispatch-works",
            "An async def dispatch that awaits View.dispatch, under "
            "@method_decorator(login_required, name=\"dispatch\"), redirects an anonymous request "
            "(302) and serves a logged-in user (200), the get on an event loop.",
            "holds",
            when=[When("refuted", django="<5.1",
                       why="login_required has no async wrapper before 5.1, ticket #35030")],
            reality=(
                "Before Django 5.1 it fails as the mixin does: the TypeError for an anonymous "
                "request, SynchronousOnlyOperation for a logged-in user under ASGI."
            ),
            claimed=False,
        ),
    ],
    mechanism=(
        "django.contrib.auth.mixins.LoginRequiredMixin.dispatch (a plain def: "
        "request.user.is_authenticated, returns AccessMixin.handle_no_permission()'s redirect); "
        "django.views.generic.base.View.as_view (markcoroutinefunction(view) when view_is_async; "
        "view returns self.dispatch(...) as it is); "
        "django.core.handlers.base.BaseHandler._get_response_async (awaits it on the loop) and "
        "_get_response (async_to_sync: asgiref.sync.AsyncToSync.__call__ calls it in the caller's "
        "thread); django.utils.asyncio.async_unsafe; django.utils.decorators._multi_decorate "
        "(markcoroutinefunction, 5.2, #35083); django.contrib.auth.decorators.user_passes_test "
        "(async wrapper awaiting request.auser(), 5.1, #35030)."
    ),
    docs="https://docs.djangoproject.com/en/5.2/topics/auth/default/#the-loginrequiredmixin-mixin",
)
anonymous_fails = CLAIM.statement("anonymous-fails")
authenticated_served = CLAIM.statement("authenticated-served")
dispatch_decorator_same = CLAIM.statement("dispatch-decorator-same")
decorated_get = CLAIM.statement("decorated-get")
async_dispatch_works = CLAIM.statement("async-dispatch-works")

# What each of the two failing forms' statement is proven by.
FAILING = each_proves("name", {
    "MixinView": anonymous_fails,
    "DispatchDecorated": dispatch_decorator_same,
})  # fmt: skip
# The user and session must be committed: the handler's threads use connections of their own,
# and the request's end closes the connection of the thread that served it.
ON_THE_DATABASE = pytest.mark.django_db(transaction=True)
FAILING_LOGGED_IN = each_proves("name", {
    "MixinView": authenticated_served,
    "DispatchDecorated": dispatch_decorator_same,
})  # fmt: skip


def unawaited_view():
    # The view function View.as_view() builds is named ``view``.
    return unawaited_coroutine("project.views.method_decorator_async.view")


@pytest.fixture
def logged_in():
    """The cookie of a session in which ada is logged in."""
    ada = User.objects.create_user("ada")
    session = SessionStore()
    session[SESSION_KEY] = str(ada.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = ada.get_session_auth_hash()
    session.save()
    return f"sessionid={session.session_key}"


def serve(interface, name, cookie=None):
    app = with_cookie(handler(interface, "auth"), interface, cookie)
    return serve_once(interface, app, f"{BASE}{name}/")


def the_500(hit, caplog, name):
    """The exception behind a request's 500, with its traceback's (file, function) entries."""
    assert hit.status == 500
    record = server_error_record(caplog, f"{BASE}{name}/")
    error = record.exc_info[1]
    frames, tb = [], error.__traceback__
    while tb is not None:
        frames.append((tb.tb_frame.f_code.co_filename.replace("\\", "/"), tb.tb_frame.f_code.co_name))
        tb = tb.tb_next
    return error, frames


def assert_redirected(hit, name):
    assert hit.status == 302
    assert hit.headers["location"] == f"/accounts/login/?next={BASE}{name}/"


def assert_ran_on_a_loop(body, name, interface):
    """The get answered, on an event loop: under ASGI the one serving the request (serve_once
    runs it on this thread), under WSGI a new one on another thread (async_to_sync)."""
    assert body["view"] == name
    place = body["where"]
    assert place["loop"] is not None
    on_this_thread = place["thread"] == threading.get_ident()
    assert on_this_thread is (interface == "asgi")


def assert_typeerror_for_anonymous(hit, caplog, name, runs, interface):
    error, frames = the_500(hit, caplog, name)
    assert type(error) is TypeError
    assert str(error) == not_awaitable("HttpResponseRedirect")
    # Raised where the handler awaits what the view returned: Django's own frame under ASGI,
    # asgiref's AsyncToSync.main_wrap under WSGI; the get never ran.
    assert frames[-1][1] == {"asgi": "_get_response_async", "wsgi": "main_wrap"}[interface]
    assert RAN[name] == runs


# --- the mixin and the dispatch decorator: anonymous ---------------------------------------------


@FAILING
@each_interface
def test_anonymous_request_fails_with_typeerror(name, interface, caplog):
    caplog.set_level("ERROR", logger="django.request")
    view = VIEWS[name]
    assert view.view_is_async is True and iscoroutinefunction(view.as_view())
    runs = RAN[name]
    assert_typeerror_for_anonymous(serve(interface, name), caplog, name, runs, interface)


# --- the mixin and the dispatch decorator: logged in ---------------------------------------------


@FAILING_LOGGED_IN
@each_interface
@ON_THE_DATABASE
def test_logged_in_user(name, interface, logged_in, caplog):
    caplog.set_level("ERROR", logger="django.request")
    runs = RAN[name]
    hit = serve(interface, name, logged_in)
    if CLAIM.expected("authenticated-served", interface=interface) == "holds":
        assert_ran_on_a_loop(answered(hit, caplog), name, interface)
        assert RAN[name] == runs + 1
        assert nothing_logged(caplog)
    else:
        error, frames = the_500(hit, caplog, name)
        assert type(error) is SynchronousOnlyOperation
        assert str(error) == ASYNC_UNSAFE
        assert frames[-1] == (frames[-1][0], "inner") and frames[-1][0].endswith("django/utils/asyncio.py")
        # On the way: the sync dispatch (the mixin's dispatch, or method_decorator's _wrapper
        # around login_required) reading the lazy request.user, which loads the session.
        names = [function for _, function in frames]
        assert {"MixinView": "dispatch", "DispatchDecorated": "_wrapper"}[name] in names
        assert "get_user" in names and "load" in names
        assert RAN[name] == runs


# --- method_decorator(login_required) on async def get --------------------------------------------


@decorated_get
def test_decorated_get_is_a_coroutine_function():
    view = VIEWS["GetDecorated"]
    stays_async = CLAIM.expected("decorated-get") == "holds"
    assert iscoroutinefunction(view.get) is stays_async
    assert view.view_is_async is stays_async
    assert iscoroutinefunction(view.as_view()) is stays_async


@decorated_get
@each_interface
@ON_THE_DATABASE
def test_decorated_get(interface, logged_in, caplog, runtime_warnings):
    caplog.set_level("ERROR", logger="django.request")
    name = "GetDecorated"
    runs = RAN[name]
    anonymous = serve(interface, name)
    if CLAIM.expected("decorated-get", interface=interface) == "holds":
        assert_redirected(anonymous, name)
        assert_ran_on_a_loop(answered(serve(interface, name, logged_in), caplog), name, interface)
        assert RAN[name] == runs + 1
        assert nothing_logged(caplog)
        assert runtime_warnings(expected=False) == []
        return
    # Before 5.2: a sync view that returns a coroutine, never awaited.
    if by_version({"4.2": True, "5.1": False}):  # login_required's sync wrapper redirects first
        assert_redirected(anonymous, name)
        caplog.clear()
        hits = [serve(interface, name, logged_in)]
    else:  # 5.1: login_required's async wrapper is the coroutine, anonymous or not
        hits = [anonymous]
    for hit in hits:
        error, _ = the_500(hit, caplog, name)
        assert (type(error), str(error)) == (ValueError, unawaited_view())
        del error  # its traceback holds the coroutine
    assert RAN[name] == runs
    forget_exception(caplog)
    assert runtime_warnings() == [never_awaited("GetDecorated.get")] * len(hits)


# --- the corrected form: async def dispatch -------------------------------------------------------


@async_dispatch_works
@each_interface
@ON_THE_DATABASE
def test_async_dispatch_under_the_dispatch_decorator(interface, logged_in, caplog):
    caplog.set_level("ERROR", logger="django.request")
    name = "AsyncDispatch"
    runs = RAN[name]
    anonymous = serve(interface, name)
    if CLAIM.expected("async-dispatch-works", interface=interface) == "holds":
        assert_redirected(anonymous, name)
        assert_ran_on_a_loop(answered(serve(interface, name, logged_in), caplog), name, interface)
        assert RAN[name] == runs + 1
        assert nothing_logged(caplog)
    else:
        assert_typeerror_for_anonymous(anonymous, caplog, name, runs, interface)
        caplog.clear()
        hit = serve(interface, name, logged_in)
        if interface == "wsgi":  # the sync login_required wrapper runs on the request's thread
            assert_ran_on_a_loop(answered(hit, caplog), name, interface)
        else:
            error, _ = the_500(hit, caplog, name)
            assert (type(error), str(error)) == (SynchronousOnlyOperation, ASYNC_UNSAFE)
