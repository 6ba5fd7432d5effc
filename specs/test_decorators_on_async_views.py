"""Django's decorators on async views: which versions accept them, and what goes wrong before.

Claimed (typeddjango/django-stubs#2549, March 2025): "Since Django 5.1 the
django.contrib.auth.decorators `login_required()`, `permission_required()`, and
`user_passes_test()` support wrapping async functions." ("Django 5.1" links the 5.1 release notes
there.) And, for the view decorators, in the pull request that made them async-aware
(django/django#13483, August 2022): "Speaking as a newcomer to Django as of 4.1, I've bumped into
a lack of async support for `@csrf_exempt` already while implementing an async endpoint."

The views (project/views/async_decorators.py), each an async view under one decorator::

    @login_required
    async def login_required_view(request): ...

    @csrf_exempt
    async def csrf_exempt_view(request): ...

What is true:

- login_required, permission_required and user_passes_test return a coroutine function for an
  async view from Django 5.1 on, and a logged-in user who passes gets the view's response. Before
  5.1 (4.2 and 5.0) the wrapper is a plain function: Django runs it as a sync view, it hands back
  the view's coroutine unawaited, and the request fails with ValueError ("... didn't return an
  HttpResponse object. It returned an unawaited coroutine instead. ..."). An anonymous request
  still gets the redirect to the login page on every version: the test fails before the view is
  called.
- Django's view decorators (csrf_exempt, csrf_protect, requires_csrf_token, ensure_csrf_cookie,
  require_http_methods and require_GET/POST/safe, condition/etag/last_modified, cache_page,
  cache_control, never_cache, vary_on_headers, vary_on_cookie, gzip_page, xframe_options_*,
  sensitive_variables, sensitive_post_parameters, no_append_slash) return a coroutine function for
  an async view from Django 5.0 on, a release before the auth decorators. Before 5.0 they return
  plain functions: csrf_exempt's and require_http_methods' (for an allowed method) requests fail
  with that ValueError, cache_page's with AttributeError: 'coroutine' object has no attribute
  'streaming' (CacheMiddleware.process_response reads the coroutine as a response); a method
  require_http_methods refuses still gets its 405.

Why: before 5.0/5.1 each decorator's wrapper is a plain ``def`` that returns ``view_func(...)``
(user_passes_test's ``_wrapper_view``, csrf_exempt's ``wrapper_view``, require_http_methods'
``inner``); django.core.handlers.base.BaseHandler._get_response(_async) takes a
callback that is not a coroutine function for a sync view (sync_to_async under ASGI) and
BaseHandler.check_response raises on the coroutine it returns. Django 5.0 (ticket #31949) gave
django.utils.decorators.make_middleware_decorator and the decorators of django.views.decorators
an ``async def`` wrapper when ``iscoroutinefunction(view_func)``; Django 5.1 (ticket #35030) did
the same in django.contrib.auth.decorators.user_passes_test / permission_required, whose async
wrapper awaits ``request.auser()``.
"""


import pytest
from asgiref.sync import iscoroutinefunction
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth import decorators as auth_decorators
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore
from django.views.decorators import cache, clickjacking, common, csrf, debug, gzip, http, vary

from harness.spec import (
    Claim,
    Statement,
    When,
    answered,
    each_interface,
    forget_exception,
    handler,
    never_awaited,
    no_attribute,
    nothing_logged,
    serve_once,
    server_error_record,
    unawaited_coroutine,
    with_cookie,
)
from project.views.async_decorators import BODY_RUNS, VIEWS

