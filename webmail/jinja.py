"""The Jinja2 environment of the hot partials (templates/**/*.jinja).

Django's template language took longer to render a folder page or a message page than the
mail server took to answer for it; the parts of those pages that change with the mail are
Jinja2 templates, inside pages that extend base.html as every other page does. The helpers
here are the Django ones those templates need, under the same names.
"""

from django.template.defaultfilters import filesizeformat, urlize
from django.urls import reverse
from django.utils import dateformat, timezone
from jinja2 import Environment

from webmail.links import attachment_url, folder_url


def url(name: str, *args) -> str:
    return reverse(name, args=args)


def local_date(value, format_string: str) -> str:
    """Django's `date` filter: `value` in the current time zone, formatted."""
    return dateformat.format(timezone.localtime(value), format_string)


def environment(**options) -> Environment:
    options.pop("autoescape", None)  # always on, whatever the settings say
    env = Environment(autoescape=True, **options)
    env.globals.update(url=url, attachment_url=attachment_url)
    env.filters.update(
        folder_url=folder_url, filesizeformat=filesizeformat, urlize=urlize, date=local_date
    )
    return env
