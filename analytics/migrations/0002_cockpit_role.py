from django.contrib.auth.management import create_permissions
from django.db import migrations

GRANTS = {"Analysts": ["view_cockpit"], "Campaign managers": ["view_cockpit"]}


def grant(apps, schema_editor):
    """Analysts and campaign managers see the cockpit and the analytics API."""
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in GRANTS.items():
        Group.objects.get_or_create(name=name)[0].permissions.add(
            *Permission.objects.filter(content_type__app_label="analytics", codename__in=codenames)
        )


def revoke(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    Permission.objects.filter(content_type__app_label="analytics", codename="view_cockpit").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0001_initial"),
        ("campaigns", "0002_roles"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
