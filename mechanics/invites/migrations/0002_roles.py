"""Who may set up invite tasks and who may see participants' progress."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GRANTS = {
    "Campaign managers": [
        "add_invitetask",
        "change_invitetask",
        "delete_invitetask",
        "view_invitetask",
        "view_taskprogress",
        "view_tierreached",
    ],
    "Fraud reviewers": ["view_taskprogress", "view_tierreached"],
    "Analysts": ["view_invitetask", "view_taskprogress", "view_tierreached"],
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
            *Permission.objects.filter(content_type__app_label="invites", codename__in=codenames)
        )


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in GRANTS.items():
        group = Group.objects.filter(name=name).first()
        if group:
            group.permissions.remove(
                *Permission.objects.filter(content_type__app_label="invites", codename__in=codenames)
            )


class Migration(migrations.Migration):
    dependencies = [("invites", "0001_initial"), ("campaigns", "0002_roles")]

    operations = [migrations.RunPython(grant, revoke)]
