"""Seed claim 3: the ORM in an async view.

``get_user`` is the quiz's snippet. The two corrected forms are the async ORM method (``aget``,
Django >= 4.1) and the quiz's own suggestion, ``sync_to_async``.
"""

from asgiref.sync import sync_to_async
from django.contrib.auth.models import User

# --- the quiz's snippet, verbatim -----------------------------------------------------------
from django.http import JsonResponse

async def get_user(request):
    user = await User.objects.get(id=1)
    return JsonResponse({'username': user.username})
# ---------------------------------------------------------------------------------------------


async def get_user_aget(request):
    user = await User.objects.aget(id=1)
    return JsonResponse({"username": user.username})


async def get_user_sync_to_async(request):
    user = await sync_to_async(User.objects.get)(id=1)
    return JsonResponse({"username": user.username})
