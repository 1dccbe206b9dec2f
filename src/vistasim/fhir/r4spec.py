"""The slice of FHIR R4 (4.0.1) that vistasim emits, as data: element tables, primitive formats, value sets.

The validator in :mod:`vistasim.fhir.validate` is driven entirely by these tables. Each type is written
in a compact text form transcribed from the R4 4.0.1 StructureDefinitions (hl7.org/fhir/R4, "Resource
Content" tables): one element a line, ``name type[|type...] min..max [=value-set]``. A ``[x]`` name is a
choice type: its JSON keys are the name with each type's capitalised name appended, and at most one of
them may be present. Backbone elements are their own types, named ``Resource.path``.

Value sets listed here are exactly the bindings of strength *required* in R4 for the elements we check;
extensible and preferred bindings are left to the business rules. Codes are copied from the R4 value
set pages (hl7.org/fhir/R4/valueset-*.html).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

FHIR_VERSION = "4.0.1"

# --------------------------------------------------------------------------- primitive types
# Regular expressions from the R4 datatypes page (section 2.24.0.1); JSON representation per 2.6.2.
# Strings may not be empty in JSON (R4 2.6.2: "SHALL NOT be empty") and may not be only whitespace.
_YEAR = r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)"
_TZ = r"(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))"
_TIME = r"([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?"
PRIMITIVE_PATTERNS: dict[str, str] = {
    "date": _YEAR + r"(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1]))?)?",
    "dateTime": _YEAR + r"(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])(T" + _TIME + _TZ + r")?)?)?",
    "instant": _YEAR + r"-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1])T" + _TIME + _TZ,
    "time": _TIME,
    "code": r"[^\s]+( [^\s]+)*",
    "id": r"[A-Za-z0-9\-\.]{1,64}",
    "uri": r"\S+",
    "url": r"\S+",
    "canonical": r"\S+",
    "oid": r"urn:oid:[0-2](\.(0|[1-9][0-9]*))+",
    "uuid": r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
    "base64Binary": r"(\s*([0-9a-zA-Z\+/=]){4}\s*)+",
    "string": r"[ \r\n\t\S]*\S[ \r\n\t\S]*",
    "markdown": r"[ \r\n\t\S]*\S[ \r\n\t\S]*",
    "xhtml": r"\s*<div[\s\S]*</div>\s*",
}
STRING_PRIMITIVES = frozenset(PRIMITIVE_PATTERNS)
NUMBER_PRIMITIVES = frozenset({"integer", "unsignedInt", "positiveInt", "decimal"})
PRIMITIVES = STRING_PRIMITIVES | NUMBER_PRIMITIVES | {"boolean"}
COMPILED_PATTERNS: dict[str, re.Pattern[str]] = {k: re.compile(v) for k, v in PRIMITIVE_PATTERNS.items()}

# --------------------------------------------------------------------------- value sets (required bindings)
SYS_CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
SYS_CONDITION_VER = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
SYS_AI_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
SYS_AI_VER = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"

# name -> (code system or None for plain ``code`` elements, codes)
VALUE_SETS: dict[str, tuple[str | None, frozenset[str]]] = {
    "administrative-gender": (None, frozenset({"male", "female", "other", "unknown"})),
    "identifier-use": (None, frozenset({"usual", "official", "temp", "secondary", "old"})),
    "name-use": (None, frozenset({"usual", "official", "temp", "nickname", "anonymous", "old", "maiden"})),
    "address-use": (None, frozenset({"home", "work", "temp", "old", "billing"})),
    "address-type": (None, frozenset({"postal", "physical", "both"})),
    "contact-point-system": (None, frozenset({"phone", "fax", "email", "pager", "url", "sms", "other"})),
    "contact-point-use": (None, frozenset({"home", "work", "temp", "old", "mobile"})),
    "quantity-comparator": (None, frozenset({"<", "<=", ">=", ">"})),
    "narrative-status": (None, frozenset({"generated", "extensions", "additional", "empty"})),
    "units-of-time": (None, frozenset({"s", "min", "h", "d", "wk", "mo", "a"})),
    "days-of-week": (None, frozenset({"mon", "tue", "wed", "thu", "fri", "sat", "sun"})),
    "event-timing": (None, frozenset({
        "MORN", "MORN.early", "MORN.late", "NOON", "AFT", "AFT.early", "AFT.late", "EVE", "EVE.early",
        "EVE.late", "NIGHT", "PHS", "HS", "WAKE", "C", "CM", "CD", "CV", "AC", "ACM", "ACD", "ACV", "PC",
        "PCM", "PCD", "PCV"})),
    "link-type": (None, frozenset({"replaced-by", "replaces", "refer", "seealso"})),
    "condition-clinical": (SYS_CONDITION_CLINICAL, frozenset(
        {"active", "recurrence", "relapse", "inactive", "remission", "resolved"})),
    "condition-ver-status": (SYS_CONDITION_VER, frozenset(
        {"unconfirmed", "provisional", "differential", "confirmed", "refuted", "entered-in-error"})),
    "allergyintolerance-clinical": (SYS_AI_CLINICAL, frozenset({"active", "inactive", "resolved"})),
    "allergyintolerance-verification": (SYS_AI_VER, frozenset(
        {"unconfirmed", "confirmed", "refuted", "entered-in-error"})),
    "allergy-intolerance-type": (None, frozenset({"allergy", "intolerance"})),
    "allergy-intolerance-category": (None, frozenset({"food", "medication", "environment", "biologic"})),
    "allergy-intolerance-criticality": (None, frozenset({"low", "high", "unable-to-assess"})),
    "reaction-event-severity": (None, frozenset({"mild", "moderate", "severe"})),
    "medicationrequest-status": (None, frozenset(
        {"active", "on-hold", "cancelled", "completed", "entered-in-error", "stopped", "draft", "unknown"})),
    "medicationrequest-intent": (None, frozenset(
        {"proposal", "plan", "order", "original-order", "reflex-order", "filler-order", "instance-order",
         "option"})),
    "request-priority": (None, frozenset({"routine", "urgent", "asap", "stat"})),
    "request-status": (None, frozenset(
        {"draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown"})),
    "request-intent": (None, frozenset(
        {"proposal", "plan", "directive", "order", "original-order", "reflex-order", "filler-order",
         "instance-order", "option"})),
    "observation-status": (None, frozenset(
        {"registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error",
         "unknown"})),
    "encounter-status": (None, frozenset(
        {"planned", "arrived", "triaged", "in-progress", "onleave", "finished", "cancelled",
         "entered-in-error", "unknown"})),
    "encounter-location-status": (None, frozenset({"planned", "active", "reserved", "completed"})),
    "flag-status": (None, frozenset({"active", "inactive", "entered-in-error"})),
    "bundle-type": (None, frozenset(
        {"document", "message", "transaction", "transaction-response", "batch", "batch-response", "history",
         "searchset", "collection"})),
    "http-verb": (None, frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"})),
    "search-entry-mode": (None, frozenset({"match", "include", "outcome"})),
}

# --------------------------------------------------------------------------- structures
_OPEN_TYPES = (
    "base64Binary boolean canonical code date dateTime decimal id instant integer markdown oid positiveInt "
    "string time unsignedInt uri url uuid Address Age Annotation Attachment CodeableConcept Coding "
    "ContactPoint Count Distance Duration HumanName Identifier Money Period Quantity Range Ratio Reference "
    "SampledData Signature Timing ContactDetail Contributor DataRequirement Expression ParameterDefinition "
    "RelatedArtifact TriggerDefinition UsageContext Dosage Meta"
)
_OBS_VALUE = "Quantity|CodeableConcept|string|boolean|integer|Range|Ratio|SampledData|time|dateTime|Period"

SPEC_TEXT = f"""
@Element
id string 0..1
extension Extension 0..*

