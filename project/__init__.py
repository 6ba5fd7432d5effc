"""The minimal Django project under test.

Everything a claim needs to be served lives here: settings, URLs, the ASGI and WSGI entry points,
and per claim the quiz's snippet verbatim beside its corrected form (``project/views/``,
``project/middleware.py``). Nothing here knows about pytest.
"""
