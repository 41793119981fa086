"""The web UI: server-rendered pages (Jinja, autoescaped) over the same service the FHIR views use.

Pages work without JavaScript; ui.js (a static file: the Content-Security-Policy allows no inline
script) only adds type-ahead to the code system search. Each page shows the FHIR request that gives
the same answer. The FHIR views hand a request to `resource_page` only when its Accept names
text/html (web/views.py `read`), so FHIR JSON stays the default for every other client.
"""

from __future__ import annotations

from . import checks  # noqa: F401  (registers the checker's routes on `ui`)
from .pages import resource_page, ui, wants_html

__all__ = ["resource_page", "ui", "wants_html"]
