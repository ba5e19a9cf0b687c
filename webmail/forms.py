from django import forms

from settings_app.forms import no_control_characters
from webmail import imap


class SignInForm(forms.Form):
    password = forms.CharField(
        label="Email password",
        max_length=256,
        strip=True,
        validators=[no_control_characters],
        widget=forms.PasswordInput(
            render_value=False, attrs={"autocomplete": "current-password", "autofocus": True}
        ),
    )


class FolderField(forms.CharField):
    """An IMAP folder name from a URL or a form; control characters are refused."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 500)
        super().__init__(strip=False, validators=[no_control_characters], **kwargs)


class UidsField(forms.Field):
    """One or more message numbers (IMAP UIDs)."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value):
        if not value:
            return []
        values = value if isinstance(value, (list, tuple)) else [value]
        try:
            uids = [int(item) for item in values]
        except (TypeError, ValueError):
            raise forms.ValidationError("That is not a message.") from None
        if any(uid <= 0 or uid >= 2**32 for uid in uids):
            raise forms.ValidationError("That is not a message.")
        return uids


class MailboxQueryForm(forms.Form):
    """What the message list shows: a folder, a page, maybe a search."""

    folder = FolderField(required=False)
    page = forms.IntegerField(required=False, min_value=1)
    q = forms.CharField(
        required=False,
        max_length=200,
        label="Search",
        validators=[no_control_characters],
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Search this folder"}),
    )
    field = forms.ChoiceField(
        required=False,
        label="Search in",
        choices=[("sender", "Sender"), ("subject", "Subject"), ("text", "Text")],
    )

    def clean_folder(self):
        return self.cleaned_data["folder"] or "INBOX"

    def clean_page(self):
        return self.cleaned_data["page"] or 1

    def clean_field(self):
        return self.cleaned_data["field"] or "subject"


class MessageQueryForm(forms.Form):
    folder = FolderField(required=False)

    def clean_folder(self):
        return self.cleaned_data["folder"] or "INBOX"


class ActionForm(forms.Form):
    ACTIONS = {
        "read": "Mark as read",
        "unread": "Mark as unread",
        "flag": "Flag",
        "unflag": "Remove flag",
        "move": "Move",
        "delete": "Delete",
    }

    folder = FolderField()
    uid = UidsField(error_messages={"required": "Choose at least one message."})
    action = forms.ChoiceField(choices=list(ACTIONS.items()))
    target = FolderField(required=False)
    confirmed = forms.BooleanField(required=False)
    next = forms.CharField(required=False, max_length=2000)

    def clean(self):
        cleaned_data = super().clean()
        if cleaned_data.get("action") == "move" and not cleaned_data.get("target"):
            self.add_error("target", "Choose a folder to move to.")
        uids = cleaned_data.get("uid") or []
        if len(uids) > imap.PAGE_SIZE:
            self.add_error("uid", f"Choose at most {imap.PAGE_SIZE} messages at a time.")
        return cleaned_data


# Writing mail ---------------------------------------------------------------------------------


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several uploaded files from one input (none is fine)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def clean(self, data, initial=None):
        files = data if isinstance(data, (list, tuple)) else [data] if data else []
        return [super(MultipleFileField, self).clean(item, initial) for item in files]


class PartsField(forms.Field):
    """Part numbers of attachments kept on the mail server (of a draft or a forward)."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value):
        values = value if isinstance(value, (list, tuple)) else [value] if value else []
        try:
            return [imap.check_part(str(item)) for item in values]
        except imap.UnsafeInput:
            raise forms.ValidationError("That is not an attachment.") from None


class ComposeForm(forms.Form):
    """A message to send or keep as a draft; header fields refuse control characters."""

    to = forms.CharField(
        label="To",
        required=False,
        max_length=10_000,
        validators=[no_control_characters],
        help_text="Separate addresses with commas.",
    )
    cc = forms.CharField(
        label="Cc", required=False, max_length=10_000, validators=[no_control_characters]
    )
    bcc = forms.CharField(
        label="Bcc",
        required=False,
        max_length=10_000,
        validators=[no_control_characters],
        help_text="Bcc recipients get the message without the others seeing them.",
    )
    subject = forms.CharField(required=False, max_length=900, validators=[no_control_characters])
    body = forms.CharField(
        label="Message",
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 18}),
    )
    attachments = MultipleFileField(label="Attach files")
    action = forms.ChoiceField(choices=[("send", "Send"), ("draft", "Save draft")])
    token = forms.RegexField(regex=r"^[A-Za-z0-9_-]{16,64}$", widget=forms.HiddenInput)
    draft_uid = forms.IntegerField(
        required=False, min_value=1, max_value=2**32 - 1, widget=forms.HiddenInput
    )
    keep = PartsField(required=False)
    # A reply or forward: the original, flagged once sent, and the threading headers.
    origin_folder = FolderField(required=False, widget=forms.HiddenInput)
    origin_uid = forms.IntegerField(
        required=False, min_value=1, max_value=2**32 - 1, widget=forms.HiddenInput
    )
    origin_kind = forms.ChoiceField(
        required=False,
        choices=[("", ""), ("reply", "reply"), ("forward", "forward")],
        widget=forms.HiddenInput,
    )
    in_reply_to = forms.CharField(
        required=False,
        max_length=1000,
        validators=[no_control_characters],
        widget=forms.HiddenInput,
    )
    references = forms.CharField(
        required=False,
        max_length=10_000,
        validators=[no_control_characters],
        widget=forms.HiddenInput,
    )

    def clean(self):
        data = super().clean()
        if data.get("origin_kind") and not (data.get("origin_folder") and data.get("origin_uid")):
            raise forms.ValidationError("The message being answered is missing.")
        return data
