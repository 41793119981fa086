"""Loading content: files, directories, Bundles and FHIR packages of FHIR JSON, R4 or R5, validated once."""

from .limits import Limits
from .loader import LoadReport, load_paths, load_resource, read_paths, scan_paths, validate_paths
from .progress import LoadProgress, TerminalProgress

__all__ = ["LoadProgress", "LoadReport", "Limits", "TerminalProgress", "load_paths", "load_resource", "read_paths",
           "scan_paths", "validate_paths"]
