"""Analysts and campaign managers may export reports and set up daily ones."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

EXPORTERS = ["Analysts", "Campaign managers"]
CODENAMES = [
    "add_exportjob",
    "view_exportjob",
    "delete_exportjob",
    "add_scheduledreport",
    "change_scheduledreport",
    "delete_scheduledreport",
    "view_scheduledreport",
]


def grant(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permissions = Permission.objects.filter(content_type__app_label="reports", codename__in=CODENAMES)
    for name in EXPORTERS:
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.add(*permissions)


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permissions = Permission.objects.filter(content_type__app_label="reports", codename__in=CODENAMES)
    for group in Group.objects.filter(name__in=EXPORTERS):
        group.permissions.remove(*permissions)


class Migration(migrations.Migration):
    dependencies = [
        ("reports", "0001_initial"),
        ("campaigns", "0002_roles"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
