from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from config.health import healthz
from referrals.api import urls as _referral_urls  # noqa: F401 - registers the sharecode converter
from referrals.views import share_landing

admin.site.site_header = "Fission"
admin.site.site_title = "Fission admin"
admin.site.index_title = "Campaigns, referrals and rewards"

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("s/<sharecode:code>", share_landing, name="share-landing"),
    path(settings.ADMIN_URL, admin.site.urls),
    path("api/v1/", include("config.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="api-redoc"),
    *static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT),
]


# Any other /api/ path answers in the API's error shape, in debug mode too.
@csrf_exempt  # a POST to a wrong URL is a 404 in the API's shape, not a CSRF page
def _api_not_found(request, *args, **kwargs):
    from config.api.exceptions import api_not_found

    return api_not_found(request)


urlpatterns.append(re_path(r"^api/", _api_not_found))


def handler404(request, exception=None):
    from django.views.defaults import page_not_found

    from config.api.exceptions import api_not_found

    if request.path.startswith("/api/"):
        return api_not_found(request, exception)
    return page_not_found(request, exception)


def handler500(request):
    from django.views.defaults import server_error

    from config.api.exceptions import api_server_error

    if request.path.startswith("/api/"):
        return api_server_error(request)
    return server_error(request)