@BackboneElement : Element
modifierExtension Extension 0..*

@Extension : Element
url uri 1..1
value[x] {_OPEN_TYPES.replace(' ', '|')} 0..1

@Narrative : Element
status code 1..1 =narrative-status
div xhtml 1..1

@Meta : Element
versionId id 0..1
lastUpdated instant 0..1
source uri 0..1
profile canonical 0..*
security Coding 0..*
tag Coding 0..*

@Coding : Element
system uri 0..1
version string 0..1
code code 0..1
display string 0..1
userSelected boolean 0..1

@CodeableConcept : Element
coding Coding 0..*
text string 0..1

@Identifier : Element
use code 0..1 =identifier-use
type CodeableConcept 0..1
system uri 0..1
value string 0..1
period Period 0..1
assigner Reference 0..1

@HumanName : Element
use code 0..1 =name-use
text string 0..1
family string 0..1
given string 0..*
prefix string 0..*
suffix string 0..*
period Period 0..1

@Address : Element
use code 0..1 =address-use
type code 0..1 =address-type
text string 0..1
line string 0..*
city string 0..1
district string 0..1
state string 0..1
postalCode string 0..1
country string 0..1
period Period 0..1

@ContactPoint : Element
system code 0..1 =contact-point-system
value string 0..1
use code 0..1 =contact-point-use
rank positiveInt 0..1
period Period 0..1

