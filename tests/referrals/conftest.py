import pytest
from django.contrib.auth.models import Group, User

from fakes.wechat import start_in_thread
from fakes.wechatpay import start_in_thread as start_wechatpay

API_KEY = "test-wechatpay-apiv3-key-32bytes"  # an APIv3 key is 32 bytes


@pytest.fixture
def fake_wechat(settings):
    """A fake WeChat on a free port, and the settings pointing at it."""
    fake = start_in_thread(port=0)
    settings.WECHAT_API_BASE = fake.base_url
    settings.WECHAT_APP_ID = fake.app_id
    settings.WECHAT_APP_SECRET = fake.secret
    yield fake
    fake.shutdown()


@pytest.fixture
def pay(settings):
    fake = start_wechatpay(port=0, api_key=API_KEY)
    settings.WECHATPAY_API_BASE = fake.base_url
    settings.WECHATPAY_API_KEY = API_KEY
    settings.WECHATPAY_TIMEOUT_SECONDS = 0.5
    yield fake
    fake.shutdown()


@pytest.fixture
def finance(db):
    group = Group.objects.get(name="Finance approvers")
    maker = User.objects.create_user("fiona", is_staff=True)
    checker = User.objects.create_user("felix", is_staff=True)
    for user in (maker, checker):
        user.groups.add(group)
    return maker, checker
