"""FHIR R4 (4.0.1) for vistasim: map VistA records to Bundles, standardize codes, validate at three levels.

    map_person(records, tz=...)     -> transaction Bundle for one person (one ICN)   (mapping)
    standardize(bundle)             -> StandardizeResult(bundle, gaps)                (standardize)
    schema_check / business_rules / data_integrity -> list[Issue]                     (validate)
"""

from vistasim.fhir.mapping import group_by_person, map_people, map_person
from vistasim.fhir.standardize import Gap, StandardizeResult, standardize, transform_person
from vistasim.fhir.validate import Issue, business_rules, data_integrity, schema_check, validate_bundle

__all__ = ["map_person", "map_people", "group_by_person", "standardize", "transform_person", "Gap",
           "StandardizeResult", "Issue", "schema_check", "business_rules", "data_integrity", "validate_bundle"]
