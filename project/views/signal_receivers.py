"""A post_save receiver, sync and async, of a save an async view awaits
(specs/test_async_signal_receiver_blocks.py).

``/signal-receivers/acreate/`` connects a sync and an async ``post_save`` receiver for
``Author`` (for the time of the request, and acting only on the author this request creates),
awaits ``Author.objects.acreate(...)`` and answers the ordered events, each with
``project.evidence.where()``, plus where the view and a thread-sensitive ``sync_to_async`` call
of the request ran. With ``?meet=PORT&group=G&n=N`` the async receiver waits at the meeting
point (awaiting) and records its answer.
"""

import asyncio
import uuid

from asgiref.sync import sync_to_async
from django.db.models.signals import post_save
from django.http import JsonResponse
from django.urls import path

from project.evidence import ameet, meeting_args, where
from project.library.models import Author


async def acreate(request):
    uid = uuid.uuid4().hex
    name = f"spec-signal-{uid}"
    meeting = meeting_args(request) if "meet" in request.GET else None
    events = []

    def sync_receiver(sender, instance, **kwargs):
        if instance.name == name:
            events.append({"event": "sync receiver", **where()})

    async def async_receiver(sender, instance, **kwargs):
        if instance.name != name:
            return
        events.append({"event": "async receiver enter", **where()})
        answer = await ameet(*meeting) if meeting else await asyncio.sleep(0)
        events.append({"event": "async receiver exit", "meeting": answer, **where()})

    post_save.connect(sync_receiver, sender=Author, weak=False, dispatch_uid=f"{uid}-sync")
    post_save.connect(async_receiver, sender=Author, weak=False, dispatch_uid=f"{uid}-async")
    try:
        author = await Author.objects.acreate(name=name)
        events.append({"event": "acreate returned", **where()})
    finally:
        post_save.disconnect(sender=Author, dispatch_uid=f"{uid}-sync")
        post_save.disconnect(sender=Author, dispatch_uid=f"{uid}-async")
    await author.adelete()
    return JsonResponse({
        "events": events,
        "view": where(),
        "sensitive": await sync_to_async(where)(),
    })  # fmt: skip


urlpatterns = [path("acreate/", acreate)]
