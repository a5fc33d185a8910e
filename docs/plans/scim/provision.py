"""Provisioning sketch with scim2-client 0.13.2 (httpx2 engine).
usage: provision.py BASE_URL TOKEN"""
import sys
from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_models import PatchOp, PatchOperation, SearchRequest, SCIMException

base, token = sys.argv[1], sys.argv[2]
scim = SyncSCIMClient(Client(base_url=base, headers={"Authorization": f"Bearer {token}"}))
scim.discover()                                   # GET /ResourceTypes, /Schemas, /ServiceProviderConfig
User = scim.get_resource_model("User")            # models are built from the server's /Schemas
Group = scim.get_resource_model("Group")
print("User model fields:", list(User.model_fields))

# 1. create a user (POST /Users -> 201)
alice = scim.create(User(user_name="alice", display_name="Alice A.", active=True,
                         emails=[User.Emails(value="alice@example.com", type="work", primary=True)]))
print("created", alice.id, alice.meta.location, alice.meta.version)

# 2. find it again with a filter (GET /Users?filter=...)
found = scim.query(User, query_parameters=SearchRequest(filter='userName eq "alice"', start_index=1, count=10))
print("filter hits:", found.total_results, [u.user_name for u in found.resources or []])

# 3. W&B-style org role (PATCH /Users/{id}, op replace, path organizationRole)
scim.modify(User, alice.id, PatchOp[User](operations=[
    PatchOperation(op=PatchOperation.Op.replace_, path="organizationRole", value="admin")]))

# 4. create a team and add alice (POST /Groups, PATCH /Groups/{id} op add path members)
team = scim.create(Group(display_name="team1"))
scim.modify(Group, team.id, PatchOp[Group](operations=[
    PatchOperation(op=PatchOperation.Op.add, path="members",
                   value=[{"value": alice.id, "$ref": alice.meta.location, "type": "User"}])]))

# 5. W&B-style team role. teamRoles is advertised readOnly, so send a raw dict
#    (dict payloads bypass client-side request validation).
try:
    scim.modify(User, alice.id, {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "teamRoles",
                        "value": [{"teamName": "team1", "roleName": "admin"}]}]})
except SCIMException as exc:
    print("teamRoles patch refused by this server:", exc)

# 6. deactivate (PATCH active=false), then read back
scim.modify(User, alice.id, PatchOp[User](operations=[
    PatchOperation(op=PatchOperation.Op.replace_, path="active", value=False)]))
alice = scim.query(User, alice.id)
print("after:", alice.model_dump())
print("team:", scim.query(Group, team.id).model_dump())
