"""Who may configure price-cut offers and act on tasks."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GRANTS = {
    "Campaign managers": [
        "add_offer",
        "change_offer",
        "delete_offer",
        "view_offer",
        "change_task",
        "view_task",
        "view_help",
    ],
    "Finance approvers": ["view_offer", "view_task", "view_help"],
    "Fraud reviewers": ["view_offer", "view_task", "view_help"],
    "Analysts": ["view_offer", "view_task", "view_help"],
}


def grant(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in GRANTS.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.add(
            *Permission.objects.filter(content_type__app_label="pricecut", codename__in=codenames)
        )


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in GRANTS.items():
        group = Group.objects.filter(name=name).first()
        if group:
            group.permissions.remove(
                *Permission.objects.filter(content_type__app_label="pricecut", codename__in=codenames)
            )


class Migration(migrations.Migration):
    dependencies = [("pricecut", "0001_initial"), ("campaigns", "0002_roles")]

    operations = [migrations.RunPython(grant, revoke)]
