"""The web interface at /ui: server-rendered pages (Jinja2) with a little JavaScript, for forensic artists,
victim-ID analysts and admins. Every page calls the same use cases as the API, so roles, ownership, validation
and audit are the API's; this package only turns forms into calls and results into pages.

Every script, stylesheet and image is served from /ui/static: the service may run with no internet.
"""
from fimg_service.web.app import error_page, install
from fimg_service.web.session import PREFIX

__all__ = ["PREFIX", "error_page", "install"]
