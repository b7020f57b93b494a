"""Who may configure deals, act on groups and read the order signals."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GRANTS = {
    "Campaign managers": [
        "add_deal",
        "change_deal",
        "delete_deal",
        "view_deal",
        "add_tier",
        "change_tier",
        "delete_tier",
        "view_tier",
        "change_group",
        "view_group",
        "view_member",
        "view_signal",
    ],
    "Finance approvers": ["view_deal", "view_group", "view_member", "view_signal"],
    "Fraud reviewers": ["view_deal", "view_group", "view_member"],
    "Analysts": ["view_deal", "view_tier", "view_group", "view_member", "view_signal"],
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
            *Permission.objects.filter(content_type__app_label="groupbuy", codename__in=codenames)
        )


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in GRANTS.items():
        group = Group.objects.filter(name=name).first()
        if group:
            group.permissions.remove(
                *Permission.objects.filter(content_type__app_label="groupbuy", codename__in=codenames)
            )


class Migration(migrations.Migration):
    dependencies = [("groupbuy", "0001_initial"), ("campaigns", "0002_roles")]

    operations = [migrations.RunPython(grant, revoke)]
