"""Views for the claim "async views are faster" (specs/test_async_speed.py), at /async-speed/.

Two views that do the same nothing, one written ``async def``, one ``def``: each answers where it
ran (``project.evidence.where()``), so that what a request costs is only what Django and the
server spend on serving it, and the test can see which thread and loop that was.
"""

from django.http import JsonResponse
from django.urls import path

from project.evidence import where


async def async_view(request):
    return JsonResponse(where())


def sync_view(request):
    return JsonResponse(where())


urlpatterns = [
    path("async/", async_view),
    path("sync/", sync_view),
]
