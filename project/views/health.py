"""Views the harness itself uses: readiness (which process answered) and a trivial ping."""

import os

from django.http import JsonResponse


def ready(request):
    # The token proves the answer came from the server the harness started, not from another
    # program that happens to listen on the same port.
    return JsonResponse({"pid": os.getpid(), "token": os.environ.get("SPEC_TOKEN", "")})


async def ping(request):
    return JsonResponse({"pong": True})