CLAIM = Claim(
    id="decorators-on-async-views",
    source="typeddjango/django-stubs issue #2549, \"Missing coroutine support of "
    "django.contrib.auth.decorators\"",
    url="https://github.com/typeddjango/django-stubs/issues/2549",
    claim=(
        "Since Django 5.1 the django.contrib.auth.decorators `login_required()`, "
        "`permission_required()`, and `user_passes_test()` support wrapping async functions."
    ),
    statements=[
        Statement(
            "auth-decorators",
            "login_required, permission_required and user_passes_test accept an async view: they "
            "return a coroutine function, and a logged-in user who passes gets the view's "
            "response.",
            "holds",
            when=[When("refuted", django="<5.1", why="user_passes_test's wrapper is a plain def until 5.1")],
            reality=(
                "Before Django 5.1 the wrapper is a plain function: Django runs it as a sync view, "
                "it returns the view's coroutine unawaited, and the request fails (a 500) with "
                "ValueError: \"The view project.views.async_decorators.<view> didn't return an "
                "HttpResponse object. It returned an unawaited coroutine instead. You may need to "
                "add an 'await' into your view.\""
            ),
        ),
        Statement(
            "anonymous-redirect",
            "An anonymous request to an async view under login_required is redirected to the login "
            "page (302 to /accounts/login/?next=...) on every version: the test fails before the "
            "view is called.",
            "holds",
            claimed=False,
        ),
        Statement(
            "csrf-exempt-lacks-async",
            "csrf_exempt lacks async support: applied to an async view, it returns a plain "
            "function and the request fails.",
            "refuted",
            when=[When("holds", django="<5.0", why="csrf_exempt's wrapper is a plain def until 5.0")],
            reality=(
                "From Django 5.0 csrf_exempt returns a coroutine function for an async view, still "
                "marked csrf_exempt = True, and the view answers 200. Before 5.0 the request fails "
                "with the unawaited-coroutine ValueError."
            ),
            claimed=False,
        ),
        Statement(
            "view-decorators",
            "Django's view decorators (django.views.decorators: csrf, http, cache, vary, gzip, "
            "clickjacking, debug, common) return a coroutine function for an async view, and "
            "cache_page and require_http_methods serve it.",
            "holds",
            when=[When("refuted", django="<5.0", why="async wrappers arrived in 5.0, ticket #31949")],
            reality=(
                "Before Django 5.0 every one of them returns a plain function. cache_page's request "
                "fails with AttributeError: 'coroutine' object has no attribute 'streaming' "
                "(CacheMiddleware.process_response), require_http_methods' with the "
                "unawaited-coroutine ValueError for an allowed method, while a refused method still "
                "gets its 405."
            ),
            claimed=False,
        ),
    ],
    mechanism=(
        "django.contrib.auth.decorators.user_passes_test (async _view_wrapper awaiting "
        "request.auser() when iscoroutinefunction(view_func), Django >= 5.1) and "
        "permission_required; django.utils.decorators.make_middleware_decorator and "
        "django.views.decorators.* (async wrappers, Django >= 5.0); before them, "
        "django.core.handlers.base.BaseHandler._get_response_async runs a non-coroutine callback "
        "with sync_to_async and BaseHandler.check_response raises on the returned coroutine; "
        "django.middleware.cache.UpdateCacheMiddleware.process_response (response.streaming)."
    ),
    docs="https://docs.djangoproject.com/en/5.2/topics/async/#async-views",
    question="Do login_required, permission_required and user_passes_test work on async views?",
    topic="views",
    code=(
        "project.views.async_decorators.login_required_view",
        "project.views.async_decorators.permission_required_view",
        "project.views.async_decorators.user_passes_test_view",
    ),
    instead=(),
)
# Only the tests that store a user or a session touch the database (each then flushes it).
ON_THE_DATABASE = pytest.mark.django_db(transaction=True)
auth_decorators_statement = CLAIM.statement("auth-decorators")
anonymous_redirect = CLAIM.statement("anonymous-redirect")
csrf_exempt_lacks_async = CLAIM.statement("csrf-exempt-lacks-async")
view_decorators = CLAIM.statement("view-decorators")

AUTH_VIEWS = ["login_required_view", "permission_required_view", "user_passes_test_view"]

