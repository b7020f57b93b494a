from django.apps import AppConfig


class PricecutConfig(AppConfig):
    name = "mechanics.pricecut"
    label = "pricecut"
    verbose_name = "Price cut"
