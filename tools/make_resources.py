"""Writes the shipped resources in resources/ (run by hand when the content changes; the JSON is committed).

Sources: ../shared/docs/content-97116.md (the article "What is CPT Code 97116?: A Step Towards
Better Moving"), the ICD-10-CM tabular list of April 1, 2026 (read with simple-icd-10-cm 1.5.0),
and HL7 Terminology (THO) for the CPT property definitions.
"""

import json
from pathlib import Path

BASE = "http://fhir-plugin.org/fhir"
CPT = "http://www.ama-assn.org/go/cpt"
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
CPT_VERSION = "2026"
ICD_VERSION = "2026-04-01"
DATE = "2026-11-28"
ARTICLE = '"What is CPT Code 97116?: A Step Towards Better Moving" (an informational coding article)'
AMA = ("CPT © Copyright 2026 American Medical Association. All rights reserved. AMA and CPT are registered "
       "trademarks of the American Medical Association.")
ICD_SOURCE = ("ICD-10-CM tabular list, April 1, 2026 release (CDC/NCHS), as distributed in the PyPI package "
              "simple-icd-10-cm 1.5.0")
PUBLISHER = "fhir_plugin project"
DESCRIPTOR = ("Therapeutic procedure, 1 or more areas, each 15 minutes; gait training (includes stair climbing)")
SNOMED_SYNONYM = {"system": "http://snomed.info/sct", "code": "900000000000013009", "display": "Synonym"}
USE = f"{BASE}/CodeSystem/designation-use"

cpt = {
    "resourceType": "CodeSystem",
    "id": "cpt-97116-fragment",
    "url": CPT,
    "identifier": [{"system": "urn:ietf:rfc:3986", "value": "urn:oid:2.16.840.1.113883.6.12"}],
    "version": CPT_VERSION,
    "name": "CPT",
    "title": "Current Procedural Terminology (CPT®), fragment: 97116 only",
    "status": "active",
    "experimental": False,
    "date": DATE,
    "publisher": PUBLISHER,
    "description": (
        "A fragment of CPT holding the single code 97116. Sources: the display (descriptor), the definition "
        f"(plain-language explanation), the three synonyms, the operating-room schedule name, the surgical "
        f"consent form name, the 15-minute unit and the RVU figure come from {ARTICLE}. The article's 'RVUs "
        "associated with this code are 0.45' is carried as work-rvu, a CMS Physician Fee Schedule value, not a "
        "CPT property; it could not be confirmed against a CMS file. The properties modifier, modified and kind "
        "are defined by HL7 Terminology (THO) for CPT (https://terminology.hl7.org/CPT.html). The version is the "
        "CPT year of intended use chosen by this project. The full CPT is licensed by the AMA: licensed users "
        "import it; this repository holds no other CPT descriptor."
    ),
    "copyright": AMA,
    "caseSensitive": True,
    "content": "fragment",
    "language": "en",
    "property": [
        {"code": "modifier", "type": "boolean",
         "description": "Whether the code is a modifier code (HL7 THO CPT property)"},
        {"code": "modified", "type": "boolean",
         "description": "Whether the code is a modified expression (HL7 THO CPT property)"},
        {"code": "kind", "type": "code",
         "description": "Kind of CPT code; 'code' for a base code (HL7 THO CPT property)"},
        {"code": "work-rvu", "uri": f"{BASE}/CodeSystem/cpt-97116-fragment#work-rvu", "type": "decimal",
         "description": ("Work relative value units: a CMS Physician Fee Schedule value (not a CPT property), "
                         f"as stated by {ARTICLE}")},
        {"code": "unit-minutes", "uri": f"{BASE}/CodeSystem/cpt-97116-fragment#unit-minutes", "type": "integer",
         "description": f"Minutes per unit of service ('each 15 minutes'), from {ARTICLE}"},
    ],
    "concept": [{
        "code": "97116",
        "display": DESCRIPTOR,
        "definition": (
            "A therapy session focused on teaching someone to walk or move better, including practising steps "
            "on stairs. Working with a therapist to improve walking ability: better balance and stair climbing. "
            "Each unit is 15 minutes. It does not cover other therapy or rehabilitation exercises unrelated to "
            "walking or moving."
        ),
        "designation": [
            {"language": "en", "use": SNOMED_SYNONYM, "value": "Gait Training"},
            {"language": "en", "use": SNOMED_SYNONYM, "value": "Walking Therapy"},
            {"language": "en", "use": SNOMED_SYNONYM, "value": "Mobility Training"},
            {"language": "en", "use": {"system": USE, "code": "or-schedule-name",
                                       "display": "Operating-room schedule name"},
             "value": "Walking practice session"},
            {"language": "en", "use": {"system": USE, "code": "consent-form-name",
                                       "display": "Surgical consent form name"},
             "value": "Agreement to perform walking and stair practice"},
        ],
        "property": [
            {"code": "modifier", "valueBoolean": False},
            {"code": "modified", "valueBoolean": False},
            {"code": "kind", "valueCode": "code"},
            {"code": "work-rvu", "valueDecimal": 0.45},
            {"code": "unit-minutes", "valueInteger": 15},
        ],
    }],
}

