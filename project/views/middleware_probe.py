"""Views behind the middleware of project/middleware_catalogue.py, mounted at /middleware-probe/.

Each adds to the request's trail where it ran (thread, event loop), so that a test can follow a
request through the middleware to the view and back, in process and through a real server.
"""

from django.http import JsonResponse
from django.urls import path

from project.middleware_catalogue import note
from project.evidence import ameet, meeting_args


async def async_view(request):
    note(request, "view")
    return JsonResponse({"view": "async", "trail": request.trail})


def sync_view(request):
    note(request, "view")
    return JsonResponse({"view": "sync", "trail": request.trail})


async def async_meet(request):
    """Waits at the harness's meeting point (?meet=PORT&group=G&n=N)."""
    note(request, "view")
    return JsonResponse({"meeting": await ameet(*meeting_args(request)), "trail": request.trail})


urlpatterns = [
    path("async-meet/", async_meet),
    path("async/", async_view),
    path("sync/", sync_view),
]
