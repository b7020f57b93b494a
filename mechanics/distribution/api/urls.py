"""Distribution: the mini program's routes."""

from django.urls import path

from . import views

urlpatterns = [
    path("distribution/<slug:slug>/apply", views.ApplyApi.as_view(), name="distribution-apply"),
    path("distribution/<slug:slug>/bind", views.BindApi.as_view(), name="distribution-bind"),
    path("distribution/<slug:slug>/me", views.MeApi.as_view(), name="distribution-me"),
    path("distribution/<slug:slug>/my-binding", views.MyBindingApi.as_view(), name="distribution-my-binding"),
    path(
        "distribution/<slug:slug>/customers/", views.MyCustomersApi.as_view(), name="distribution-customers"
    ),
    path("distribution/<slug:slug>/orders/", views.MyOrdersApi.as_view(), name="distribution-orders"),
    path(
        "distribution/<slug:slug>/commissions/",
        views.MyCommissionsApi.as_view(),
        name="distribution-commissions",
    ),
]
