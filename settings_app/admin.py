from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename, get_user_model
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import UserChangeForm
from django.db import transaction
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables

from settings_app import connection
from settings_app.forms import EmailPasswordField, SignatureField, password_choice_errors
from settings_app.models import AuditEvent, Profile
from settings_app.services import EMAIL_TAKEN, audit_profile_change, email_taken

User = get_user_model()

# The profile fields a password change writes besides the ones the form shows.
PASSWORD_FIELDS = ["email_password_token", "email_password_rejected_at", "webmail_access"]


class UserAdminChangeForm(UserChangeForm):
    """Django's user form, refusing an address another user already has."""

    def clean_email(self):
        email = self.cleaned_data.get("email", "")
        if email_taken(email, by_other_than=self.instance):
            raise forms.ValidationError(EMAIL_TAKEN)
        return email


class ProfileAdminForm(forms.ModelForm):
    """Contact information with a write-only email password."""

    email_password = EmailPasswordField(
        label="New email password", help_text="Leave blank to keep the saved password."
    )
    clear_email_password = forms.BooleanField(required=False, label="Remove saved password")
    signature = SignatureField(help_text="Plain text put under the messages this user writes.")

    class Meta:
        model = Profile
        fields = ["phone", "signature", "webmail_access", "email_sign_in"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "email_sign_in" in self.fields:
            self.fields["email_sign_in"].required = False  # absent means "keep"

    def clean_email_sign_in(self):
        return self.cleaned_data.get("email_sign_in") or self.instance.email_sign_in

    def clean(self):
        cleaned_data = super().clean()
        if self.instance.pk is not None and self.has_changed():
            # The admin's change view runs in one transaction: lock the row until the save and
            # judge the choices by what a rotation or a Settings save may have written since
            # the row was read, which is also what the save keeps.
            locked = Profile.objects.select_for_update().get(pk=self.instance.pk)
            self.instance.email_password_token = locked.email_password_token
            self.instance.email_password_rejected_at = locked.email_password_rejected_at
        for field, error in password_choice_errors(cleaned_data, self.instance).items():
            self.add_error(field, error)
        return cleaned_data

    @sensitive_variables("password")
    def save(self, commit=True):
        profile = super().save(commit=False)
        password = self.cleaned_data.get("email_password")
        columns = {field.name for field in Profile._meta.concrete_fields}
        changed = [name for name in self.changed_data if name in columns]
        if self.cleaned_data.get("clear_email_password"):
            profile.clear_email_password()
            changed += PASSWORD_FIELDS
        if password:
            profile.set_email_password(password)
            changed += PASSWORD_FIELDS
        if commit and profile._state.adding:
            profile.save()
        elif commit:
            # Only what this form changed: never write back a token read before a rotation.
            profile.save(update_fields=sorted(set(changed)))
        return profile


class ProfileInline(admin.StackedInline):
    model = Profile
    form = ProfileAdminForm
    can_delete = False
    fields = [
        "phone",
        "signature",
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

    # Microsoft 365 sign-in: the method and the connection's state, never its tokens.
    fields = [*fields, "email_sign_in", "microsoft_connection"]
    readonly_fields = [*readonly_fields, "microsoft_connection"]

    @admin.display(description="Microsoft 365 account")
    def microsoft_connection(self, profile):
        return _microsoft_summary(profile)


def _microsoft_summary(profile) -> str:
    status = profile.microsoft_status
    if status == Profile.MicrosoftStatus.CONNECTED:
        return f"Connected as {profile.microsoft_account}"
    if status == Profile.MicrosoftStatus.NEEDS_RECONNECTING and profile.microsoft_failed_at:
        return f"Needs reconnecting (since {profile.microsoft_failed_at:%Y-%m-%d %H:%M})"
    return status.label


@method_decorator(sensitive_post_parameters(), name="add_view")
@method_decorator(sensitive_post_parameters(), name="change_view")
class UserWithProfileAdmin(UserAdmin):
    """Users with their contact information; the email password never reaches error reports."""

    form = UserAdminChangeForm
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
    # Microsoft 365 sign-in columns and action.
    list_display = [*list_display, "email_sign_in", "microsoft_connected"]
    actions = [*actions, "disconnect_microsoft"]

    def save_formset(self, request, form, formset, change):
        access_before = {
            inline.instance.pk: inline.initial.get("webmail_access", Profile.WebmailAccess.MANUAL)
            for inline in formset.forms
        }
        super().save_formset(request, form, formset, change)
        for inline in formset.forms:
            if not isinstance(inline, ProfileAdminForm) or inline.instance.pk is None:
                continue
            audit_profile_change(
                actor=request.user,
                subject=inline.instance.user,
                source=AuditEvent.Source.ADMIN,
                password_set=bool(inline.cleaned_data.get("email_password")),
                password_cleared=bool(inline.cleaned_data.get("clear_email_password")),
                access_before=access_before.get(inline.instance.pk) or Profile.WebmailAccess.MANUAL,
                access_after=inline.instance.webmail_access,
            )

    @admin.display(description="Webmail access", ordering="profile__webmail_access")
    def webmail_access(self, user):
        profile = getattr(user, "profile", None)
        return (profile or Profile()).get_webmail_access_display()

    @admin.display(description="Email password saved", boolean=True)
    def email_password_saved(self, user):
        profile = getattr(user, "profile", None)
        return bool(profile and profile.has_email_password)

    def has_change_profile_permission(self, request) -> bool:
        """Let actions that change contact information run only for those who may change both."""
        codename = get_permission_codename("change", Profile._meta)
        return self.has_change_permission(request) and request.user.has_perm(
            f"{Profile._meta.app_label}.{codename}"
        )

    @admin.display(description="Email sign-in", ordering="profile__email_sign_in")
    def email_sign_in(self, user):
        profile = getattr(user, "profile", None)
        return (profile or Profile()).get_email_sign_in_display()

    @admin.display(description="Microsoft account connected", boolean=True)
    def microsoft_connected(self, user):
        profile = getattr(user, "profile", None)
        if profile is None or not profile.microsoft_token:
            return False
        return profile.microsoft_status == Profile.MicrosoftStatus.CONNECTED

    @admin.action(description="Disconnect Microsoft 365 accounts", permissions=["change_profile"])
    def disconnect_microsoft(self, request, queryset):
        count = sum(
            connection.disconnect(actor=request.user, subject=user, source=AuditEvent.Source.ADMIN)
            for user in queryset
        )
        self.message_user(
            request, f"Disconnected {count} Microsoft 365 account(s).", messages.SUCCESS
        )

    # Both actions declare the permission they need, so Django neither offers nor runs them
    # (a crafted POST included) for staff who may only view users.
    @admin.action(description="Clear saved email passwords", permissions=["change_profile"])
    @transaction.atomic
    def clear_email_passwords(self, request, queryset):
        profiles = Profile.objects.filter(user__in=queryset).exclude(email_password_token="")
        count = 0
        for profile in profiles.select_related("user").select_for_update(of=("self",)):
            access_before = profile.webmail_access
            profile.clear_email_password()
            profile.save(update_fields=PASSWORD_FIELDS)
            audit_profile_change(
                actor=request.user,
                subject=profile.user,
                source=AuditEvent.Source.ADMIN,
                password_set=False,
                password_cleared=True,
                access_before=access_before,
                access_after=profile.webmail_access,
            )
            count += 1
        self.message_user(request, f"Cleared {count} saved email password(s).", messages.SUCCESS)

    @admin.action(description="Switch webmail access to Manual", permissions=["change_profile"])
    def switch_to_manual(self, request, queryset):
        profiles = (
            Profile.objects.filter(user__in=queryset)
            .exclude(webmail_access=Profile.WebmailAccess.MANUAL)
            .select_related("user")
        )
        count = 0
        for profile in profiles:
            access_before = profile.webmail_access
            profile.webmail_access = Profile.WebmailAccess.MANUAL
            profile.save(update_fields=["webmail_access"])
            audit_profile_change(
                actor=request.user,
                subject=profile.user,
                source=AuditEvent.Source.ADMIN,
                password_set=False,
                password_cleared=False,
                access_before=access_before,
                access_after=profile.webmail_access,
            )
            count += 1
        self.message_user(request, f"Switched {count} user(s) to Manual.", messages.SUCCESS)


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """The audit trail, read-only: nobody edits or deletes it from the admin."""

    list_display = ["created_at", "actor_name", "subject_name", "action", "source", "detail"]
    list_filter = ["action", "source"]
    search_fields = ["actor_name", "subject_name"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


admin.site.unregister(User)
admin.site.register(User, UserWithProfileAdmin)
