"""Cards in the admin: the campaign's card settings, templates with a live preview, and the
cards sharers made (with who received them), which ops can hide and restore."""

from django.contrib import admin
from django.db.models import Count, Sum
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html

from referrals.admin_actions import run_each
from referrals.services.compliance import campaign_rules_text_refresh

from . import render, services
from .compliance import launch_findings
from .models import CARD_KINDS, Card, CardConfig, CardReceipt, CardTemplate


def _limit_to_card_campaigns(db_field, kwargs):
    if db_field.name == "campaign":
        from campaigns.models import Campaign

        kwargs["queryset"] = Campaign.objects.filter(kind__in=CARD_KINDS)
    return kwargs


@admin.register(CardConfig)
class CardConfigAdmin(admin.ModelAdmin):
    list_display = ["campaign", "kind", "campaign_status", "share_title", "message_max_length", "cards_made"]
    list_filter = ["campaign__kind", "campaign__status"]
    list_select_related = ["campaign"]
    search_fields = ["campaign__name", "campaign__slug", "share_title"]
    readonly_fields = ["compliance", "created_at", "updated_at"]
    fields = [
        "campaign",
        "share_title",
        ("message_max_length", "message_max_lines"),
        "blocked_words",
        "cards_per_day",
        "compliance",
        ("created_at", "updated_at"),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_cards=Count("campaign__cards"))

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        return super().formfield_for_foreignkey(
            db_field, request, **_limit_to_card_campaigns(db_field, kwargs)
        )

    @admin.display(description="kind", ordering="campaign__kind")
    def kind(self, obj: CardConfig) -> str:
        return obj.campaign.get_kind_display()

    @admin.display(description="status", ordering="campaign__status")
    def campaign_status(self, obj: CardConfig) -> str:
        return obj.campaign.get_status_display()

    @admin.display(description="cards made", ordering="_cards")
    def cards_made(self, obj: CardConfig) -> int:
        return obj._cards

    @admin.display(description="launch check")
    def compliance(self, obj: CardConfig) -> str:
        if not obj.pk:
            return "Save to run the launch check."
        found = launch_findings(obj.campaign)
        return " ".join(found) if found else "Nothing blocks the launch of the card mechanic."

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        campaign_rules_text_refresh(campaign_id=obj.campaign_id)


def preview_html(obj: CardTemplate | None):
    if obj is None or not obj.pk or not obj.background:
        return "Save the template to see a preview."
    url = reverse("admin:cards_cardtemplate_preview", args=[obj.pk])
    return format_html(
        '<a href="{0}?v={1}" target="_blank"><img src="{0}?v={1}" alt="Preview of {2}" '
        'style="max-height:360px;border:1px solid #ccc"></a>',
        url,
        obj.version,
        obj.name,
    )


@admin.register(CardTemplate)
class CardTemplateAdmin(admin.ModelAdmin):
    list_display = ["name", "campaign", "is_active", "position", "thumbnail", "cards", "opened", "accepted"]
    list_filter = ["is_active", "campaign"]
    list_select_related = ["campaign"]
    list_editable = ["is_active", "position"]
    search_fields = ["name", "caption", "campaign__name"]
    readonly_fields = ["preview", "width", "height", "version"]
    fieldsets = [
        (None, {"fields": ["campaign", "name", ("is_active", "position"), "background", "caption"]}),
        (
            "Layout (pixels from the top left)",
            {
                "fields": [
                    ("avatar_x", "avatar_y", "avatar_size"),
                    ("nickname_x", "nickname_y", "nickname_size", "nickname_color"),
                    ("message_x", "message_y", "message_width", "message_size", "message_color"),
                    ("qr_x", "qr_y", "qr_size"),
                ]
            },
        ),
        ("Preview", {"fields": ["preview", ("width", "height", "version")]}),
    ]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(_cards=Count("cards"), _opens=Sum("cards__opens"), _accepts=Sum("cards__accepts"))
        )

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        return super().formfield_for_foreignkey(
            db_field, request, **_limit_to_card_campaigns(db_field, kwargs)
        )

    @admin.display(description="cards", ordering="_cards")
    def cards(self, obj) -> int:
        return obj._cards

    @admin.display(description="opens", ordering="_opens")
    def opened(self, obj) -> int:
        return obj._opens or 0

    @admin.display(description="made their own", ordering="_accepts")
    def accepted(self, obj) -> int:
        return obj._accepts or 0

    @admin.display(description="")
    def thumbnail(self, obj: CardTemplate):
        if not obj.background:
            return ""
        url = reverse("admin:cards_cardtemplate_preview", args=[obj.pk])
        return format_html('<img src="{}?v={}" alt="" style="height:64px">', url, obj.version)

    @admin.display(description="Preview")
    def preview(self, obj: CardTemplate):
        return preview_html(obj)

    def get_urls(self):
        return [
            path(
                "<int:pk>/preview.png",
                self.admin_site.admin_view(self.preview_view),
                name="cards_cardtemplate_preview",
            ),
            *super().get_urls(),
        ]

    def preview_view(self, request, pk: int):
        template = get_object_or_404(CardTemplate.objects.select_related("campaign"), pk=pk)
        if not self.has_view_permission(request, template):
            return HttpResponse(status=403)
        config = CardConfig.objects.filter(campaign_id=template.campaign_id).first()
        try:
            png = render.render_template_preview(
                template, max_lines=config.message_max_lines if config else 3
            )
        except (OSError, ValueError) as exc:
            return HttpResponse(f"Cannot render this template: {exc}", status=422, content_type="text/plain")
        return HttpResponse(png, content_type="image/png")


