"""The admin's "add export" form, built from the chosen report's parameters."""

from django import forms
from django.contrib.admin.widgets import AdminDateWidget

from campaigns.models import Campaign
from config.errors import ApplicationError

from .models import Format, ScheduledReport
from .registry import Param, Report, report_list


def _field(param: Param) -> forms.Field:
    common = {"label": param.label or param.name, "required": param.required, "help_text": param.help}
    if param.kind == "campaign":
        return forms.ModelChoiceField(queryset=Campaign.objects.order_by("-starts_at", "-id"), **common)
    if param.kind == "date":
        return forms.DateField(widget=AdminDateWidget, **common)
    if param.kind == "choice":
        return forms.ChoiceField(choices=[("", "—"), *param.choices], **common)
    if param.kind == "choices":
        return forms.MultipleChoiceField(
            choices=param.choices, widget=forms.CheckboxSelectMultiple, **(common | {"required": False})
        )
    if param.kind == "bool":
        return forms.BooleanField(**(common | {"required": False}))
    return forms.CharField(max_length=2000, **common)  # names


class ExportForm(forms.Form):
    """Fields: the report's parameters, then the format. Cleans through the registry, so the
    form accepts exactly what a queued job will accept."""

    def __init__(self, *args, report: Report, **kwargs):
        super().__init__(*args, **kwargs)
        self.report = report
        for param in report.params:
            self.fields[param.name] = _field(param)
        self.fields["format"] = forms.ChoiceField(choices=Format.choices, initial=Format.XLSX)
        self.parameters: dict = {}

    def clean(self):
        data = super().clean()
        raw = {}
        for param in self.report.params:
            value = data.get(param.name)
            if param.kind == "campaign" and value is not None:
                value = value.pk
            elif param.kind == "date" and value is not None:
                value = value.isoformat()
            raw[param.name] = value
        if self.errors:
            return data
        try:
            self.parameters = self.report.clean(raw)
        except ApplicationError as exc:
            for name, message in exc.fields.items():
                self.add_error(name if name in self.fields else None, message)
            if not exc.fields:
                self.add_error(None, exc.message)
        return data


def report_choices() -> list[tuple[str, str]]:
    return [(r.name, r.title) for r in report_list()]


def parameters_help() -> str:
    lines = []
    for r in report_list():
        params = ", ".join(f"{p.name}{'' if p.required else '?'} ({p.kind})" for p in r.params)
        lines.append(f"{r.name}: {params}")
    return "Parameters (? = optional): " + "; ".join(lines)


class ScheduledReportForm(forms.ModelForm):
    report = forms.ChoiceField(choices=report_choices)

    class Meta:
        model = ScheduledReport
        fields = [
            "name",
            "report",
            "parameters",
            "format",
            "time_of_day",
            "time_zone",
            "recipients",
            "is_active",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["parameters"].help_text += " " + parameters_help()