@Reference : Element
reference string 0..1
type uri 0..1
identifier Identifier 0..1
display string 0..1

@Period : Element
start dateTime 0..1
end dateTime 0..1

@Quantity : Element
value decimal 0..1
comparator code 0..1 =quantity-comparator
unit string 0..1
system uri 0..1
code code 0..1

@SimpleQuantity : Quantity
@Duration : Quantity
@Age : Quantity
@Count : Quantity
@Distance : Quantity
@MoneyQuantity : Quantity

@Money : Element
value decimal 0..1
currency code 0..1

@Range : Element
low SimpleQuantity 0..1
high SimpleQuantity 0..1

@Ratio : Element
numerator Quantity 0..1
denominator Quantity 0..1

@SampledData : Element
origin SimpleQuantity 1..1
period decimal 1..1
factor decimal 0..1
lowerLimit decimal 0..1
upperLimit decimal 0..1
dimensions positiveInt 1..1
data string 0..1

@Attachment : Element
contentType code 0..1
language code 0..1
data base64Binary 0..1
url url 0..1
size unsignedInt 0..1
hash base64Binary 0..1
title string 0..1
creation dateTime 0..1

@Annotation : Element
author[x] Reference|string 0..1
time dateTime 0..1
text markdown 1..1

@Timing : BackboneElement
event dateTime 0..*
repeat Timing.repeat 0..1
code CodeableConcept 0..1

@Timing.repeat : Element
bounds[x] Duration|Range|Period 0..1
count positiveInt 0..1
countMax positiveInt 0..1
duration decimal 0..1
durationMax decimal 0..1
durationUnit code 0..1 =units-of-time
frequency positiveInt 0..1
frequencyMax positiveInt 0..1
period decimal 0..1
periodMax decimal 0..1
periodUnit code 0..1 =units-of-time
dayOfWeek code 0..* =days-of-week
timeOfDay time 0..*
when code 0..* =event-timing
offset unsignedInt 0..1

@Dosage : BackboneElement
sequence integer 0..1
text string 0..1
additionalInstruction CodeableConcept 0..*
patientInstruction string 0..1
timing Timing 0..1
asNeeded[x] boolean|CodeableConcept 0..1
site CodeableConcept 0..1
route CodeableConcept 0..1
method CodeableConcept 0..1
doseAndRate Dosage.doseAndRate 0..*
maxDosePerPeriod Ratio 0..1
maxDosePerAdministration SimpleQuantity 0..1
maxDosePerLifetime SimpleQuantity 0..1

@Dosage.doseAndRate : Element
type CodeableConcept 0..1
dose[x] Range|Quantity 0..1
rate[x] Ratio|Range|Quantity 0..1

@Resource
id id 0..1
meta Meta 0..1
implicitRules uri 0..1
language code 0..1

@DomainResource : Resource
text Narrative 0..1
contained Resource 0..*
extension Extension 0..*
modifierExtension Extension 0..*

@Patient : DomainResource
identifier Identifier 0..*
active boolean 0..1
name HumanName 0..*
telecom ContactPoint 0..*
gender code 0..1 =administrative-gender
birthDate date 0..1
deceased[x] boolean|dateTime 0..1
address Address 0..*
maritalStatus CodeableConcept 0..1
multipleBirth[x] boolean|integer 0..1
photo Attachment 0..*
contact Patient.contact 0..*
communication Patient.communication 0..*
generalPractitioner Reference 0..*
managingOrganization Reference 0..1
link Patient.link 0..*

@Patient.contact : BackboneElement
relationship CodeableConcept 0..*
name HumanName 0..1
telecom ContactPoint 0..*
address Address 0..1
gender code 0..1 =administrative-gender
organization Reference 0..1
period Period 0..1

@Patient.communication : BackboneElement
language CodeableConcept 1..1
preferred boolean 0..1

@Patient.link : BackboneElement
other Reference 1..1
type code 1..1 =link-type

