//! What a SCIM client reads to learn the server (RFC 7644 §4): the service provider's
//! configuration, the resource types and their schemas. The schemas list exactly the
//! attributes [`super::Kind`] keeps: a client builds its models from them and refuses
//! an answer with an attribute they do not declare.

use super::{Base, Kind, MAX_RESULTS};
use serde_json::{Value, json};

const SCHEMAS: &str = include_str!("schemas.json");

/// `GET /ServiceProviderConfig`.
pub fn service_provider_config(base: &Base) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": { "supported": true },
        "bulk": { "supported": false, "maxOperations": 0, "maxPayloadSize": 0 },
        "filter": { "supported": true, "maxResults": MAX_RESULTS },
        "changePassword": { "supported": false },
        "sort": { "supported": false },
        "etag": { "supported": true },
        "authenticationSchemes": [
            {
                "type": "oauthbearertoken",
                "name": "API key as a Bearer token",
                "description": "An organization admin's or an organization service account's Keysmith API key, \
                                as `Authorization: Bearer <key>`.",
                "specUri": "https://www.rfc-editor.org/info/rfc6750",
                "primary": true
            },
            {
                "type": "httpbasic",
                "name": "API key as a Basic password",
                "description": "The same key as the password of HTTP Basic authentication, with any user name \
                                (W&B's `:KEY`).",
                "specUri": "https://www.rfc-editor.org/info/rfc7617",
                "primary": false
            }
        ],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{}/ServiceProviderConfig", base.0),
        }
    })
}

/// `GET /ResourceTypes`: User and Group.
pub fn resource_types(base: &Base) -> Vec<Value> {
    [Kind::User, Kind::Group]
        .into_iter()
        .map(|kind| resource_type(base, kind))
        .collect()
}

pub fn resource_type(base: &Base, kind: Kind) -> Value {
    let description = match kind {
        Kind::User => "A user of the organization",
        Kind::Group => "A team of the organization",
    };
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
        "id": kind.name(),
        "name": kind.name(),
        "endpoint": format!("/{}", kind.endpoint()),
        "description": description,
        "schema": kind.schema(),
        "meta": {
            "resourceType": "ResourceType",
            "location": format!("{}/ResourceTypes/{}", base.0, kind.name()),
        }
    })
}

/// `GET /Schemas`: the User and Group schemas.
pub fn schemas(base: &Base) -> Vec<Value> {
    let Ok(Value::Array(mut schemas)) = serde_json::from_str::<Value>(SCHEMAS) else {
        return Vec::new();
    };
    for schema in &mut schemas {
        let id = schema["id"].as_str().unwrap_or_default().to_owned();
        schema["meta"] = json!({ "resourceType": "Schema", "location": format!("{}/Schemas/{id}", base.0) });
    }
    schemas
}

/// The Error message's schema, for the doors.
pub const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schemas_declare_exactly_the_attributes_kept() {
        let base = Base("http://k.test/scim/v2".into());
        let schemas = schemas(&base);
        assert_eq!(schemas.len(), 2);
        for (schema, kind) in schemas.iter().zip([Kind::User, Kind::Group]) {
            assert_eq!(schema["id"], kind.schema());
            let mut declared: Vec<&str> = schema["attributes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["name"].as_str().unwrap())
                .collect();
            // externalId, id, meta and schemas are common to every resource (RFC 7643 §3.1).
            declared.extend(["externalId", "id", "meta", "schemas"]);
            let mut kept = kind.attributes();
            declared.sort_unstable();
            kept.sort_unstable();
            assert_eq!(declared, kept, "{}", kind.name());
        }
        assert_eq!(resource_types(&base)[1]["endpoint"], "/Groups");
    }
}
