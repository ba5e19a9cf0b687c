from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.views.decorators.debug import sensitive_variables

from settings_app.forms import EmailPasswordField, password_choice_errors
from settings_app.models import Profile

User = get_user_model()


class ProfileAdminForm(forms.ModelForm):
    """Contact information with a write-only email password."""

    email_password = EmailPasswordField(
        label="New email password", help_text="Leave blank to keep the saved password."
    )
    clear_email_password = forms.BooleanField(required=False, label="Remove saved password")

    class Meta:
        model = Profile
        fields = ["phone", "webmail_access"]

    def clean(self):
        cleaned_data = super().clean()
        for field, error in password_choice_errors(cleaned_data, self.instance).items():
            self.add_error(field, error)
        return cleaned_data

    @sensitive_variables("password")
    def save(self, commit=True):
        profile = super().save(commit=False)
        password = self.cleaned_data.get("email_password")
        if self.cleaned_data.get("clear_email_password"):
            profile.clear_email_password()
        if password:
            profile.set_email_password(password)
        if commit:
            profile.save()
        return profile


class ProfileInline(admin.StackedInline):
    model = Profile
    form = ProfileAdminForm
    can_delete = False
    fields = [
        "phone",
        "email_password_state",
        "email_password",
        "clear_email_password",
        "webmail_access",
        "email_password_rejected_at",
    ]
    readonly_fields = ["email_password_state", "email_password_rejected_at"]

    @admin.display(description="Email password")
    def email_password_state(self, profile):
        return profile.email_password_status.label


class UserWithProfileAdmin(UserAdmin):
    inlines = [ProfileInline]
    list_display = [
        "username",
        "email",
        "first_name",
        "last_name",
        "is_staff",
        "webmail_access",
        "email_password_saved",
    ]
    list_filter = [*UserAdmin.list_filter, "profile__webmail_access"]
    list_select_related = ["profile"]
    actions = ["clear_email_passwords", "switch_to_manual"]

    @admin.display(description="Webmail access", ordering="profile__webmail_access")
    def webmail_access(self, user):
        profile = getattr(user, "profile", None)
        return (profile or Profile()).get_webmail_access_display()

    @admin.display(description="Email password saved", boolean=True)
    def email_password_saved(self, user):
        profile = getattr(user, "profile", None)
        return bool(profile and profile.has_email_password)

    @admin.action(description="Clear saved email passwords")
    def clear_email_passwords(self, request, queryset):
        profiles = Profile.objects.filter(user__in=queryset).exclude(email_password_token="")
        count = 0
        for profile in profiles:
            profile.clear_email_password()
            profile.save()
            count += 1
        self.message_user(request, f"Cleared {count} saved email password(s).", messages.SUCCESS)

    @admin.action(description="Switch webmail access to Manual")
    def switch_to_manual(self, request, queryset):
        count = (
            Profile.objects.filter(user__in=queryset)
            .exclude(webmail_access=Profile.WebmailAccess.MANUAL)
            .update(webmail_access=Profile.WebmailAccess.MANUAL)
        )
        self.message_user(request, f"Switched {count} user(s) to Manual.", messages.SUCCESS)


admin.site.unregister(User)
admin.site.register(User, UserWithProfileAdmin)
