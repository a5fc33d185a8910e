"""schemathesis hooks for scripts/api-fuzz: the run never takes away its own authority.

The run authenticates as the `admin` user with one API key. Schemathesis learns key
IDs and user names from responses (its stateful phase follows links it infers, such
as from GET /api/v1/api-keys to DELETE /api/v1/api-keys/{key_id}), so without these
hooks it deletes or rotates that key, or deactivates, demotes or deletes `admin`,
part-way through, and every later request only tests the 401 path; or it restricts the
organization's networks to ones the run is not in.

Such requests are still sent, but aimed at stand-ins that scripts/api-fuzz creates
for the purpose: a second key of the admin's (API_FUZZ_DECOY_KEY_ID) and a second
user (API_FUZZ_DECOY_USER). Everything else is left as generated.
"""

import os

import schemathesis

OWN_KEY_ID = os.environ["API_FUZZ_KEY_ID"]
DECOY_KEY_ID = os.environ["API_FUZZ_DECOY_KEY_ID"]
OWN_USER = "admin"
DECOY_USER = os.environ["API_FUZZ_DECOY_USER"]


def _is_own_user(name):
    # User names are matched without regard to case or surrounding space.
    return isinstance(name, str) and name.strip().lower() == OWN_USER


@schemathesis.hook
def before_call(context, case, kwargs):
    path = case.operation.path
    method = case.operation.method.upper()
    params = case.path_parameters
    # Deleting or rotating (rotation with grace `now` ends the old key at once).
    if path in ("/api/v1/api-keys/{key_id}", "/api/v1/api-keys/{key_id}/rotate") and method in ("DELETE", "POST"):
        if params and params.get("key_id") == OWN_KEY_ID:
            params["key_id"] = DECOY_KEY_ID
    elif path == "/api/v1/api-keys/bulk-delete" and isinstance(case.body, dict):
        ids = case.body.get("key_ids")
        if isinstance(ids, list) and OWN_KEY_ID in ids:
            case.body["key_ids"] = [DECOY_KEY_ID if i == OWN_KEY_ID else i for i in ids]
    # An organization allowlist would lock the run's own key out: whatever was
    # generated is still sent (and parsed), with every address allowed beside it.
    elif path == "/api/v1/orgs/{org}" and method == "PATCH" and isinstance(case.body, dict):
        networks = case.body.get("allowed_networks")
        if isinstance(networks, list):
            case.body["allowed_networks"] = networks + ["0.0.0.0/0", "::/0"]
    # Deactivating, demoting or deleting the admin.
    elif path == "/api/v1/orgs/{org}/users/{username}" and method in ("PATCH", "DELETE"):
        if params and _is_own_user(params.get("username")):
            params["username"] = DECOY_USER
