"""Run scim2-tester 0.5.2 against a SCIM base URL and print every check.
usage: run_tester.py BASE_URL [TOKEN] [--verbose]
exit 0 only if no check is ERROR/CRITICAL (and prints counts per status)."""
import sys, collections
from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import check_server, Status

base = sys.argv[1]
token = sys.argv[2] if len(sys.argv) > 2 and not sys.argv[2].startswith("--") else None
verbose = "--verbose" in sys.argv
headers = {"Authorization": f"Bearer {token}"} if token else {}
http = Client(base_url=base, headers=headers, timeout=30)
scim = SyncSCIMClient(http)          # no models: tester discovers them from /Schemas + /ResourceTypes
results = check_server(scim)          # raise_exceptions=False by default
counts = collections.Counter()
for r in results:
    counts[r.status.name] += 1
    line = f"{r.status.name:10} {r.resource_type or '-':6} {r.title}: {r.reason}"
    if verbose or r.status not in (Status.SUCCESS,):
        print(line if not verbose or r.status == Status.SUCCESS else line + f"\n           data={r.data!r}"[:2000])
print("TOTAL", len(results), dict(counts))
sys.exit(1 if counts["ERROR"] or counts["CRITICAL"] else 0)
