"""Token cost of every operation the sandbox serves.

The numbers are copied from the ``x-token-cost`` vendor extension of Pipedrive's official OpenAPI
documents (``tests/contract/openapi/openapi-v2.yaml`` and ``openapi-v1.yaml``); a test compares them to the
spec. Keys are ``(METHOD, sandbox path pattern)``: strip ``/api/v2`` (or ``/api/v1``) from the pattern to
get the spec path, e.g. ``("GET", "/api/v2/persons/search")`` is v2 ``GET /persons/search``
(operationId ``searchPersons``).
"""

from __future__ import annotations

V2 = "/api/v2"
V1 = "/api/v1"

# (method, path pattern) -> x-token-cost, from the official specs (operationId in the comment).
COSTS: dict[tuple[str, str], int] = {
    # --- API v2 (openapi-v2.yaml) ---
    ("GET", V2 + "/persons/search"): 20,  # searchPersons
    ("GET", V2 + "/persons"): 10,  # getPersons
    ("POST", V2 + "/persons"): 5,  # addPerson
    ("GET", V2 + "/persons/{id}"): 1,  # getPerson
    ("PATCH", V2 + "/persons/{id}"): 5,  # updatePerson
    ("GET", V2 + "/organizations/search"): 20,  # searchOrganization
    ("GET", V2 + "/organizations"): 10,  # getOrganizations
    ("POST", V2 + "/organizations"): 5,  # addOrganization
    ("GET", V2 + "/organizations/{id}"): 1,  # getOrganization
    ("PATCH", V2 + "/organizations/{id}"): 5,  # updateOrganization
    ("GET", V2 + "/deals"): 10,  # getDeals
    ("POST", V2 + "/deals"): 5,  # addDeal
    ("GET", V2 + "/deals/{id}"): 1,  # getDeal
    ("PATCH", V2 + "/deals/{id}"): 5,  # updateDeal
    ("GET", V2 + "/pipelines"): 5,  # getPipelines
    ("GET", V2 + "/stages"): 5,  # getStages
    ("GET", V2 + "/activities"): 10,  # getActivities
    ("POST", V2 + "/activities"): 5,  # addActivity
    ("GET", V2 + "/activities/{id}"): 1,  # getActivity
    ("GET", V2 + "/dealFields"): 10,  # getDealFields
    ("GET", V2 + "/organizationFields"): 10,  # getOrganizationFields
    ("GET", V2 + "/personFields"): 10,  # getPersonFields
    ("GET", V2 + "/leads/search"): 20,  # searchLeads
    # --- API v1 (openapi-v1.yaml) ---
    ("GET", V1 + "/leads"): 20,  # getLeads
    ("POST", V1 + "/leads"): 10,  # addLead
    ("GET", V1 + "/leads/{id}"): 2,  # getLead
    ("PATCH", V1 + "/leads/{id}"): 10,  # updateLead
    ("GET", V1 + "/leadFields"): 20,  # getLeadFields
    ("GET", V1 + "/leadLabels"): 10,  # getLeadLabels
    ("POST", V1 + "/leadLabels"): 10,  # addLeadLabel
    ("GET", V1 + "/activityTypes"): 20,  # getActivityTypes
    ("POST", V1 + "/activityTypes"): 10,  # addActivityType
    ("GET", V1 + "/users/me"): 2,  # getCurrentUser
}


def spec_key(method: str, pattern: str) -> tuple[str, str, str]:
    """``("v2", "GET", "/persons/search")``: the spec file and path for a COSTS key."""
    for version, prefix in (("v2", V2), ("v1", V1)):
        if pattern.startswith(prefix + "/"):
            return version, method, pattern[len(prefix):]
    raise ValueError(f"not an API path pattern: {pattern}")
