"""The web console, served by aggregate at `/console/`: pages built only on the services' public HTTP API.

`install_console(app, settings)` adds the session routes (a key exchanged once for a cookie), the page
shell, the static assets and the two assets the project builds (country outlines, the runbook table),
all under a strict Content-Security-Policy.
"""

from services.aggregate.console.routes import install_console

__all__ = ["install_console"]
