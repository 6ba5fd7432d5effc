"""The spec's harness. Spec modules import what they use from one place, ``harness.spec``.

- ``spec``      everything a spec module uses, in one import
- ``claims``    the claim record: quoted claim, statements, outcomes as data, derived verdicts
- ``status``    the one status rule (passed, contradicted, error, not run) and the results schema
- ``plugin``    statements in, verdicts out: collection checks, the verdict table, results JSON
- ``results``   committed results per claim, the drift check, the cross-version matrix
- ``render``    the README's verdict table, from the claim records
- ``servers``   real server processes on 127.0.0.1, started, checked and always stopped
- ``zygote``    the preloaded process the servers are forked from
- ``meeting``   the meeting point: rendezvous, holds, and the events views report
- ``progress``  waits that end on progress, not on a clock
- ``protocol``  the wire protocol between views and harness (project/evidence.py is its other side)
- ``probe``     fires requests and turns server-side stamps into evidence
- ``inprocess`` Django's ASGI and WSGI handlers driven in this process, the way servers drive them
- ``messages``  Django's, asgiref's and Python's messages that specs assert
- ``versions``  the one place a Django version decides anything
- ``env``       what the spec pins in its own process and in every server it starts

Its own tests live in ``harness/tests``.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
