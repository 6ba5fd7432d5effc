"""Wires the harness into pytest (see harness/plugin.py).

The environment is pinned before Django is imported, so nothing the calling shell exports
(DJANGO_ALLOW_ASYNC_UNSAFE, SPEC_MIDDLEWARE, ...) can change how the project is set up.
"""

from harness.env import pin_process_env

pin_process_env()

pytest_plugins = ["harness.plugin"]
