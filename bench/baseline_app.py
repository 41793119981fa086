"""The baseline: a hello-world Flask app, served by the same gunicorn settings as fhir_plugin.

Every figure in bench/results is reported as a ratio to this app measured in the same run, so
that the numbers mean something on a shared, noisy machine.
"""

from flask import Flask, Response

app = Flask("baseline")


@app.get("/hello")
def hello() -> Response:
    return Response('{"resourceType":"Parameters"}', mimetype="application/fhir+json")
