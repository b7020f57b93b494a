"""Campaign managers configure check-in plans and see check-ins; analysts read them."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

MANAGERS = [
    "add_checkinplan",
    "change_checkinplan",
    "view_checkinplan",
    "view_checkin",
    "view_streaktier",
]
ANALYSTS = ["view_checkinplan", "view_checkin", "view_streaktier"]
GRANTS = {"Campaign managers": MANAGERS, "Analysts": ANALYSTS}


def _perms(apps, codenames):
    Permission = apps.get_model("auth", "Permission")
    return Permission.objects.filter(content_type__app_label="checkin", codename__in=codenames)


def forward(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    for name, codenames in GRANTS.items():
        Group.objects.get_or_create(name=name)[0].permissions.add(*_perms(apps, codenames))


def backward(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for name, codenames in GRANTS.items():
        Group.objects.get_or_create(name=name)[0].permissions.remove(*_perms(apps, codenames))


class Migration(migrations.Migration):
    dependencies = [("checkin", "0001_initial"), ("campaigns", "0002_roles")]

    operations = [migrations.RunPython(forward, backward)]