designation_use = {
    "resourceType": "CodeSystem",
    "id": "designation-use",
    "url": USE,
    "version": "1.0.0",
    "name": "FhirPluginDesignationUse",
    "title": "fhir_plugin designation uses",
    "status": "active",
    "experimental": False,
    "date": DATE,
    "publisher": PUBLISHER,
    "description": ("Uses for designations that the standard designation-use value set has no code for. The two "
                    f"kinds of name come from {ARTICLE}, which gives, for CPT 97116, an operating-room schedule "
                    "name and a surgical consent form name. The inclusion term is the ICD-10-CM tabular list's "
                    "(CDC/NCHS): the ICD-10-CM CodeSystem carries its inclusion terms as designations of this use. "
                    "The three CPT descriptor uses label the medium, short and consumer-friendly descriptors that "
                    "`fhir-plugin import-cpt` reads from a licensee's AMA CPT data files (the long descriptor is "
                    "the display)."),
    "caseSensitive": True,
    "content": "complete",
    "count": 6,
    "concept": [
        {"code": "or-schedule-name", "display": "Operating-room schedule name",
         "definition": "The name under which the procedure appears on an operating-room schedule."},
        {"code": "consent-form-name", "display": "Surgical consent form name",
         "definition": "The name under which the procedure appears on a surgical consent form."},
        {"code": "inclusion-term", "display": "Inclusion term",
         "definition": ("An ICD-10-CM inclusion term: a condition the tabular list classifies to the code, a "
                        "synonym or an example; not necessarily the whole of what the code covers.")},
        {"code": "cpt-medium", "display": "CPT medium descriptor",
         "definition": "A CPT code's medium descriptor, from the medium descriptor file of the AMA's CPT data files."},
        {"code": "cpt-short", "display": "CPT short descriptor",
         "definition": "A CPT code's short descriptor, from the short descriptor file of the AMA's CPT data files."},
        {"code": "cpt-consumer", "display": "CPT consumer-friendly descriptor",
         "definition": ("A CPT code's consumer-friendly descriptor, the plain-language text for patients, from the "
                        "consumer descriptor file of the AMA's CPT data files.")},
    ],
}

