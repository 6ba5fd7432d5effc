import importlib
import pkgutil

from django.urls import include, path

import project.views

from project.evidence import stamped
from project.views import blocking, health, orm, serving, sleep

# Every view a concurrency claim measures is wrapped in ``stamped`` here rather than in its module,
# so the quiz snippets stand in their modules exactly as the quiz wrote them.
urlpatterns = [
    path("__spec__/ready/", health.ready),
    path("__spec__/ping/", stamped(health.ping)),
    # Seed claim 2: the quiz's blocking async view, and its corrected form.
    path("seed/blocking/", stamped(blocking.my_view)),
    path("fixed/blocking/", stamped(blocking.my_view_fixed)),
    # Seed claim 3: the quiz's ORM call, and the two forms that work.
    path("seed/orm/", orm.get_user),
    path("fixed/orm/aget/", orm.get_user_aget),
    path("fixed/orm/sync-to-async/", orm.get_user_sync_to_async),
    # Seed claim 5: the quiz's un-awaited sleep, and the awaited one.
    path("seed/sleep/", stamped(sleep.slow_view)),
    path("fixed/sleep/", stamped(sleep.slow_view_fixed)),
    # Seed claims 1 and 2: the five kinds of view the serving claims compare.
    *(path(f"serving/{kind}/", stamped(view)) for kind, view in serving.KINDS.items()),
]

# A view module that defines its own ``urlpatterns`` is mounted at /<module-name>/ (underscores
# become dashes), so a new claim adds its views without editing this file.
for _info in pkgutil.iter_modules(project.views.__path__):
    _module = importlib.import_module(f"project.views.{_info.name}")
    if hasattr(_module, "urlpatterns"):
        urlpatterns.append(path(f"{_info.name.replace('_', '-')}/", include(_module)))
