from django import forms
from django.core.validators import RegexValidator
from django.urls import reverse
from django.utils.html import format_html
from django.views.decorators.debug import sensitive_variables

from settings_app import crypto, microsoft, services
from settings_app.models import Profile, signature_text

# Control characters (CR and LF above all) would break the IMAP LOGIN command.
no_control_characters = RegexValidator(
    r"[\x00-\x1f\x7f]", inverse_match=True, message="This cannot contain control characters."
)
phone_number = RegexValidator(r"^[0-9+()\-. ]*$", message="Use digits, spaces and + ( ) - . only.")


class EmailPasswordField(forms.CharField):
    """A write-only password input: never pre-filled, surrounding whitespace trimmed."""

    def __init__(self, **kwargs):
        super().__init__(
            required=False,
            max_length=256,
            strip=True,
            widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
            validators=[no_control_characters],
            **kwargs,
        )


class SignatureField(forms.CharField):
    """A plain-text email signature: the browser's CR LF kept as LF, other control characters
    refused."""

    def __init__(self, **kwargs):
        kwargs.setdefault("label", "Email signature")
        kwargs.setdefault(
            "help_text",
            "Plain text put under new messages, replies and forwards you write in Webmail, "
            'after a "-- " line. Leave blank for none.',
        )
        super().__init__(
            required=False,
            max_length=2000,
            widget=forms.Textarea(attrs={"rows": 4}),
            validators=[signature_text],
            **kwargs,
        )

    def to_python(self, value):
        return super().to_python(value).replace("\r\n", "\n")


def password_choice_errors(cleaned_data: dict, profile: Profile) -> dict[str, str]:
    """Check the password and access choices together; return errors by field name."""
    errors = {}
    new_password = cleaned_data.get("email_password")
    clear = cleaned_data.get("clear_email_password")
    if new_password and crypto.keys_problem():
        errors["email_password"] = (
            "Passwords cannot be saved right now because encryption is not set up on this "
            "server. Please tell your administrator."
        )
    if new_password and clear:
        errors["clear_email_password"] = "Enter a new password or remove the saved one, not both."
    keeps_saved = profile.email_password_status == Profile.PasswordStatus.SAVED and not clear
    automatic = cleaned_data.get("webmail_access") == Profile.WebmailAccess.AUTOMATIC
    # With Microsoft 365 sign-in, Automatic uses the connected account instead of a password.
    microsoft = (
        cleaned_data.get("email_sign_in") or profile.email_sign_in
    ) == Profile.EmailSignIn.MICROSOFT
    if automatic and not microsoft and not (new_password or keeps_saved):
        errors["webmail_access"] = (
            "Automatic sign-in needs a saved email password. Enter your app password above, "
            "or choose Manual."
        )
    return errors


class SettingsForm(forms.Form):
    first_name = forms.CharField(max_length=150, required=False, validators=[no_control_characters])
    last_name = forms.CharField(max_length=150, required=False, validators=[no_control_characters])
    email = forms.EmailField(
        label="Email address",
        help_text="Also the user name for your mailbox.",
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    phone = forms.CharField(
        max_length=32,
        required=False,
        validators=[phone_number],
        widget=forms.TextInput(attrs={"autocomplete": "tel", "inputmode": "tel"}),
    )
    signature = SignatureField()
    email_password = EmailPasswordField(label="Email password")
    clear_email_password = forms.BooleanField(required=False, label="Remove saved password")
    webmail_access = forms.ChoiceField(
        choices=Profile.WebmailAccess.choices,
        widget=forms.RadioSelect,
        help_text="Automatic signs you in to Webmail with the saved password; "
        "Manual asks for the password each time.",
    )

    email_sign_in = forms.ChoiceField(
        label="Email sign-in",
        choices=Profile.EmailSignIn.choices,
        widget=forms.RadioSelect,
        help_text="For Microsoft 365, connect your Microsoft account after saving: no password "
        "is needed. For other mail services, use an app password.",
    )

    def __init__(self, *args, user, profile: Profile, **kwargs):
        kwargs.setdefault(
            "initial",
            {
                "first_name": user.first_name,
                "last_name": user.last_name,
                "email": user.email,
                "phone": profile.phone,
                "signature": profile.signature,
                "webmail_access": profile.webmail_access,
                "email_sign_in": profile.email_sign_in,
            },
        )
        super().__init__(*args, **kwargs)
        if not microsoft.is_configured():
            del self.fields["email_sign_in"]
        state = {
            Profile.PasswordStatus.SAVED: "A password is saved; leave this blank to keep it.",
            Profile.PasswordStatus.NOT_SET: "No password is saved yet.",
            Profile.PasswordStatus.NEEDS_REENTRY: (
                "The saved password can no longer be read; please enter it again."
            ),
        }[profile.email_password_status]
        self.fields["email_password"].help_text = format_html(
            "Paste the app password you created for your email account. {} "
            '<a href="{}">How do I create an app password?</a>',
            state,
            reverse("help_email_password"),
        )
        self.user = user
        self.profile = profile

    def clean_email(self):
        email = self.cleaned_data["email"]
        if services.email_taken(email, by_other_than=self.user):
            raise forms.ValidationError(services.EMAIL_TAKEN)
        return email

    def clean(self):
        cleaned_data = super().clean()
        for field, error in password_choice_errors(cleaned_data, self.profile).items():
            self.add_error(field, error)
        return cleaned_data

    @sensitive_variables("data")
    def save(self) -> bool:
        """Save, or add an error and return False when a change saved meanwhile conflicts."""
        data = self.cleaned_data
        try:
            services.settings_update(
                user=self.user,
                first_name=data["first_name"],
                last_name=data["last_name"],
                email=data["email"],
                phone=data["phone"],
                signature=data["signature"],
                new_password=data["email_password"],
                clear_password=data["clear_email_password"],
                webmail_access=data["webmail_access"],
                email_sign_in=data.get("email_sign_in") or None,
            )
        except services.SettingsConflict as conflict:
            self.add_error(conflict.field, conflict.message)
            return False
        return True