# code: (title, parent, billable, excludes1, excludes2), as read from the tabular list.
ICD_CODES = {
    "G81": ("Hemiplegia and hemiparesis", None, False,
            ["congenital cerebral palsy (G80.-)",
             "hemiplegia and hemiparesis due to sequela of cerebrovascular disease (I69.05-, I69.15-, I69.25-, "
             "I69.35-, I69.85-, I69.95-)"], []),
    "G81.9": ("Hemiplegia, unspecified", "G81", False, [], []),
    "G81.90": ("Hemiplegia, unspecified affecting unspecified side", "G81.9", True, [], []),
    "M62": ("Other disorders of muscle", None, False,
            ["alcoholic myopathy (G72.1)", "cramp and spasm (R25.2)", "drug-induced myopathy (G72.0)",
             "myalgia (M79.1-)", "stiff-man syndrome (G25.82)"],
            ["nontraumatic hematoma of muscle (M79.81)"]),
    "M62.8": ("Other specified disorders of muscle", "M62", False, [],
              ["nontraumatic hematoma of muscle (M79.81)"]),
    "M62.81": ("Muscle weakness (generalized)", "M62.8", True, ["muscle weakness in sarcopenia (M62.84)"], []),
    "R26": ("Abnormalities of gait and mobility", None, False,
            ["ataxia NOS (R27.0)", "hereditary ataxia (G11.-)", "locomotor (syphilitic) ataxia (A52.11)",
             "immobility syndrome (paraplegic) (M62.3)"], []),
    "R26.2": ("Difficulty in walking, not elsewhere classified", "R26", True,
              ["falling (R29.6)", "unsteadiness on feet (R26.81)"], []),
}


def icd_concept(code):
    title, _, billable, ex1, ex2 = ICD_CODES[code]
    concept = {"code": code, "display": title}
    props = [{"code": "notSelectable", "valueBoolean": not billable}]
    props += [{"code": "excludes1", "valueString": note} for note in ex1]
    props += [{"code": "excludes2", "valueString": note} for note in ex2]
    concept["property"] = props
    children = [c for c, v in ICD_CODES.items() if v[1] == code]
    if children:
        concept["concept"] = [icd_concept(c) for c in children]
    return concept


icd = {
    "resourceType": "CodeSystem",
    "id": "icd-10-cm-fragment",
    "url": ICD,
    "identifier": [{"system": "urn:ietf:rfc:3986", "value": "urn:oid:2.16.840.1.113883.6.90"}],
    "version": ICD_VERSION,
    "name": "ICD10CM",
    "title": "International Classification of Diseases, Tenth Revision, Clinical Modification (ICD-10-CM), fragment",
    "status": "active",
    "experimental": False,
    "date": DATE,
    "publisher": "National Center for Health Statistics (NCHS), CDC; fragment assembled by the fhir_plugin project",
    "description": (
        "The ICD-10-CM codes associated with CPT 97116 (M62.81, R26.2, G81.90) and their parent categories, with "
        f"official titles, billable status and excludes notes from the {ICD_SOURCE}. Chapters and blocks are "
        "not included. The complete ICD-10-CM replaces this file when it is loaded."
    ),
    "copyright": "ICD-10-CM is published by the National Center for Health Statistics (NCHS), CDC, and is in the public domain in the United States.",
    "caseSensitive": True,
    "hierarchyMeaning": "classified-with",
    "content": "fragment",
    "language": "en",
    "property": [
        {"code": "notSelectable", "uri": "http://hl7.org/fhir/concept-properties#notSelectable", "type": "boolean",
         "description": "True for categories that are not billable (codes with subcodes)"},
        {"code": "excludes1", "uri": f"{BASE}/CodeSystem/icd-10-cm-fragment#excludes1", "type": "string",
         "description": "Excludes1 note of the tabular list: the excluded condition is never coded here"},
        {"code": "excludes2", "uri": f"{BASE}/CodeSystem/icd-10-cm-fragment#excludes2", "type": "string",
         "description": "Excludes2 note of the tabular list: not included here, but both may be coded"},
    ],
    "concept": [icd_concept(c) for c in ("G81", "M62", "R26")],
}

ASSOCIATIONS = [
    ("M62.81", "The muscles are not as strong as they should be, making walking difficult."),
    ("R26.2", "Any trouble someone might have with walking normally."),
    ("G81.90", "One side of the body is weakened or paralysed, often requiring help to improve mobility."),
]