@Condition : DomainResource
identifier Identifier 0..*
clinicalStatus CodeableConcept 0..1 =condition-clinical
verificationStatus CodeableConcept 0..1 =condition-ver-status
category CodeableConcept 0..*
severity CodeableConcept 0..1
code CodeableConcept 0..1
bodySite CodeableConcept 0..*
subject Reference 1..1
encounter Reference 0..1
onset[x] dateTime|Age|Period|Range|string 0..1
abatement[x] dateTime|Age|Period|Range|string 0..1
recordedDate dateTime 0..1
recorder Reference 0..1
asserter Reference 0..1
stage Condition.stage 0..*
evidence Condition.evidence 0..*
note Annotation 0..*

@Condition.stage : BackboneElement
summary CodeableConcept 0..1
assessment Reference 0..*
type CodeableConcept 0..1

@Condition.evidence : BackboneElement
code CodeableConcept 0..*
detail Reference 0..*

@AllergyIntolerance : DomainResource
identifier Identifier 0..*
clinicalStatus CodeableConcept 0..1 =allergyintolerance-clinical
verificationStatus CodeableConcept 0..1 =allergyintolerance-verification
type code 0..1 =allergy-intolerance-type
category code 0..* =allergy-intolerance-category
criticality code 0..1 =allergy-intolerance-criticality
code CodeableConcept 0..1
patient Reference 1..1
encounter Reference 0..1
onset[x] dateTime|Age|Period|Range|string 0..1
recordedDate dateTime 0..1
recorder Reference 0..1
asserter Reference 0..1
lastOccurrence dateTime 0..1
note Annotation 0..*
reaction AllergyIntolerance.reaction 0..*

@AllergyIntolerance.reaction : BackboneElement
substance CodeableConcept 0..1
manifestation CodeableConcept 1..*
description string 0..1
onset dateTime 0..1
severity code 0..1 =reaction-event-severity
exposureRoute CodeableConcept 0..1
note Annotation 0..*

@MedicationRequest : DomainResource
identifier Identifier 0..*
status code 1..1 =medicationrequest-status
statusReason CodeableConcept 0..1
intent code 1..1 =medicationrequest-intent
category CodeableConcept 0..*
priority code 0..1 =request-priority
doNotPerform boolean 0..1
reported[x] boolean|Reference 0..1
medication[x] CodeableConcept|Reference 1..1
subject Reference 1..1
encounter Reference 0..1
supportingInformation Reference 0..*
authoredOn dateTime 0..1
requester Reference 0..1
performer Reference 0..1
performerType CodeableConcept 0..1
recorder Reference 0..1
reasonCode CodeableConcept 0..*
reasonReference Reference 0..*
instantiatesCanonical canonical 0..*
instantiatesUri uri 0..*
basedOn Reference 0..*
groupIdentifier Identifier 0..1
courseOfTherapyType CodeableConcept 0..1
insurance Reference 0..*
note Annotation 0..*
dosageInstruction Dosage 0..*
dispenseRequest MedicationRequest.dispenseRequest 0..1
substitution MedicationRequest.substitution 0..1
priorPrescription Reference 0..1
detectedIssue Reference 0..*
eventHistory Reference 0..*

@MedicationRequest.dispenseRequest : BackboneElement
initialFill MedicationRequest.dispenseRequest.initialFill 0..1
dispenseInterval Duration 0..1
validityPeriod Period 0..1
numberOfRepeatsAllowed unsignedInt 0..1
quantity SimpleQuantity 0..1
expectedSupplyDuration Duration 0..1
performer Reference 0..1

@MedicationRequest.dispenseRequest.initialFill : BackboneElement
quantity SimpleQuantity 0..1
duration Duration 0..1

@MedicationRequest.substitution : BackboneElement
allowed[x] boolean|CodeableConcept 1..1
reason CodeableConcept 0..1

@Observation : DomainResource
identifier Identifier 0..*
basedOn Reference 0..*
partOf Reference 0..*
status code 1..1 =observation-status
category CodeableConcept 0..*
code CodeableConcept 1..1
subject Reference 0..1
focus Reference 0..*
encounter Reference 0..1
effective[x] dateTime|Period|Timing|instant 0..1
issued instant 0..1
performer Reference 0..*
value[x] {_OBS_VALUE} 0..1
dataAbsentReason CodeableConcept 0..1
interpretation CodeableConcept 0..*
note Annotation 0..*
bodySite CodeableConcept 0..1
method CodeableConcept 0..1
specimen Reference 0..1
device Reference 0..1
referenceRange Observation.referenceRange 0..*
hasMember Reference 0..*
derivedFrom Reference 0..*
component Observation.component 0..*

