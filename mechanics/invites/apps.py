from django.apps import AppConfig


class InvitesConfig(AppConfig):
    name = "mechanics.invites"
    label = "invites"
    verbose_name = "Invite-N tasks"
