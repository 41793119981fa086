"""The layer between content and web: what ties loaded content to a running service.

Building a service from content files (build.py) and the on-disk cache of compiled content
(compiled.py); the Runtime of a process (live.py): the content loaded at run time on top of the
start-up content (store.py, and layer.py: what a process serves of it), the resources requests
bring (overlay.py), the answer cache (answers.py), and the figures of every cache.
"""

from .build import load_service
from .compiled import CompiledContentCache
from .live import Runtime

__all__ = ["CompiledContentCache", "Runtime", "load_service"]
