"""Price cut: the mini program's routes and the business backend's cut-price check."""

from django.urls import path

from . import views

urlpatterns = [
    path("campaigns/<slug:slug>/price-cut-offers/", views.OfferListApi.as_view(), name="price-cut-offers"),
    path("price-cut-offers/<int:offer_id>/tasks/", views.TaskStartApi.as_view(), name="price-cut-start"),
    path("price-cuts/<str:code>/", views.TaskDetailApi.as_view(), name="price-cut-detail"),
    path("price-cuts/<str:code>/help", views.TaskHelpApi.as_view(), name="price-cut-help"),
    path("me/price-cuts/", views.MyTasksApi.as_view(), name="me-price-cuts"),
    path("server/price-cuts/<str:code>/", views.ServerTaskApi.as_view(), name="server-price-cut"),
    path(
        "server/price-cuts/<str:code>/redeem",
        views.ServerTaskRedeemApi.as_view(),
        name="server-price-cut-redeem",
    ),
]
