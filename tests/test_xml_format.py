"""The FHIR XML writer and reader (render/xml_writer.py, xml_reader.py, xml_schema.py) on their
own: exact XML for the cases FHIR's XML rules single out (decimals, primitive ids and extensions,
repeating primitives with gaps, the narrative, characters XML cannot carry), a round trip of each,
the order of elements against the FHIR specification's, and what fhir.resources' own XML writer
does with the same documents (why it is not the writer here). Over HTTP: test_http_xml.py.
"""

from __future__ import annotations

import json
import sys
from decimal import Decimal

import pytest
from fhir_xml import from_json, from_xml
from lxml import etree

from fhir_plugin.errors import BodyTooDeep, InvalidBody
from fhir_plugin.fhirversions import FhirVersion
from fhir_plugin.render.xml_reader import read_xml
from fhir_plugin.render.xml_schema import children
from fhir_plugin.render.xml_writer import NotWritable, dumps_xml

R4, R5 = FhirVersion.R4, FhirVersion.R5
HEAD = b"<?xml version='1.0' encoding='UTF-8'?>\n"
TRANSLATION = "http://hl7.org/fhir/StructureDefinition/translation"


def xml(body: str, root: str = "Parameters") -> bytes:
    return HEAD + f'<{root} xmlns="http://hl7.org/fhir">{body}</{root}>'.encode()


def parameter(name: str, **value) -> dict:
    return {"resourceType": "Parameters", "parameter": [{"name": name, **value}]}


# --- the writer, exactly ---------------------------------------------------------------------------

