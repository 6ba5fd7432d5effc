"""Views for claim login-required-async-class-views (specs/test_method_decorator_async.py),
mounted at /method-decorator-async/. Served with the ``auth`` middleware stack
(project/middleware.py).

Four class-based views whose only handler is ``async def get``, each protected the way people
protect a sync class-based view:

- ``MixinView``: ``LoginRequiredMixin`` (the code of django-guardian issue #1022, with Django's
  own mixin);
- ``DispatchDecorated``: ``@method_decorator(login_required, name="dispatch")`` on the class;
- ``GetDecorated``: ``@method_decorator(login_required)`` on ``async def get`` (ticket #35083);
- ``AsyncDispatch``: the corrected form, an ``async def dispatch`` that awaits View's, under
  ``@method_decorator(login_required, name="dispatch")``.

Each ``get`` answers its name and ``project.evidence.where()``; ``RAN`` counts, by view, how many
times a ``get`` ran.
"""

import collections

from django.contrib.auth.decorators import login_required
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import JsonResponse
from django.urls import path
from django.utils.decorators import method_decorator
from django.views import View

from project.evidence import where

RAN = collections.Counter()


def _answer(name):
    RAN[name] += 1
    return JsonResponse({"view": name, "where": where()})


class MixinView(LoginRequiredMixin, View):
    async def get(self, request, *args, **kwargs):
        return _answer("MixinView")


@method_decorator(login_required, name="dispatch")
class DispatchDecorated(View):
    async def get(self, request, *args, **kwargs):
        return _answer("DispatchDecorated")


class GetDecorated(View):
    @method_decorator(login_required)
    async def get(self, request, *args, **kwargs):
        return _answer("GetDecorated")


@method_decorator(login_required, name="dispatch")
class AsyncDispatch(View):
    async def dispatch(self, request, *args, **kwargs):
        return await super().dispatch(request, *args, **kwargs)

    async def get(self, request, *args, **kwargs):
        return _answer("AsyncDispatch")


VIEWS = {view.__name__: view for view in (MixinView, DispatchDecorated, GetDecorated, AsyncDispatch)}

urlpatterns = [path(f"{name}/", view.as_view()) for name, view in VIEWS.items()]
