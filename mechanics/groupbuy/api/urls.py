"""Group buying: the mini program's routes."""

urlpatterns: list = []
