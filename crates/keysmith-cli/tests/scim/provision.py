"""A provisioning scenario with scim2-client (from PyPI), as an identity provider runs it.

usage: provision.py BASE_URL STEP [ARG]   with the Authorization header in SCIM_AUTHORIZATION
  create             creates the user ada (with an email), makes her an org admin and then
                     a member again, creates the team vision with her in it, makes her its
                     admin through W&B's teamRoles, finds her by a filter; prints her
                     resource as JSON
  deactivate ID      PATCH active=false; prints the resource
  delete ID          DELETE; prints the status of a GET that follows"""
import json
import os
import sys

from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_models import PatchOp, PatchOperation, SearchRequest
from scim2_models import SCIMException

base, step = sys.argv[1], sys.argv[2]
scim = SyncSCIMClient(Client(base_url=base, headers={"Authorization": os.environ["SCIM_AUTHORIZATION"]}, timeout=60))
scim.discover()
User = scim.get_resource_model("User")
Group = scim.get_resource_model("Group")


def replace(path, value):
    return PatchOp[User](operations=[PatchOperation(op=PatchOperation.Op.replace_, path=path, value=value)])


if step == "create":
    ada = scim.create(User(user_name="ada", display_name="Ada Lovelace", active=True,
                           emails=[User.Emails(value="ada@example.com", type="work", primary=True)]))
    roles = []
    for role in ["admin", "member"]:
        scim.modify(User, ada.id, replace("organizationRole", role))
        roles.append(scim.query(User, ada.id).organization_role)
    team = scim.create(Group(display_name="vision"))
    scim.modify(Group, team.id, PatchOp[Group](operations=[PatchOperation(
        op=PatchOperation.Op.add, path="members",
        value=[{"value": ada.id, "$ref": ada.meta.location, "type": "User"}])]))
    # teamRoles is read-only in the schema, so the client will not build this PATCH;
    # W&B's identity providers send it as a plain body.
    scim.modify(User, ada.id, {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                               "Operations": [{"op": "replace", "path": "teamRoles",
                                               "value": [{"teamName": "vision", "roleName": "admin"}]}]})
    found = scim.query(User, query_parameters=SearchRequest(filter='emails.value eq "ADA@example.com"'))
    ada = scim.query(User, ada.id)
    print(json.dumps({"roles": roles, "found": [u.id for u in found.resources or []],
                      "team": scim.query(Group, team.id).model_dump(mode="json"),
                      "user": ada.model_dump(mode="json")}))
elif step == "deactivate":
    scim.modify(User, sys.argv[3], replace("active", False))
    print(json.dumps(scim.query(User, sys.argv[3]).model_dump(mode="json")))
elif step == "delete":
    scim.delete(User, sys.argv[3])
    try:
        scim.query(User, sys.argv[3])
        print(json.dumps({"after": "found"}))
    except SCIMException as e:
        print(json.dumps({"after": type(e).__name__}))
else:
    sys.exit(f"unknown step {step}")
