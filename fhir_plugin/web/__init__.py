"""Flask only: thin views, request parsing, rendering and content negotiation."""
