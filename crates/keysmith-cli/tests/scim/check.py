"""Runs scim2-tester (a SCIM 2.0 compliance checker from PyPI) against a SCIM base URL.

usage: check.py BASE_URL   with the Authorization header value in SCIM_AUTHORIZATION

Prints one JSON object: the number of checks per status, and every check that did not
succeed with its reason. scim2-tester has no command line; this is its Python API."""
import collections
import json
import os
import sys

from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

http = Client(base_url=sys.argv[1], headers={"Authorization": os.environ["SCIM_AUTHORIZATION"]}, timeout=60)
# No models given: the tester reads them from /Schemas and /ResourceTypes.
results = check_server(SyncSCIMClient(http))
counts = collections.Counter(r.status.name for r in results)
failures = [
    f"{r.status.name} {r.resource_type or '-'} {r.title}: {r.reason}"
    for r in results
    if r.status != Status.SUCCESS
]
print(json.dumps({"total": len(results), "counts": counts, "failures": failures}))
