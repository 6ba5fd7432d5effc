"""Views for claim session-async-api (specs/test_session_async_api.py), mounted at
/session-async/. Served with the ``auth`` middleware stack (project/middleware.py), whose
SessionMiddleware puts a ``SessionStore`` of Django's default engine
(django.contrib.sessions.backends.db) on ``request.session``.

- ``sync_get``: the form of the claim's bug, ``request.session.get(key)`` in async code;
- ``aget``: the claim's fix, ``await request.session.aget(key)``;
- ``aset``: ``await request.session.aset(key, value)``, saved by SessionMiddleware.
"""

from django.http import JsonResponse
from django.urls import path

KEY = "django_timezone"


async def sync_get(request):
    return JsonResponse({"value": request.session.get(KEY)})


async def aget(request):
    return JsonResponse({"value": await request.session.aget(KEY)})


async def aset(request):
    await request.session.aset(KEY, request.GET["value"])
    return JsonResponse({"modified": request.session.modified})


urlpatterns = [
    path("sync-get/", sync_get),
    path("aget/", aget),
    path("aset/", aset),
]
