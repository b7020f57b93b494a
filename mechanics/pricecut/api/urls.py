"""Price cut: the mini program's routes."""

urlpatterns: list = []
