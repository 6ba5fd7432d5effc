"""The spec's harness: claim records, real servers, the concurrency probe, and the pytest plugin.

- ``claims``   the claim record (DESIGN.md §1) and the registry of every claim in ``specs/``
- ``env``      what the spec pins in its own process and in every server it starts
- ``servers``  real server processes on 127.0.0.1, started, checked and always stopped
- ``meeting``  the rendezvous point views call to prove that requests overlapped
- ``probe``    fires concurrent requests and turns server-side stamps into evidence
- ``inprocess`` Django's ASGI and WSGI handlers driven in this process, the way servers drive them
- ``versions`` the one place Django-version differences are decided
- ``plugin``   verdict table, results JSON, server output on failure
- ``render``   README verdict table from the claim records

Its own tests live in ``harness/tests``.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