# Every decorator of django.views.decorators, ready to apply to a view.
VIEW_DECORATORS = {
    "csrf_exempt": csrf.csrf_exempt,
    "csrf_protect": csrf.csrf_protect,
    "requires_csrf_token": csrf.requires_csrf_token,
    "ensure_csrf_cookie": csrf.ensure_csrf_cookie,
    "require_http_methods": http.require_http_methods(["GET"]),
    "require_GET": http.require_GET,
    "require_POST": http.require_POST,
    "require_safe": http.require_safe,
    "condition": http.condition(etag_func=lambda request: "v1"),
    "etag": http.etag(lambda request: "v1"),
    "last_modified": http.last_modified(lambda request: None),
    "cache_page": cache.cache_page(60),
    "cache_control": cache.cache_control(max_age=60),
    "never_cache": cache.never_cache,
    "vary_on_headers": vary.vary_on_headers("Accept-Language"),
    "vary_on_cookie": vary.vary_on_cookie,
    "gzip_page": gzip.gzip_page,
    "xframe_options_deny": clickjacking.xframe_options_deny,
    "xframe_options_sameorigin": clickjacking.xframe_options_sameorigin,
    "xframe_options_exempt": clickjacking.xframe_options_exempt,
    "sensitive_variables": debug.sensitive_variables(),
    "sensitive_post_parameters": debug.sensitive_post_parameters(),
    "no_append_slash": common.no_append_slash,
}
AUTH_DECORATORS = {
    "login_required": auth_decorators.login_required,
    "permission_required": auth_decorators.permission_required("auth.view_user"),
    "user_passes_test": auth_decorators.user_passes_test(lambda user: True),
}


def unawaited(view_name):
    return unawaited_coroutine(f"project.views.async_decorators.{view_name}")


# Python's AttributeError when CacheMiddleware.process_response reads the coroutine as a response.
NO_STREAMING = no_attribute("coroutine", "streaming")


def serve(interface, path, cookie=None, query="", method="GET"):
    app = with_cookie(handler(interface, "auth"), interface, cookie)
    return serve_once(interface, app, path, query, method=method)


async def a_view(request):
    raise AssertionError("never called")


