"""Views behind the middleware of project/middleware_catalogue.py, mounted at /middleware-probe/.

Each adds to the request's trail where it ran (thread, event loop), so that a test can follow a
request through the middleware to the view and back, in process and through a real server.
"""

import json

from django.http import JsonResponse, StreamingHttpResponse
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


async def async_streamed(request):
    """The handler itself runs the body's generator: under ASGI, ``ASGIHandler.send_response``
    iterates it on the handler's own loop, once every middleware has returned. Its point, the
    last of the trail, is where the handler runs, also through a server. The body is the whole
    trail (a middleware's ``X-Trail`` header, set before, lacks that point)."""
    note(request, "view")

    async def body():
        note(request, "handler")
        yield json.dumps({"trail": request.trail})

    return StreamingHttpResponse(body(), content_type="application/json")


urlpatterns = [
    path("async-streamed/", async_streamed),
    path("async-meet/", async_meet),
    path("async/", async_view),
    path("sync/", sync_view),
]