@Observation.referenceRange : BackboneElement
low SimpleQuantity 0..1
high SimpleQuantity 0..1
type CodeableConcept 0..1
appliesTo CodeableConcept 0..*
age Range 0..1
text string 0..1

@Observation.component : BackboneElement
code CodeableConcept 1..1
value[x] {_OBS_VALUE} 0..1
dataAbsentReason CodeableConcept 0..1
interpretation CodeableConcept 0..*
referenceRange Observation.referenceRange 0..*

@Encounter : DomainResource
identifier Identifier 0..*
status code 1..1 =encounter-status
statusHistory Encounter.statusHistory 0..*
class Coding 1..1
classHistory Encounter.classHistory 0..*
type CodeableConcept 0..*
serviceType CodeableConcept 0..1
priority CodeableConcept 0..1
subject Reference 0..1
episodeOfCare Reference 0..*
basedOn Reference 0..*
participant Encounter.participant 0..*
appointment Reference 0..*
period Period 0..1
length Duration 0..1
reasonCode CodeableConcept 0..*
reasonReference Reference 0..*
diagnosis Encounter.diagnosis 0..*
account Reference 0..*
hospitalization Encounter.hospitalization 0..1
location Encounter.location 0..*
serviceProvider Reference 0..1
partOf Reference 0..1

@Encounter.statusHistory : BackboneElement
status code 1..1 =encounter-status
period Period 1..1

@Encounter.classHistory : BackboneElement
class Coding 1..1
period Period 1..1

@Encounter.participant : BackboneElement
type CodeableConcept 0..*
period Period 0..1
individual Reference 0..1

@Encounter.diagnosis : BackboneElement
condition Reference 1..1
use CodeableConcept 0..1
rank positiveInt 0..1

@Encounter.hospitalization : BackboneElement
preAdmissionIdentifier Identifier 0..1
origin Reference 0..1
admitSource CodeableConcept 0..1
reAdmission CodeableConcept 0..1
dietPreference CodeableConcept 0..*
specialCourtesy CodeableConcept 0..*
specialArrangement CodeableConcept 0..*
destination Reference 0..1
dischargeDisposition CodeableConcept 0..1

@Encounter.location : BackboneElement
location Reference 1..1
status code 0..1 =encounter-location-status
physicalType CodeableConcept 0..1
period Period 0..1

@ServiceRequest : DomainResource
identifier Identifier 0..*
instantiatesCanonical canonical 0..*
instantiatesUri uri 0..*
basedOn Reference 0..*
replaces Reference 0..*
requisition Identifier 0..1
status code 1..1 =request-status
intent code 1..1 =request-intent
category CodeableConcept 0..*
priority code 0..1 =request-priority
doNotPerform boolean 0..1
code CodeableConcept 0..1
orderDetail CodeableConcept 0..*
quantity[x] Quantity|Ratio|Range 0..1
subject Reference 1..1
encounter Reference 0..1
occurrence[x] dateTime|Period|Timing 0..1
asNeeded[x] boolean|CodeableConcept 0..1
authoredOn dateTime 0..1
requester Reference 0..1
performerType CodeableConcept 0..1
performer Reference 0..*
locationCode CodeableConcept 0..*
locationReference Reference 0..*
reasonCode CodeableConcept 0..*
reasonReference Reference 0..*
insurance Reference 0..*
supportingInfo Reference 0..*
specimen Reference 0..*
bodySite CodeableConcept 0..*
note Annotation 0..*
patientInstruction string 0..1
relevantHistory Reference 0..*

@Flag : DomainResource
identifier Identifier 0..*
status code 1..1 =flag-status
category CodeableConcept 0..*
code CodeableConcept 1..1
subject Reference 1..1
period Period 0..1
encounter Reference 0..1
author Reference 0..1

@Bundle : Resource
identifier Identifier 0..1
type code 1..1 =bundle-type
timestamp instant 0..1
total unsignedInt 0..1
link Bundle.link 0..*
entry Bundle.entry 0..*
signature Signature 0..1

@Bundle.link : BackboneElement
relation string 1..1
url uri 1..1

@Bundle.entry : BackboneElement
link Bundle.link 0..*
fullUrl uri 0..1
resource Resource 0..1
search Bundle.entry.search 0..1
request Bundle.entry.request 0..1
response Bundle.entry.response 0..1

@Bundle.entry.search : BackboneElement
mode code 0..1 =search-entry-mode
score decimal 0..1

@Bundle.entry.request : BackboneElement
method code 1..1 =http-verb
url uri 1..1
ifNoneMatch string 0..1
ifModifiedSince instant 0..1
ifMatch string 0..1
ifNoneExist string 0..1

