"""The web page behind a poster's QR code, for whoever scans it outside WeChat."""

from django.shortcuts import render

from referrals.models import ShareLink


def share_landing(request, code: str):
    link = ShareLink.objects.select_related("campaign", "sharer").filter(code=code).first()
    visible = link is not None and link.campaign.status not in ("draft", "archived")
    context = {"link": link if visible else None, "code": code}
    return render(request, "referrals/share_landing.html", context, status=200 if visible else 404)
