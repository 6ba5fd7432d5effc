"""Views for claim request-user-in-async-view (specs/test_request_user_in_async_view.py), mounted
at /request-user/. Served with the ``auth`` middleware stack (SessionMiddleware,
AuthenticationMiddleware: project/middleware.py).

- ``touched``: the form people write, an async view that reads ``request.user.is_authenticated``;
- ``untouched``: an async view that only looks at what AuthenticationMiddleware put on the request,
  without evaluating it;
- ``auser``: the corrected form, ``await request.auser()`` (Django >= 5.0).
"""

from django.http import JsonResponse
from django.urls import path
from django.utils.functional import empty


async def touched(request):
    return JsonResponse({"authenticated": request.user.is_authenticated})


async def untouched(request):
    # type() and _wrapped (an instance attribute) do not evaluate a SimpleLazyObject.
    return JsonResponse({
        "class": type(request.user).__name__,
        "evaluated": request.user._wrapped is not empty,
    })


async def auser(request):
    user = await request.auser()
    return JsonResponse({
        "class": type(user).__name__,
        "authenticated": user.is_authenticated,
        "username": user.get_username(),
    })


urlpatterns = [
    path("touched/", touched),
    path("untouched/", untouched),
    path("auser/", auser),
]
