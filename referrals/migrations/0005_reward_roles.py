"""What each staff role may do with referrals and rewards."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GRANTS = {
    "Campaign managers": [
        "add_rewardrule",
        "change_rewardrule",
        "delete_rewardrule",
        "view_rewardrule",
        "view_reward",
        "view_participant",
        "view_referral",
        "view_sharelink",
    ],
    # Approving and rejecting rewards; amounts are read-only for everyone.
    "Finance approvers": ["view_rewardrule", "view_reward", "change_reward", "view_participant"],
    "Fraud reviewers": [
        "view_reward",
        "change_reward",
        "view_participant",
        "change_participant",
        "view_referral",
        "view_sharelink",
    ],
    "Analysts": ["view_rewardrule", "view_reward", "view_participant", "view_referral", "view_sharelink"],
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
            *Permission.objects.filter(content_type__app_label="referrals", codename__in=codenames)
        )


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in GRANTS.items():
        group = Group.objects.filter(name=name).first()
        if group:
            group.permissions.remove(
                *Permission.objects.filter(content_type__app_label="referrals", codename__in=codenames)
            )


class Migration(migrations.Migration):
    dependencies = [
        ("referrals", "0004_rewards"),
        ("campaigns", "0002_roles"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
