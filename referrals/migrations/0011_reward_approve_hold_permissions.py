"""Finance approves and pays; fraud reviewers hold and release; neither changes amounts."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GRANTS = {
    "Finance approvers": [
        "approve_reward",
        "view_payoutbatch",
        "change_payoutbatch",
        "view_payout",
        "view_reconciliation",
    ],
    "Fraud reviewers": ["hold_reward"],
}
# Moves are granted by the permissions above now, not by "change reward".
REVOKES = {"Fraud reviewers": ["change_reward"], "Finance approvers": ["change_reward"]}


def _perms(apps, codenames):
    Permission = apps.get_model("auth", "Permission")
    return Permission.objects.filter(content_type__app_label="referrals", codename__in=codenames)


def forward(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    for name, codenames in GRANTS.items():
        Group.objects.get_or_create(name=name)[0].permissions.add(*_perms(apps, codenames))
    for name, codenames in REVOKES.items():
        Group.objects.get_or_create(name=name)[0].permissions.remove(*_perms(apps, codenames))


def backward(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for name, codenames in GRANTS.items():
        Group.objects.get_or_create(name=name)[0].permissions.remove(*_perms(apps, codenames))
    for name, codenames in REVOKES.items():
        Group.objects.get_or_create(name=name)[0].permissions.add(*_perms(apps, codenames))


class Migration(migrations.Migration):
    dependencies = [("referrals", "0010_coupon_roles")]

    operations = [
        migrations.AlterModelOptions(
            name="reward",
            options={
                "ordering": ["-created_at", "-id"],
                "permissions": [
                    ("approve_reward", "Can approve and reject rewards and batch them for payment"),
                    ("hold_reward", "Can hold rewards for a fraud review and release them"),
                ],
            },
        ),
        migrations.RunPython(forward, backward),
    ]
