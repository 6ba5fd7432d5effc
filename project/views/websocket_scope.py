"""Views for the websocket-scope claim (specs/test_websocket_scope.py), mounted at
/websocket-scope/.

``/websocket-scope/page/`` is a plain HTTP view at the path the spec's WebSocket handshake asks
for: a server that does not speak WebSocket hands the upgrade request to Django as an ordinary
``http`` request, and this view then answers it (with the scope type and the Upgrade header it saw,
so the test can tell).
"""

from django.http import JsonResponse
from django.urls import path


def page(request):
    return JsonResponse({
        "scope_type": request.scope["type"] if hasattr(request, "scope") else None,
        "upgrade": request.headers.get("Upgrade"),
    })


urlpatterns = [path("page/", page)]