WRITTEN = [
    ("decimal as written", parameter("w", valueDecimal=Decimal("1.50")),
     '<parameter><name value="w"/><valueDecimal value="1.50"/></parameter>'),
    ("decimal with an exponent", parameter("w", valueDecimal=Decimal("1E+2")),
     '<parameter><name value="w"/><valueDecimal value="1E+2"/></parameter>'),
    ("a float as its shortest text", parameter("w", valueDecimal=0.1),
     '<parameter><name value="w"/><valueDecimal value="0.1"/></parameter>'),
    ("integer and boolean", {"resourceType": "Parameters", "parameter": [
        {"name": "i", "valueInteger": -3}, {"name": "b", "valueBoolean": False}]},
     '<parameter><name value="i"/><valueInteger value="-3"/></parameter>'
     '<parameter><name value="b"/><valueBoolean value="false"/></parameter>'),
    ("id and extension of a primitive", parameter("s", valueString="x", _valueString={
        "id": "p1", "extension": [{"url": "http://e", "valueCode": "c"}]}),
     '<parameter><name value="s"/><valueString id="p1" value="x"><extension url="http://e">'
     '<valueCode value="c"/></extension></valueString></parameter>'),
    ("a primitive with only an extension", parameter("s", _valueString={"extension": [
        {"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}]}),
     '<parameter><name value="s"/><valueString><extension url="http://hl7.org/fhir/StructureDefinition/'
     'data-absent-reason"><valueCode value="unknown"/></extension></valueString></parameter>'),
    ("element id and extension order", parameter("c", valueCoding={
        "code": "1", "system": "http://s", "id": "c1", "extension": [{"url": "http://e", "valueBoolean": True}]}),
     '<parameter><name value="c"/><valueCoding id="c1"><extension url="http://e"><valueBoolean value="true"/>'
     '</extension><system value="http://s"/><code value="1"/></valueCoding></parameter>'),
    ("escaping, line breaks and tabs kept", parameter("s", valueString='a<b & "c"\n\td'),
     '<parameter><name value="s"/><valueString value="a&lt;b &amp; &quot;c&quot;&#10;&#9;d"/></parameter>'),
    ("characters XML cannot carry", parameter("s", valueString="a\x00b\x1bc\ud800d"),
     '<parameter><name value="s"/><valueString value="a\ufffdb\ufffdc\ufffdd"/></parameter>'),
    ("a resource inside a parameter", parameter("r", resource={"resourceType": "OperationOutcome", "id": "o",
                                                               "issue": [{"severity": "error", "code": "invalid"}]}),
     '<parameter><name value="r"/><resource><OperationOutcome><id value="o"/><issue><severity value="error"/>'
     '<code value="invalid"/></issue></OperationOutcome></resource></parameter>'),
]


@pytest.mark.parametrize("name, document, body", WRITTEN, ids=[w[0] for w in WRITTEN])
def test_the_writer_writes_fhir_xml(name, document, body):
    assert dumps_xml(document, R5) == xml(body)


def test_repeating_primitives_pair_with_their_shadows():
    """A JSON array of values and its `_name` array, item by item, `null` where a side has none."""
    value_set = {"resourceType": "ValueSet", "status": "active", "compose": {"include": [{
        "system": "http://s", "concept": [{"code": "a"}],
        "valueSet": ["http://v1", None, "http://v3"],
        "_valueSet": [None, {"extension": [{"url": "http://e", "valueString": "only an extension"}]},
                      {"id": "v3"}]}]}}
    written = dumps_xml(value_set, R5)
    assert written == xml('<status value="active"/><compose><include><system value="http://s"/>'
                          '<concept><code value="a"/></concept><valueSet value="http://v1"/><valueSet><extension '
                          'url="http://e"><valueString value="only an extension"/></extension></valueSet><valueSet '
                          'id="v3" value="http://v3"/></include></compose>', "ValueSet")
    assert read_xml(written, R5, 100) == value_set


NARRATIVE = ('<div xmlns="http://www.w3.org/1999/xhtml"><p>One <b>bold</b> word,\n  <a href="x?a=1&amp;b=2">a '
             'link</a></p><div><br/></div>text</div>')


@pytest.mark.parametrize("pretty", [False, True])
def test_the_narrative_is_kept_exactly_even_pretty(pretty):
    code_system = {"resourceType": "CodeSystem", "text": {"status": "generated", "div": NARRATIVE},
                   "status": "active", "content": "complete"}
    written = dumps_xml(code_system, R4, pretty=pretty)
    assert NARRATIVE.encode() in written
    assert read_xml(written, R4, 100) == code_system
    if pretty:
        assert written.startswith(HEAD + b'<CodeSystem xmlns="http://hl7.org/fhir">\n  <text>\n    <status value='
                                  b'"generated"/>\n    ' + NARRATIVE.encode() + b'\n  </text>\n  <status value=')


@pytest.mark.parametrize("div, expected", [
    ("<div>no namespace</div>", '<div xmlns="http://www.w3.org/1999/xhtml">no namespace</div>'),
    ("<div>an &nbsp; entity</div>", '<div xmlns="http://www.w3.org/1999/xhtml">&lt;div&gt;an &amp;nbsp; '
                                    'entity&lt;/div&gt;</div>'),
])
def test_a_narrative_that_is_not_xhtml_is_still_written_whole(div, expected):
    written = dumps_xml({"resourceType": "CodeSystem", "text": {"status": "generated", "div": div},
                         "status": "active", "content": "complete"}, R5)
    assert expected.encode() in written


def test_an_empty_element_is_written_empty():
    assert dumps_xml(parameter("c", valueCoding={}), R5) == xml('<parameter><name value="c"/><valueCoding/></parameter>')


@pytest.mark.parametrize("document, message", [
    (parameter("x", valueBogus="1"), "ParametersParameter has no element 'valueBogus' in R5"),
    ({"resourceType": "Patientx"}, "not a R5 resource: Patientx"),
    ({"resourceType": "ConceptMap", "status": "active", "group": [{"element": [{"code": "a", "target": [
        {"code": "b", "equivalence": "equal"}]}]}]}, "ConceptMapGroupElementTarget has no element 'equivalence' in R5"),
])
def test_what_fhir_xml_cannot_say_is_refused(document, message):
    with pytest.raises(NotWritable, match=f"^{message}$"):
        dumps_xml(document, R5)


def test_an_r4_document_is_written_with_the_r4_elements():
    concept_map = {"resourceType": "ConceptMap", "status": "active", "sourceUri": "http://v", "group": [{
        "element": [{"code": "a", "target": [{"code": "b", "equivalence": "equal", "comment": "c"}]}]}]}
    assert dumps_xml(concept_map, R4) == xml(
        '<status value="active"/><sourceUri value="http://v"/><group><element><code value="a"/><target>'
        '<code value="b"/><equivalence value="equal"/><comment value="c"/></target></element></group>', "ConceptMap")


# --- the reader ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, document, body", WRITTEN[:8] + WRITTEN[9:], ids=[w[0] for w in WRITTEN[:8] + WRITTEN[9:]])
def test_the_reader_reads_what_the_writer_wrote(name, document, body):
    read = read_xml(xml(body), R5, 100)
    assert from_json(read) == from_xml(xml(body))
    # numbers as Python's JSON reader has them: a decimal with a point or an exponent as a float
    expected = json.loads(json.dumps(document, default=float))
    assert read == expected


@pytest.mark.parametrize("kind, text, value", [
    ("Boolean", "true", True), ("Boolean", "yes", "yes"), ("Integer", "12", 12), ("Integer", "1.5", "1.5"),
    ("Decimal", "2", 2), ("Decimal", "-0.50", -0.5), ("Decimal", "1e3", 1000.0), ("Decimal", "abc", "abc"),
    ("UnsignedInt", "7", 7), ("Integer64", "9007199254740993", "9007199254740993"), ("Code", "12", "12"),
    ("Integer", "9" * 5000, "9" * 5000),  # beyond Python's integer digits: a string, for the operation to judge
])
def test_values_are_read_by_their_type(kind, text, value):
    read = read_xml(xml(f'<parameter><name value="v"/><value{kind} value="{text}"/></parameter>'), R5, 100)
    assert read["parameter"][0][f"value{kind}"] == value
    assert type(read["parameter"][0][f"value{kind}"]) is type(value)


def test_an_r4_resource_is_read_on_r5_with_the_r4_models():
    """As a JSON client would send it: an R4 ConceptMap as a parameter of an /r5 request."""
    body = xml('<parameter><name value="conceptMap"/><resource><ConceptMap><status value="active"/><group><element>'
               '<code value="a"/><target><code value="b"/><equivalence value="equal"/></target></element></group>'
               '</ConceptMap></resource></parameter>')
    expected = {"resourceType": "ConceptMap", "status": "active", "group": [{"element": [
        {"code": "a", "target": [{"code": "b", "equivalence": "equal"}]}]}]}
    for version in FhirVersion:
        assert read_xml(body, version, 100)["parameter"][0]["resource"] == expected


def test_comments_whitespace_and_schema_location_are_ignored():
    body = (b'<?xml version="1.0" encoding="UTF-8"?>\n<!-- a comment -->\n<Parameters xmlns="http://hl7.org/fhir" '
            b'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="http://hl7.org/fhir x.xsd">\n'
            b'  <parameter> <!-- here too --> <name value="a"/>\n  <?pi x?>  <valueString value=" b "/></parameter>\n'
            b'</Parameters>\n')
    assert read_xml(body, R4, 100) == parameter("a", valueString=" b ")


REFUSED = [
    ("not UTF-8", '<Parameters xmlns="http://hl7.org/fhir"><parameter><name value="\xe9"/></parameter>'
                  '</Parameters>'.encode("latin-1"), "BODY_NOT_XML",
     "The request body is not well-formed XML: it is not UTF-8 (invalid continuation byte at byte 64)"),
    ("malformed", xml("<parameter>"), "BODY_NOT_XML", None),
    ("DOCTYPE", b'<!DOCTYPE Parameters><Parameters xmlns="http://hl7.org/fhir"/>', "BODY_XML_DOCTYPE",
     "The request body has a DOCTYPE: FHIR XML has none, and this server reads no DTD or entity declarations"),
    ("an undeclared entity", xml('<parameter><name value="&ent;"/></parameter>'), "BODY_NOT_XML", None),
    ("no namespace", b"<Parameters/>", "BODY_NOT_FHIR_XML", "The request body is not FHIR XML: <Parameters> is not a "
                                                            "FHIR resource: FHIR XML is in the namespace http://hl7.org/fhir"),
    ("not a resource", xml("", "Coding"), "BODY_NOT_FHIR_XML",
     "The request body is not FHIR XML: <Coding> is not a FHIR resource type"),
    ("text", xml("hello"), "BODY_NOT_FHIR_XML",
     "The request body is not FHIR XML: <Parameters> holds text; FHIR XML puts values in 'value' attributes"),
    ("an unknown element", xml('<parameter><nom value="a"/></parameter>'), "BODY_NOT_FHIR_XML",
     "The request body is not FHIR XML: <parameter> has no element <nom> in FHIR R5"),
    ("an unknown attribute", xml('<parameter><name value="a" lang="en"/></parameter>'), "BODY_NOT_FHIR_XML",
     "The request body is not FHIR XML: <name> has an attribute 'lang': a primitive has only 'value' and 'id'"),
    ("a single element twice", xml('<parameter><name value="a"/><name value="b"/></parameter>'),
     "BODY_NOT_FHIR_XML", "The request body is not FHIR XML: <parameter> has <name> more than once; it may have one"),
    ("no value", xml("<parameter><name/></parameter>"), "BODY_NOT_FHIR_XML",
     "The request body is not FHIR XML: <name> has no value attribute and no extension"),
    ("another namespace", xml('<x:include xmlns:x="http://www.w3.org/2001/XInclude" href="/etc/passwd"/>'),
     "BODY_NOT_FHIR_XML", "The request body is not FHIR XML: <include> in <Parameters> is not in the FHIR namespace "
                          "http://hl7.org/fhir"),
    ("two resources in one", xml('<parameter><name value="a"/><resource><Parameters/><Parameters/></resource>'
                                 '</parameter>'), "BODY_NOT_FHIR_XML",
     "The request body is not FHIR XML: <resource> must hold exactly one resource, not 2 elements"),
]


@pytest.mark.parametrize("name, body, message_id, text", REFUSED, ids=[r[0] for r in REFUSED])
def test_what_is_not_fhir_xml_is_refused(name, body, message_id, text):
    with pytest.raises(InvalidBody) as raised:
        read_xml(body, R5, 100)
    assert raised.value.message_id == message_id
    if text is not None:
        assert str(raised.value) == text


@pytest.mark.parametrize("levels, refused", [(100, False), (201, True), (300, True)])
def test_depth_is_bounded_before_conversion(levels, refused):
    """Elements nested `levels` deep (parts in parts): twice the JSON limit is the XML bound, and
    libxml2 stops at 256 itself; neither reaches Python's recursion limit."""
    body = xml('<parameter><name value="p"/>' + '<part><name value="p"/>' * (levels - 2) + '</part>' * (levels - 2)
               + '</parameter>')
    if not refused:
        assert read_xml(body, R5, 100)["resourceType"] == "Parameters"
        return
    limit = sys.getrecursionlimit()
    with pytest.raises(BodyTooDeep) as raised:
        read_xml(body, R5, 100)
    assert raised.value.message_id == "BODY_XML_TOO_DEEP"
    assert sys.getrecursionlimit() == limit


# --- the schema: the order of the FHIR specification -----------------------------------------------

SPEC_ORDER = [  # written out from the specification's pages (R4: hl7.org/fhir/R4, R5: hl7.org/fhir/R5)
    (R4, "ConceptMapGroupElementTarget", ["code", "display", "equivalence", "comment", "dependsOn", "product"]),
    (R5, "ConceptMapGroupElementTarget", ["code", "display", "valueSet", "relationship", "comment", "property",
                                          "dependsOn", "product"]),
    (R4, "TerminologyCapabilities", ["url", "version", "name", "title", "status", "experimental", "date", "publisher",
                                     "contact", "description", "useContext", "jurisdiction", "purpose", "copyright",
                                     "kind", "software", "implementation", "lockedDate", "codeSystem", "expansion",
                                     "codeSearch", "validateCode", "translation", "closure"]),
    (R5, "CodeSystemConcept", ["code", "display", "definition", "designation", "property", "concept"]),
    (R4, "ParametersParameter", ["name", "value*", "resource", "part"]),
    (R4, "OperationOutcomeIssue", ["severity", "code", "details", "diagnostics", "location", "expression"]),
    (R4, "BundleEntry", ["link", "fullUrl", "resource", "search", "request", "response"]),
    (R4, "ValueSetExpansionContains", ["system", "abstract", "inactive", "version", "code", "display", "designation",
                                       "contains"]),
]


@pytest.mark.parametrize("version, type_name, order", SPEC_ORDER, ids=[f"{v.value}-{t}" for v, t, _ in SPEC_ORDER])
def test_the_models_order_is_the_specifications(version, type_name, order):
    base = {"id", "meta", "implicitRules", "language", "text", "contained", "extension", "modifierExtension"}
    names = [n for n in children(version, type_name) if n not in base]
    if "value*" in order:
        names = [n for i, n in enumerate(names) if not n.startswith("value") or not names[i - 1].startswith("value")]
        names = ["value*" if n.startswith("value") else n for n in names]
    assert names == order


def test_r4_extensions_take_the_r4_open_type():
    """R4B's Extension.value[x] lost valueMeta and gained valueCodeableReference and valueRatioRange;
    R4's is the open type of Parameters.parameter.value[x]."""
    r4 = {n for n in children(R4, "Extension") if n.startswith("value")}
    assert "valueMeta" in r4 and not {"valueCodeableReference", "valueRatioRange"} & r4
    assert r4 == {n for n in children(R4, "ParametersParameter") if n.startswith("value")}
    assert {"valueCodeableReference", "valueRatioRange", "valueMeta"} <= set(children(R5, "Extension"))
    extension = {"resourceType": "CodeSystem", "extension": [{"url": "http://e", "valueMeta": {"versionId": "1"}}],
                 "status": "active", "content": "complete"}
    assert read_xml(dumps_xml(extension, R4), R4, 100) == extension


# --- fhir.resources' own XML, and why it is not used ---------------------------------------------

def test_fhir_resources_xml_writer_loses_what_ours_keeps():
    """fhir.resources 8.3's model_dump_xml, on the same document: a decimal loses its digits ("1.50"
    becomes "1.5", 1E+2 "100.0"), a primitive's id is dropped. If this starts failing, fhir.resources
    has caught up and its writer can be looked at again."""
    from fhir.resources.parameters import Parameters

    document = {"resourceType": "Parameters", "parameter": [
        {"name": "w", "valueDecimal": Decimal("1.50")}, {"name": "e", "valueDecimal": Decimal("1E+2")},
        {"name": "s", "valueString": "x", "_valueString": {"id": "p1"}}]}
    theirs = etree.fromstring(Parameters.model_validate(document).model_dump_xml())
    ours = etree.fromstring(dumps_xml(document, R5))
    values = ".//{http://hl7.org/fhir}valueDecimal"
    assert [e.get("value") for e in theirs.iterfind(values)] == ["1.5", "100.0"]
    assert [e.get("value") for e in ours.iterfind(values)] == ["1.50", "1E+2"]
    assert theirs.find(".//{http://hl7.org/fhir}valueString").get("id") is None
    assert ours.find(".//{http://hl7.org/fhir}valueString").get("id") == "p1"


def test_fhir_resources_reads_our_xml():
    from fhir.resources.codesystem import CodeSystem

    code_system = {"resourceType": "CodeSystem", "url": "http://s", "status": "active", "content": "complete",
                   "text": {"status": "generated", "div": NARRATIVE},
                   "concept": [{"code": "a", "display": "A", "_display": {"extension": [
                       {"url": TRANSLATION, "extension": [{"url": "lang", "valueCode": "de"},
                                                          {"url": "content", "valueString": "Ä"}]}]},
                                "property": [{"code": "w", "valueDecimal": 1.25}]}]}
    read = CodeSystem.model_validate_xml(dumps_xml(code_system, R5)).model_dump(mode="json")
    assert read == CodeSystem.model_validate(code_system).model_dump(mode="json")


def test_json_requests_never_load_the_xml_code():
    """Off the JSON hot path: answers, errors and bodies in JSON import none of the XML modules; the
    first XML request does. (lxml itself is imported by fhir.resources at start-up, with the content.)"""
    import subprocess

    from fhir_plugin.config import bundled_dir

    script = f"""
import sys
from fhir_plugin import create_app, load_service
client = create_app(service=load_service([{str(bundled_dir("resources") / "CodeSystem-cpt-97116-fragment.json")!r}])).test_client()
cpt = "http://www.ama-assn.org/go/cpt"
assert client.get(f"/r4/CodeSystem/$lookup?system={{cpt}}&code=97116").status_code == 200
assert client.post("/r5/CodeSystem/$lookup", json={{"resourceType": "Parameters", "parameter": [
    {{"name": "system", "valueUri": cpt}}, {{"name": "code", "valueCode": "97116"}}]}}).status_code == 200
assert client.get("/r4/CodeSystem/$lookup?code=1").status_code == 400
assert client.get("/r4/metadata", headers={{"Accept": "text/turtle"}}).status_code == 406
xml = [m for m in sys.modules if m.startswith("fhir_plugin.render.xml_")]
assert xml == [], xml
assert client.get(f"/r4/CodeSystem/$lookup?system={{cpt}}&code=97116&_format=xml").status_code == 200
print(sorted(m for m in sys.modules if m.startswith("fhir_plugin.render.xml_")))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == ("['fhir_plugin.render.xml_schema', 'fhir_plugin.render.xml_writer']")
