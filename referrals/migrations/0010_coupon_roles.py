"""Who may see and upload coupon code banks."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GRANTS = {
    "Campaign managers": ["add_couponcode", "view_couponcode"],
    "Finance approvers": ["view_couponcode"],
    "Fraud reviewers": ["view_couponcode"],
    "Analysts": ["view_couponcode"],
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
    dependencies = [("referrals", "0009_payout_attempts_clawback_recovery_coupons_refunds")]

    operations = [migrations.RunPython(grant, revoke)]
