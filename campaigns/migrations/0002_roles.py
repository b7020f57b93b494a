"""The staff roles, as groups. Later apps give these groups their own permissions."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLES = ["Campaign managers", "Fraud reviewers", "Finance approvers", "Analysts"]
CAMPAIGN_MODELS = ["campaign", "channel", "postertemplate"]


def create_roles(apps, schema_editor):
    # Permissions are normally created after all migrations ran; make them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    groups = {name: Group.objects.get_or_create(name=name)[0] for name in ROLES}

    campaign_perms = Permission.objects.filter(content_type__app_label="campaigns")
    managers = [
        p
        for p in campaign_perms
        if p.content_type.model in CAMPAIGN_MODELS or p.codename == "view_campaigntransition"
    ]
    groups["Campaign managers"].permissions.add(*managers)
    groups["Analysts"].permissions.add(*campaign_perms.filter(codename__startswith="view_"))


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
