"""The HL7 terminology test suite (tx-ecosystem `tests/`), run as the official Java runner
(TxTester) runs it: hl7-tx-tests.md sections 3 to 5. No Flask here: a transport function carries
the requests, so the same runner works through a Flask test client and over `requests`.

    from fhir_plugin.txtests import run, requests_transport, detect_version, summary_table, totals_line

    send = requests_transport("http://127.0.0.1:8080/r4")
    results = run(send, detect_version(send))
    print(summary_table(results)); print(totals_line(results))

Modules: manifest (which tests, which files), wire (requests, version detection, transports),
normalize (scrubbing, sorting), compare (the comparator and the verdict on one response), runner
(running, reporting), expected (the expected-failures list), command (`fhir-plugin conformance`).
"""

from .compare import Comparer, Verdict, check_metadata, check_response
from .manifest import TestCase, default_tests_dir, load_cases
from .runner import Result, Runner, run, summary_table, totals_line, write_outputs
from .wire import RunAborted, build_request, detect_version, flask_client_transport, requests_transport

__all__ = [
    "Comparer", "Result", "RunAborted", "Runner", "TestCase", "Verdict", "build_request", "check_metadata",
    "check_response", "default_tests_dir", "detect_version", "flask_client_transport", "load_cases",
    "requests_transport", "run", "summary_table", "totals_line", "write_outputs",
]
