"""Seed claim 5: ``asyncio.sleep`` called without ``await``.

``slow_view`` is the quiz's snippet (duration from ``?seconds=``); ``slow_view_fixed`` awaits it.
"""

# --- the quiz's snippet, verbatim -----------------------------------------------------------
from django.http import JsonResponse
import asyncio

async def slow_view(request):
    asyncio.sleep(float(request.GET.get("seconds", 3)))
    return JsonResponse({'status': 'done'})
# ---------------------------------------------------------------------------------------------


async def slow_view_fixed(request):
    await asyncio.sleep(float(request.GET.get("seconds", 3)))
    return JsonResponse({"status": "done"})
