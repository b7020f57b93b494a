from django.apps import AppConfig


class CardsConfig(AppConfig):
    name = "mechanics.cards"
    label = "cards"
    verbose_name = "Greeting cards and image share"
