"""Views for claim decorators-on-async-views (specs/test_decorators_on_async_views.py), mounted at
/async-decorators/. Served with the ``auth`` middleware stack (project/middleware.py).

Each view is one async view under one of Django's own decorators, written the way the docs write
decorators on sync views. ``BODY_RUNS`` counts how many times the views' bodies ran, by view (a
cached response does not run it again).
"""

import collections

from django.contrib.auth.decorators import login_required, permission_required, user_passes_test
from django.http import JsonResponse
from django.urls import path
from django.views.decorators.cache import cache_page
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

BODY_RUNS = collections.Counter()


async def _body(request, name):
    BODY_RUNS[name] += 1
    return JsonResponse({"view": name, "runs": BODY_RUNS[name]})


@login_required
async def login_required_view(request):
    return await _body(request, "login_required_view")


@permission_required("auth.view_user")
async def permission_required_view(request):
    return await _body(request, "permission_required_view")


@user_passes_test(lambda user: user.get_username() == "ada")
async def user_passes_test_view(request):
    return await _body(request, "user_passes_test_view")


@csrf_exempt
async def csrf_exempt_view(request):
    return await _body(request, "csrf_exempt_view")


@require_http_methods(["GET"])
async def require_http_methods_view(request):
    return await _body(request, "require_http_methods_view")


@cache_page(60)
async def cache_page_view(request):
    return await _body(request, "cache_page_view")


VIEWS = {
    view.__name__: view
    for view in (
        login_required_view, permission_required_view, user_passes_test_view,
        csrf_exempt_view, require_http_methods_view, cache_page_view,
    )
}  # fmt: skip

urlpatterns = [path(f"{name}/", view) for name, view in VIEWS.items()]
