"""Distribution: the mini program's routes."""

urlpatterns: list = []