class ReceiptInline(admin.TabularInline):
    model = CardReceipt
    extra = 0
    fields = ["receiver", "opened_at", "accepted_at", "attributed"]
    readonly_fields = fields
    can_delete = False
    verbose_name_plural = "Receivers"

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class HasMessageFilter(admin.SimpleListFilter):
    title = "message"
    parameter_name = "message"

    def lookups(self, request, model_admin):
        return [("yes", "With a personal message"), ("no", "Caption only")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.exclude(message="")
        if self.value() == "no":
            return queryset.filter(message="")
        return queryset


@admin.register(Card)
class CardAdmin(admin.ModelAdmin):
    list_display = [
        "code",
        "campaign",
        "sharer",
        "template",
        "excerpt",
        "status",
        "opens",
        "accepts",
        "created_at",
    ]
    list_filter = ["status", HasMessageFilter, "campaign", ("created_at", admin.DateFieldListFilter)]
    list_select_related = ["campaign", "sharer", "template"]
    search_fields = ["code", "message", "sharer__nickname", "=sharer__openid"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "code",
        "campaign",
        "sharer",
        "template",
        "link",
        "message",
        "status",
        "hidden_reason",
        "hidden_by",
        "opens",
        "accepts",
        "image",
        "created_at",
        "updated_at",
    ]
    exclude = ["message_digest"]
    inlines = [ReceiptInline]
    actions = ["hide", "restore"]

    def has_add_permission(self, request) -> bool:
        return False  # cards are made by sharers in the mini program

    @admin.display(description="message")
    def excerpt(self, obj: Card) -> str:
        return (obj.message[:40] + "…") if len(obj.message) > 40 else obj.message

    @admin.display(description="image")
    def image(self, obj: Card):
        url = reverse("admin:cards_card_image", args=[obj.pk])
        return format_html('<img src="{}" alt="" style="max-height:360px;border:1px solid #ccc">', url)

    def get_urls(self):
        return [
            path("<int:pk>/image.png", self.admin_site.admin_view(self.image_view), name="cards_card_image"),
            *super().get_urls(),
        ]

    def image_view(self, request, pk: int):
        card = get_object_or_404(Card.objects.select_related("template", "sharer", "link", "campaign"), pk=pk)
        if not self.has_view_permission(request, card):
            return HttpResponse(status=403)
        config = CardConfig.objects.filter(campaign_id=card.campaign_id).first()
        png, _ = render.card_png(card, max_lines=config.message_max_lines if config else 3)
        return HttpResponse(png, content_type="image/png")

    @admin.action(description="Hide the selected cards (receivers see “taken down”)", permissions=["change"])
    def hide(self, request, queryset):
        run_each(
            self,
            request,
            queryset.values_list("pk", flat=True),
            lambda pk: services.card_hide(card_id=pk, by=request.user, reason=f"hidden by {request.user}"),
            lambda done: f"Hid {len(done)} card(s).",
        )

    @admin.action(description="Restore the selected cards", permissions=["change"])
    def restore(self, request, queryset):
        run_each(
            self,
            request,
            queryset.values_list("pk", flat=True),
            lambda pk: services.card_restore(card_id=pk, by=request.user),
            lambda done: f"Restored {len(done)} card(s).",
        )