cpt_vs = {
    "resourceType": "ValueSet",
    "id": "cpt-gait-training",
    "url": f"{BASE}/ValueSet/cpt-gait-training",
    "version": "1.0.0",
    "name": "CptGaitTrainingProcedures",
    "title": "CPT gait-training procedures",
    "status": "active",
    "experimental": False,
    "date": DATE,
    "publisher": PUBLISHER,
    "description": f"CPT procedure codes for gait training (including stair climbing): 97116, from {ARTICLE}.",
    "copyright": AMA,
    "compose": {"include": [{"system": CPT, "version": CPT_VERSION, "concept": [{"code": "97116", "display": DESCRIPTOR}]}]},
}

icd_vs = {
    "resourceType": "ValueSet",
    "id": "icd-10-cm-gait-training-diagnoses",
    "url": f"{BASE}/ValueSet/icd-10-cm-gait-training-diagnoses",
    "version": "1.0.0",
    "name": "Icd10cmGaitTrainingDiagnoses",
    "title": "ICD-10-CM diagnoses associated with CPT 97116 (gait training)",
    "status": "active",
    "experimental": False,
    "date": DATE,
    "publisher": PUBLISHER,
    "description": (f"ICD-10-CM diagnoses that {ARTICLE} associates with CPT 97116. The article names M62.81 and "
                    "R26.2 as the typical ones and lists G81.90 among the associated codes. Informational, not a "
                    f"coverage rule. Titles from the {ICD_SOURCE}."),
    "compose": {"include": [{"system": ICD, "version": ICD_VERSION, "concept": [
        {"code": code, "display": ICD_CODES[code][0]} for code, _ in ASSOCIATIONS]}]},
}

concept_map = {
    "resourceType": "ConceptMap",
    "id": "cpt-97116-to-icd-10-cm",
    "url": f"{BASE}/ConceptMap/cpt-97116-to-icd-10-cm",
    "version": "1.0.0",
    "name": "Cpt97116ToIcd10cm",
    "title": "CPT 97116 (gait training) to associated ICD-10-CM diagnoses",
    "status": "active",
    "experimental": False,
    "date": DATE,
    "publisher": PUBLISHER,
    "description": (
        f"Diagnoses associated with CPT 97116, as listed by {ARTICLE}. Each association is 'related-to': a "
        "procedure is not equivalent to a diagnosis, and the target comment gives the article's explanation. "
        "This mapping is informational, not a coverage or billing rule: the article states that its content is "
        "for informational purposes only and is not a substitute for medical advice, and no payer policy listing "
        f"these codes for 97116 was confirmed. ICD-10-CM titles are from the {ICD_SOURCE}."
    ),
    "copyright": AMA,
    "sourceScopeUri": cpt_vs["url"],
    "targetScopeUri": icd_vs["url"],
    "group": [{
        "source": f"{CPT}|{CPT_VERSION}",
        "target": f"{ICD}|{ICD_VERSION}",
        "element": [{
            "code": "97116",
            "display": DESCRIPTOR,
            "target": [
                {"code": code, "display": ICD_CODES[code][0], "relationship": "related-to",
                 "comment": f"{why} (Source: {ARTICLE}.)"}
                for code, why in ASSOCIATIONS
            ],
        }],
    }],
}

def write(resources: list[dict], out: Path) -> None:
    for resource in resources:
        path = out / f"{resource['resourceType']}-{resource['id']}.json"
        path.write_text(json.dumps(resource, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(path)


if __name__ == "__main__":
    # The complete ICD-10-CM (resources/CodeSystem-icd-10-cm.json.gz) is generated by
    # `fhir-plugin import-icd10cm` (README, "Regenerating the ICD-10-CM CodeSystem"). The old
    # three-code fragment is no longer shipped; `--fragment-dir DIR` writes it (with the other
    # small resources) to DIR, as the small content the start-up benchmark compares against.
    import sys

    if sys.argv[1:2] == ["--fragment-dir"]:
        write([cpt, designation_use, icd, cpt_vs, icd_vs, concept_map], Path(sys.argv[2]))
    else:
        write([cpt, designation_use, cpt_vs, icd_vs, concept_map], Path(__file__).resolve().parent.parent / "resources")
