import pytest

from fakes.wechat import start_in_thread


@pytest.fixture
def fake_wechat(settings):
    """A fake WeChat on a free port, and the settings pointing at it."""
    fake = start_in_thread(port=0)
    settings.WECHAT_API_BASE = fake.base_url
    settings.WECHAT_APP_ID = fake.app_id
    settings.WECHAT_APP_SECRET = fake.secret
    yield fake
    fake.shutdown()
