"""The web server's rules, without a server: host names, origins, accounts, sign-in throttling.

The same rules against the real `rag serve` are in tests/test_ui_hardening.py (hosts, origins)
and tests/test_ui_login.py (throttling, accounts).
"""

from __future__ import annotations

import socket

import pytest

from rag.config import Config
from ui.security import HostPolicy
from ui.throttle import LoginThrottle


def policy(host: str = "127.0.0.1", allowed: str = "") -> HostPolicy:
    return HostPolicy.from_config(Config(host=host, allowed_hosts=allowed))


@pytest.mark.parametrize("host", ["127.0.0.1:7860", "localhost:7860", "LOCALHOST", "[::1]:7860", "localhost.",
                                  "127.0.0.1"])
def test_loopback_names_are_accepted(host):
    assert policy().host_allowed(host)


@pytest.mark.parametrize("host", ["evil.example", "evil.example:7860", "127.0.0.1.evil.example", "10.0.0.5:7860",
                                  "", None, "localhost.evil.example"])
def test_other_hosts_are_refused_on_a_loopback_server(host):
    assert not policy().host_allowed(host)


def test_the_listening_address_and_configured_names_are_accepted():
    p = policy("10.1.2.3", "chat.example.org, .corp.example")
    for host in ("10.1.2.3:7860", "chat.example.org", "CHAT.example.org:443", "a.corp.example", "corp.example"):
        assert p.host_allowed(host), host
    for host in ("10.1.2.4", "example.org", "evilcorp.example", "chat.example.org.evil.example"):
        assert not p.host_allowed(host), host


def test_a_server_on_every_interface_accepts_addresses_and_its_own_name_but_no_other_name():
    p = policy("0.0.0.0")
    assert p.host_allowed("192.168.1.20:7860") and p.host_allowed("[fe80::1]:7860")
    assert p.host_allowed(socket.gethostname())
    assert not p.host_allowed("evil.example")


def test_a_star_accepts_any_host():
    assert policy(allowed="*").host_allowed("anything.example")


@pytest.mark.parametrize("origin, host, ok", [
    ("http://127.0.0.1:7860", "127.0.0.1:7860", True),
    ("http://localhost:7860", "localhost:7860", True),
    ("https://chat.example.org", "chat.example.org:443", True),     # default port
    ("http://evil.example", "127.0.0.1:7860", False),
    ("http://127.0.0.1:9999", "127.0.0.1:7860", False),             # another local service
    ("http://localhost:7860", "127.0.0.1:7860", False),             # another origin, even if the same machine
    ("null", "127.0.0.1:7860", False),
    ("file://", "127.0.0.1:7860", False),
    ("https://chat.example.org", "127.0.0.1:7860", True),           # configured: a proxy that rewrites Host
])
def test_only_the_servers_own_origin_and_configured_names_are_accepted(origin, host, ok):
    assert policy(allowed="chat.example.org").origin_allowed(origin, host) is ok


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fail(th: LoginThrottle, client: str, user: str) -> float:
    wait = th.begin(client, user)
    if wait == 0:
        th.end(client, user, False)
    return wait


def test_failures_beyond_the_free_ones_lock_a_client_out_twice_as_long_each_time():
    clock = Clock()
    th = LoginThrottle(client_free=5, user_free=100, first_lock_s=1, max_lock_s=8, clock=clock)
    for _ in range(4):
        assert fail(th, "1.2.3.4", "alice") == 0
    assert fail(th, "1.2.3.4", "alice") == 0       # the 5th failure is checked, then locks for 1 s
    locks = []
    for _ in range(5):
        wait = th.begin("1.2.3.4", "alice")
        assert wait > 0                             # locked: not even checked
        locks.append(wait)
        clock.now += wait
        assert fail(th, "1.2.3.4", "alice") == 0
    assert locks == [1, 2, 4, 8, 8]                 # doubling, capped
    assert th.begin("5.6.7.8", "bob") == 0          # another client and user are not affected


def test_a_success_clears_the_count_and_old_failures_are_forgotten():
    clock = Clock()
    th = LoginThrottle(client_free=2, user_free=100, first_lock_s=1, forget_s=60, clock=clock)
    fail(th, "c", "alice")
    assert th.begin("c", "alice") == 0
    th.end("c", "alice", True)
    assert th.failures("client", "c") == 0
    fail(th, "c", "alice")
    clock.now += 61
    assert th.begin("c", "alice") == 0 and th.failures("client", "c") == 0
    th.end("c", "alice", None)


def test_failures_for_one_user_from_many_clients_lock_that_user_only():
    clock = Clock()
    th = LoginThrottle(client_free=5, user_free=3, first_lock_s=1, clock=clock)
    for i in range(3):
        assert fail(th, f"10.0.0.{i}", "alice") == 0
    assert th.begin("10.0.0.99", "alice") > 0       # a fresh client: the user is locked
    assert th.begin("10.0.0.99", "bob") == 0        # another user from that client is not
    th.end("10.0.0.99", "bob", True)


def test_one_attempt_at_a_time_is_checked_per_client():
    th = LoginThrottle(clock=Clock())
    assert th.begin("c", "alice") == 0
    assert th.begin("c", "bob") > 0 and th.begin("d", "alice") > 0   # same client, or same user: refused
    th.end("c", "alice", False)
    assert th.begin("c", "bob") == 0
