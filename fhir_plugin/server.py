"""The production WSGI server: gunicorn, run in-process with the settings `make serve` uses.

One function so that the benchmark's hello-world baseline runs under exactly the same server
and worker settings as fhir_plugin itself.
"""

from __future__ import annotations

from typing import Any


def run_gunicorn(app: Any, host: str, port: int, workers: int) -> None:
    """Serve `app` until interrupted. The app is built before the fork (preload), so every worker
    shares the one loaded index copy-on-write."""
    from gunicorn.app.base import BaseApplication

    class Server(BaseApplication):
        def load_config(self) -> None:
            options = {"bind": f"{host}:{port}", "workers": workers, "preload_app": True,
                       # gunicorn >= 25.1 opens a control socket at one fixed path per user, so two
                       # servers on one machine would take it from each other; we do not use it.
                       "control_socket_disable": True}
            for key, value in options.items():
                if key in self.cfg.settings:  # control_socket_disable is unknown before 25.1
                    self.cfg.set(key, value)

        def load(self) -> Any:
            return app

    Server().run()
