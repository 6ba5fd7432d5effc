"""Views for the request-body claim (specs/test_request_bodies.py), mounted at /request-bodies/.

- ``upload/`` (sync, like most upload views): tells the meeting point ``started``
  (``?meet=PORT&group=G``) as soon as Django runs it, *before* it touches the body, then reads
  ``request.body`` and answers its length, the thread it ran on (``where()``) and the kind of
  stream Django gave it. The test sends the body slowly and decides, by what the meeting point has
  heard, whether the view ran before the body was in.
- ``stream/`` (sync): what Django handed the view as the body, without reading it: the class of
  ``request._stream`` and, for a ``SpooledTemporaryFile``, whether it has rolled over to a file on
  disk (``_rolled``) and how many bytes it holds. The in-process tests read it.
"""

from django.http import JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from project.evidence import tell, where


@csrf_exempt
def upload(request):
    tell(int(request.GET["meet"]), request.GET["group"], "started")
    stream = type(request._stream).__name__  # before request.body replaces it with a BytesIO
    body = request.body
    return JsonResponse({"length": len(body), "where": where(), "stream": stream})


@csrf_exempt
def stream(request):
    body_file = request._stream
    body_file.seek(0, 2)
    size = body_file.tell()
    body_file.seek(0)
    return JsonResponse({
        "stream": type(body_file).__name__,
        "rolled": getattr(body_file, "_rolled", None),
        "size": size,
    })


urlpatterns = [path("upload/", upload), path("stream/", stream)]
