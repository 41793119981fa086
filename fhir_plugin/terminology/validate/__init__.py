"""CodeSystem/$validate-code, ValueSet/$validate-code and ValueSet/$batch-validate-code.

operation.py gives the verdict; codings.py checks one coding in its code system (versions.py
chooses the version, display.py judges the display), membership.py checks it against the value
set, status.py adds notes about the status of what was used; context.py holds what one request
knows while it is answered.
"""

from .operation import batch_validate, validate_code

__all__ = ["batch_validate", "validate_code"]
