"""The server launcher: free ports, fast clear failures, nothing left behind."""

import os
import socket
import time

import pytest

from harness.env import PINNED, server_env
from harness.versions import by_version
from harness.servers import (
    SERVERS,
    ServerConfig,
    ServerKind,
    ServerMissing,
    ServerProcess,
    ServerStartError,
    free_port,
)

def synthetic(name):
    """A tiny app of the server's own interface (harness/tests/apps.py), or for runserver (which
    serves only the project) the project itself."""
    if not SERVERS[name].serves_any_app:
        return ServerConfig()
    return ServerConfig(app=f"harness.tests.apps:concurrent_{SERVERS[name].interface}")


def port_is_free(port):
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes (its parent has not reaped it yet).
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(")")[-1].split()[0] != "Z"


def test_free_port_never_returns_a_port_in_use():
    listeners = []
    try:
        for _ in range(20):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sock.listen()
            listeners.append(sock)
        taken = {sock.getsockname()[1] for sock in listeners}
        assert not taken & {free_port() for _ in range(200)}
    finally:
        for sock in listeners:
            sock.close()


def test_missing_package_names_the_package():
    ghost = ServerKind("ghost", "asgi", "no_such_server_module_xyz", "ghost-server", "-", None)
    with pytest.raises(ServerMissing, match=r"needs the package 'ghost-server'.*pip install ghost-server"):
        ServerProcess(ghost).start()


@pytest.mark.parametrize("name", SERVERS)
def test_a_port_taken_by_another_program_fails_fast_with_the_servers_output(name):
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        server = ServerProcess(SERVERS[name], synthetic(name), port=port)
        started = time.monotonic()
        with pytest.raises(ServerStartError) as raised:
            server.start()
        assert time.monotonic() - started < 10
        assert "could not bind" in str(raised.value)
        argv = server.kind.build_argv(server.kind, synthetic(name), port)
        assert "$ " + " ".join(argv) in str(raised.value)
        assert server.proc.poll() is not None  # and it was stopped
        server.close()


@pytest.mark.parametrize("name", SERVERS)
def test_an_app_that_cannot_load_fails_fast_with_the_servers_output(name):
    if SERVERS[name].serves_any_app:
        server = ServerProcess(SERVERS[name], ServerConfig(app="no_such_module_xyz:app"))
    else:  # runserver: make the project's settings impossible to import instead
        server = ServerProcess(SERVERS[name], extra_env={"DJANGO_SETTINGS_MODULE": "no_such_module_xyz"})
    started = time.monotonic()
    with pytest.raises(ServerStartError) as raised:
        server.start()
    assert time.monotonic() - started < 10
    assert "no_such_module_xyz" in str(raised.value)
    assert server.proc.poll() is not None
    server.close()


@pytest.mark.parametrize("name", SERVERS)
def test_stop_ends_every_process_and_frees_the_port(name):
    server = ServerProcess(SERVERS[name], synthetic(name)).start()
    assert not port_is_free(server.port)
    assert server.running_pids()
    server.stop()
    assert port_is_free(server.port)
    assert server.running_pids() == []  # nothing of the group runs (gunicorn's workers too)
    server.close()
    assert not server.workdir.exists()  # nor is anything left on disk


def test_servers_get_a_pinned_environment_not_the_callers(monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "1")
    monkeypatch.setenv("WEB_CONCURRENCY", "4")
    monkeypatch.setenv("PYTHONWARNINGS", "ignore")
    monkeypatch.setenv("GUNICORN_CMD_ARGS", "--workers 4")
    env = server_env()
    assert env["PYTHONWARNINGS"] == "default"
    for name in ("DJANGO_ALLOW_ASYNC_UNSAFE", "WEB_CONCURRENCY", "GUNICORN_CMD_ARGS"):
        assert name not in env
    assert all(name not in env for name in PINNED)


def test_the_spec_process_drops_what_the_caller_set(monkeypatch):
    from harness.env import pin_process_env

    environ = {"DJANGO_ALLOW_ASYNC_UNSAFE": "1", "SPEC_MIDDLEWARE": "seed", "PATH": "/bin"}
    pin_process_env(environ)
    assert environ == {"PATH": "/bin"}


BANNERS = {
    # Django 6.1 names the protocol in runserver's banner.
    "runserver": {"4.2": "Starting development server at",
                  "6.1": "Starting WSGI development server at"},
    "runserver-daphne": {"4.2": "Starting ASGI/Daphne version"},
}  # fmt: skip


@pytest.mark.parametrize("name", BANNERS)
def test_runserver_variants_serve_the_interface_they_claim(server_pool, name):
    # daphne in INSTALLED_APPS replaces the runserver command with daphne's ASGI one.
    assert by_version(BANNERS[name]) in server_pool.get(name).output()
