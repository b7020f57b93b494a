from django.apps import AppConfig


class GroupbuyConfig(AppConfig):
    name = "mechanics.groupbuy"
    label = "groupbuy"
    verbose_name = "Group buying"
