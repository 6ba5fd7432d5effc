"""Seed claim 2: a blocking call inside an async view.

``my_view`` is the quiz's snippet; only the duration comes from ``?seconds=`` so the spec stays
fast. ``my_view_fixed`` is the corrected form: the wait is awaited, so the event loop is free.
"""

import asyncio

# --- the quiz's snippet, verbatim -----------------------------------------------------------
from django.http import JsonResponse
import time

async def my_view(request):
    time.sleep(float(request.GET.get("seconds", 2))) # blocking call
    return JsonResponse({'status': 'done'})
# ---------------------------------------------------------------------------------------------


async def my_view_fixed(request):
    await asyncio.sleep(float(request.GET.get("seconds", 2)))
    return JsonResponse({"status": "done"})