@Bundle.entry.response : BackboneElement
status string 1..1
location uri 0..1
etag string 0..1
lastModified instant 0..1
outcome Resource 0..1
"""

# Types we accept inside extensions but do not look into (vistasim never emits them): any JSON object.
OPAQUE_TYPES = frozenset({
    "Signature", "ContactDetail", "Contributor", "DataRequirement", "Expression", "ParameterDefinition",
    "RelatedArtifact", "TriggerDefinition", "UsageContext"})
RESOURCE_TYPES = ("Patient", "Condition", "AllergyIntolerance", "MedicationRequest", "Observation", "Encounter",
                  "ServiceRequest", "Flag", "Bundle")

# element kinds in the compiled table
PRIM, COMPLEX, RESOURCE, OPAQUE = 0, 1, 2, 3


@dataclass(frozen=True, slots=True)
class ElementSpec:
    """One JSON key of a type: what it holds, whether it is an array, and its required value set."""

    name: str  # the FHIR element name ("deceased[x]" for every key of a choice)
    kind: int  # PRIM, COMPLEX, RESOURCE or OPAQUE
    type: str  # primitive or complex type name
    is_list: bool
    binding: frozenset[str] | None  # codes of a required binding (plain code elements)
    binding_system: str | None  # for CodeableConcept bindings: the system the codes belong to
    binding_name: str | None


@dataclass(slots=True)
class TypeSpec:
    """A compiled type: its JSON keys, required elements and choice groups."""

    name: str
    elements: dict[str, ElementSpec] = field(default_factory=dict)
    allowed: frozenset[str] = frozenset()  # every legal JSON key, "_x" primitive siblings included
    required: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (element name, JSON keys any of which will do)
    choices: dict[str, str] = field(default_factory=dict)  # JSON key -> choice element name
    is_resource: bool = False


def _type_key(t: str) -> str:
    return t[0].upper() + t[1:]


def _parse(text: str) -> dict[str, tuple[str | None, list[tuple[str, list[str], int, str, str | None]]]]:
    """Text -> {type: (base, [(name, types, min, max, binding)])}."""
    out: dict[str, tuple[str | None, list[tuple[str, list[str], int, str, str | None]]]] = {}
    current: str | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("@"):
            head = line[1:].split(":")
            current = head[0].strip()
            out[current] = (head[1].strip() if len(head) > 1 else None, [])
            continue
        assert current is not None, line
        parts = line.split()
        lo, hi = parts[2].split("..")
        binding = parts[3][1:] if len(parts) > 3 else None
        out[current][1].append((parts[0], parts[1].split("|"), int(lo), hi, binding))
    return out


def _compile(text: str) -> dict[str, TypeSpec]:
    raw = _parse(text)

    def flat(name: str) -> list[tuple[str, list[str], int, str, str | None]]:
        base, els = raw[name]
        return (flat(base) if base else []) + els

    specs: dict[str, TypeSpec] = {}
    for name in raw:
        spec = TypeSpec(name=name, is_resource=name in RESOURCE_TYPES)
        required: list[tuple[str, tuple[str, ...]]] = []
        allowed = set()
        for el, types, lo, hi, binding in flat(name):
            is_list = hi != "1"
            vs = VALUE_SETS[binding] if binding else None
            keys = []
            for t in types:
                key = el[:-3] + _type_key(t) if el.endswith("[x]") else el
                kind = (PRIM if t in PRIMITIVES else RESOURCE if t == "Resource"
                        else OPAQUE if t in OPAQUE_TYPES else COMPLEX)
                spec.elements[key] = ElementSpec(
                    name=el, kind=kind, type=t, is_list=is_list,
                    binding=vs[1] if vs else None, binding_system=vs[0] if vs else None, binding_name=binding)
                if el.endswith("[x]"):
                    spec.choices[key] = el
                keys.append(key)
                allowed.add(key)
                if kind == PRIM:
                    allowed.add("_" + key)
            if lo >= 1:
                required.append((el, tuple(keys)))
        if spec.is_resource:
            allowed.add("resourceType")
        spec.allowed = frozenset(allowed)
        spec.required = tuple(required)
        specs[name] = spec
    return specs


TYPES: dict[str, TypeSpec] = _compile(SPEC_TEXT)

# Invariants are registered by the validator (they need its issue helpers).
Invariant = Callable[[dict], list[tuple[str, str, str]]]