@pytest.fixture
def logged_in():
    """The cookie of a session in which ada, a superuser (she has every permission), is logged in."""
    ada = User.objects.create_user("ada", is_superuser=True)
    session = SessionStore()
    session[SESSION_KEY] = str(ada.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = ada.get_session_auth_hash()
    session.save()
    return f"sessionid={session.session_key}"


def assert_500(hit, caplog, path, exc_type, message):
    assert hit.status == 500
    record = server_error_record(caplog, path)
    assert (record.exc_info[0], str(record.exc_info[1])) == (exc_type, message)


# --- the auth decorators ----------------------------------------------------------------------

@auth_decorators_statement
@pytest.mark.parametrize("name", list(AUTH_DECORATORS))
def test_auth_decorator_returns_a_coroutine_function(name):
    accepted = CLAIM.expected("auth-decorators") == "holds"
    assert iscoroutinefunction(AUTH_DECORATORS[name](a_view)) is accepted
    assert iscoroutinefunction(VIEWS[f"{name}_view"]) is accepted


@auth_decorators_statement
@each_interface
@pytest.mark.parametrize("name", AUTH_VIEWS)
@ON_THE_DATABASE
def test_logged_in_user_who_passes(interface, name, logged_in, caplog, runtime_warnings):
    caplog.set_level("ERROR", logger="django.request")
    path = f"/async-decorators/{name}/"
    runs = BODY_RUNS[name]
    hit = serve(interface, path, logged_in)
    if CLAIM.expected("auth-decorators", interface=interface) == "holds":
        assert answered(hit, caplog) == {"view": name, "runs": runs + 1}
        assert nothing_logged(caplog)
    else:
        assert_500(hit, caplog, path, ValueError, unawaited(name))
        assert BODY_RUNS[name] == runs  # the coroutine was never run
        forget_exception(caplog)
        assert runtime_warnings() == [never_awaited(name)]


@anonymous_redirect
@each_interface
def test_anonymous_is_redirected_on_every_version(interface, caplog):
    caplog.set_level("ERROR", logger="django.request")
    runs = BODY_RUNS["login_required_view"]
    hit = serve(interface, "/async-decorators/login_required_view/")
    assert hit.status == 302
    assert hit.headers["location"] == "/accounts/login/?next=/async-decorators/login_required_view/"
    assert BODY_RUNS["login_required_view"] == runs
    assert nothing_logged(caplog)


# --- csrf_exempt --------------------------------------------------------------------------------

@csrf_exempt_lacks_async
@each_interface
def test_csrf_exempt_on_an_async_view(interface, caplog, runtime_warnings):
    caplog.set_level("ERROR", logger="django.request")
    view = VIEWS["csrf_exempt_view"]
    assert view.csrf_exempt is True
    hit = serve(interface, "/async-decorators/csrf_exempt_view/")
    if CLAIM.expected("csrf-exempt-lacks-async", interface=interface) == "holds":
        assert iscoroutinefunction(view) is False
        assert_500(hit, caplog, "/async-decorators/csrf_exempt_view/", ValueError, unawaited("csrf_exempt_view"))
        forget_exception(caplog)
        assert runtime_warnings() == [never_awaited("csrf_exempt_view")]
    else:
        assert iscoroutinefunction(view) is True
        assert hit.status == 200
        assert answered(hit, caplog)["view"] == "csrf_exempt_view"
        assert nothing_logged(caplog)


# --- the view decorators ------------------------------------------------------------------------

@view_decorators
def test_every_view_decorator_returns_a_coroutine_function_or_none_does():
    accepted = CLAIM.expected("view-decorators") == "holds"
    results = {name: iscoroutinefunction(decorate(a_view)) for name, decorate in VIEW_DECORATORS.items()}
    assert results == {name: accepted for name in VIEW_DECORATORS}


@view_decorators
@each_interface
def test_cache_page_on_an_async_view(interface, caplog, runtime_warnings):
    caplog.set_level("ERROR", logger="django.request")
    path = "/async-decorators/cache_page_view/"
    query = f"interface={interface}"  # a cache key of this test's own
    runs = BODY_RUNS["cache_page_view"]
    first = serve(interface, path, query=query)
    if CLAIM.expected("view-decorators", interface=interface) == "refuted":
        assert_500(first, caplog, path, AttributeError, NO_STREAMING)
        assert BODY_RUNS["cache_page_view"] == runs
        forget_exception(caplog)
        assert runtime_warnings() == [never_awaited("cache_page_view")]
        return
    second = serve(interface, path, query=query)
    # The second answer came from the cache: the body ran once.
    assert answered(first, caplog) == answered(second, caplog) == {"view": "cache_page_view", "runs": runs + 1}
    assert first.headers["cache-control"] == "max-age=60"
    assert nothing_logged(caplog)


@view_decorators
@each_interface
def test_require_http_methods_on_an_async_view(interface, caplog, runtime_warnings):
    caplog.set_level("ERROR", logger="django.request")
    path = "/async-decorators/require_http_methods_view/"
    refused = serve(interface, path, method="POST")
    assert (refused.status, refused.headers["allow"]) == (405, "GET")  # every version
    allowed = serve(interface, path)
    if CLAIM.expected("view-decorators", interface=interface) == "refuted":
        assert_500(allowed, caplog, path, ValueError, unawaited("require_http_methods_view"))
        forget_exception(caplog)
        assert runtime_warnings() == [never_awaited("require_http_methods_view")]
    else:
        assert allowed.status == 200
        assert answered(allowed, caplog)["view"] == "require_http_methods_view"
        assert nothing_logged(caplog)

