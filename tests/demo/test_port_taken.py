"""`manage.py demo` started while another demo holds its port: it says so, names a way out, and
leaves the running demo's logins and API key as they were."""

import os
import socket
import subprocess
import sys

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from demo.build import demo_build
from merchants.models import ApiKey


@pytest.fixture
def taken_port():
    """A port some other process listens on, as a running demo's web server does."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


def test_a_second_demo_on_a_taken_port_changes_no_password_or_key(db, monkeypatch, taken_port):
    # given a demo already built, whose logins and API key someone is using
    demo_build(password="the-running-demo")
    users = list(get_user_model().objects.order_by("pk").values_list("username", "password"))
    keys = list(ApiKey.objects.order_by("pk").values_list("digest", "revoked_at"))
    monkeypatch.setenv("HOST", "127.0.0.1")
    monkeypatch.setenv("PORT", str(taken_port))
    monkeypatch.setenv("DEMO_PASSWORD", "a-second-demo")

    # when a second demo is started on the same port
    with pytest.raises(CommandError) as refused:
        call_command("demo")

    # then it says so, and the first demo's secrets are unchanged
    assert str(refused.value) == (
        f"Port {taken_port} is already in use (another demo?). Start this one on another port: "
        f"PORT={taken_port + 1} .venv/bin/python manage.py demo"
    )
    assert list(get_user_model().objects.order_by("pk").values_list("username", "password")) == (
        users
    )
    assert list(ApiKey.objects.order_by("pk").values_list("digest", "revoked_at")) == keys


def test_a_second_demo_on_a_taken_port_exits_with_an_error_before_opening_the_database(
    tmp_path, taken_port
):
    # Its own database file, so that a regression could never migrate the developer's.
    database = tmp_path / "demo.sqlite3"
    completed = subprocess.run(
        [sys.executable, str(settings.BASE_DIR / "manage.py"), "demo"],
        env={
            **os.environ,
            "HOST": "127.0.0.1",
            "PORT": str(taken_port),
            "DATABASE_URL": f"sqlite:///{database}",
            "AIDWALLET_VAR_DIR": str(tmp_path),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert completed.returncode != 0
    assert f"Port {taken_port} is already in use (another demo?)" in completed.stderr
    assert f"PORT={taken_port + 1} .venv/bin/python manage.py demo" in completed.stderr
    assert not database.exists()
