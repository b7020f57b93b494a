"""Daily check-in: the mini program's routes."""

urlpatterns: list = []
