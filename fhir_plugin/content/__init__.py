"""Loading content: files, directories and Bundles of FHIR JSON, R4 or R5, validated once."""

from .loader import load_paths, load_resource, read_paths

__all__ = ["load_paths", "load_resource", "read_paths"]
