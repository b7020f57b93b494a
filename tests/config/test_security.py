import pytest
from django.contrib.auth.models import User
from django.test import RequestFactory

from config.security import client_ip

LOGIN = "/admin/login/?next=/admin/"


@pytest.fixture
def olga(db):
    return User.objects.create_user("olga", password="right-password-123", is_staff=True)


def test_five_wrong_passwords_lock_the_account_from_that_address(client, olga):
    for _ in range(5):
        response = client.post(LOGIN, {"username": "olga", "password": "wrong"})
        assert response.status_code in (200, 429)
    # even the right password is refused now, with a readable page
    response = client.post(LOGIN, {"username": "olga", "password": "right-password-123"})
    assert response.status_code == 429
    assert "Sign-in is locked" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_a_lock_does_not_spread_to_other_addresses(client, olga):
    for _ in range(5):
        client.post(LOGIN, {"username": "olga", "password": "wrong"}, REMOTE_ADDR="10.0.0.9")
    response = client.post(
        LOGIN, {"username": "olga", "password": "right-password-123"}, REMOTE_ADDR="10.0.0.10"
    )
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(olga.pk)


def test_a_right_password_before_the_limit_resets_the_count(client, olga):
    for _ in range(4):
        client.post(LOGIN, {"username": "olga", "password": "wrong"})
    assert client.post(LOGIN, {"username": "olga", "password": "right-password-123"}).status_code == 302
    client.logout()
    for _ in range(4):
        client.post(LOGIN, {"username": "olga", "password": "wrong"})
    assert client.post(LOGIN, {"username": "olga", "password": "right-password-123"}).status_code == 302


@pytest.mark.parametrize(
    ("num_proxies", "forwarded", "expected"),
    [
        (0, "6.6.6.6", "10.0.0.1"),  # no proxy: a client-written header is ignored
        (1, "6.6.6.6, 203.0.113.7", "203.0.113.7"),  # one proxy: the address it saw
        (2, "6.6.6.6, 203.0.113.7, 10.0.0.2", "203.0.113.7"),
        (2, "203.0.113.7", "10.0.0.1"),  # fewer hops than proxies: fall back to the peer
    ],
)
def test_client_ip_trusts_exactly_the_configured_proxies(settings, num_proxies, forwarded, expected):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": num_proxies}
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip(request) == expected
