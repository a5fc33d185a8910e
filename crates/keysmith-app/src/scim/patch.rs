//! SCIM PATCH (RFC 7644 §3.5.2) applied to a resource's writable attributes, a JSON
//! object. Every operation of a request is applied to a copy first; the result is
//! then checked and acted on as a whole, like a PUT, so a request with one bad
//! operation changes nothing.
//!
//! What identity providers send beyond the RFC's examples is accepted: operation
//! names in any case (Entra's `Replace`), a `replace` without a path whose value is an
//! object of attributes, a `remove` of `members` with a list of members as its value,
//! and `replace` of `emails[type eq "work"].value` when no email of that type exists
//! yet (one is added). Attributes Keysmith does not keep are accepted and dropped, as
//! in a POST.

use super::filter::{field, matches_element};
use super::{Kind, ScimError, ScimType};
use scim_v2::filter::{AttrExp, CompValue, CompareOp, PatchPath, ValFilter};
use serde_json::{Map, Value};

/// The PatchOp message's schema.
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// Operations per request at most.
pub const MAX_OPERATIONS: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Remove,
    Replace,
}

/// One operation as parsed, before it is applied.
#[derive(Debug, Clone)]
pub struct Operation {
    op: Op,
    path: Option<PatchPath>,
    value: Option<Value>,
}

impl Operation {
    /// Whether it names W&B's `teamRoles` (handled apart: it changes team membership).
    pub fn team_roles(&self) -> Option<&Value> {
        match &self.path {
            Some(PatchPath::Attr(p)) if p.name.eq_ignore_ascii_case("teamRoles") && p.sub_attr.is_none() => {
                match self.op {
                    Op::Add | Op::Replace => Some(self.value.as_ref().unwrap_or(&Value::Null)),
                    Op::Remove => None,
                }
            }
            _ => None,
        }
    }
}

/// The operations of a PatchOp request body.
pub fn parse(body: &Value) -> Result<Vec<Operation>, ScimError> {
    let syntax = |m: &str| ScimError::bad(ScimType::InvalidSyntax, m.to_owned());
    if let Some(schemas) = field(body, "schemas") {
        let names_patch = schemas
            .as_array()
            .is_some_and(|s| s.iter().any(|v| v.as_str() == Some(PATCH_OP)));
        if !names_patch {
            return Err(syntax(&format!("a PATCH body's `schemas` must be [\"{PATCH_OP}\"]")));
        }
    }
    let Some(Value::Array(ops)) = field(body, "Operations") else {
        return Err(syntax("a PATCH body needs `Operations`, a list of operations"));
    };
    if ops.is_empty() || ops.len() > MAX_OPERATIONS {
        return Err(syntax(&format!("a PATCH body holds 1 to {MAX_OPERATIONS} operations")));
    }
    ops.iter().map(parse_one).collect()
}

fn parse_one(raw: &Value) -> Result<Operation, ScimError> {
    let op = match field(raw, "op")
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("add") => Op::Add,
        Some("remove") => Op::Remove,
        Some("replace") => Op::Replace,
        _ => {
            return Err(ScimError::bad(
                ScimType::InvalidSyntax,
                "each operation's `op` is `add`, `remove` or `replace`",
            ));
        }
    };
    let path = match field(raw, "path") {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) if !p.trim().is_empty() => Some(
            p.parse::<PatchPath>()
                .map_err(|e| ScimError::bad(ScimType::InvalidPath, format!("the path `{p}` is not valid: {e}")))?,
        ),
        Some(_) => return Err(ScimError::bad(ScimType::InvalidPath, "`path` must be a string")),
    };
    let value = field(raw, "value").cloned();
    if op == Op::Remove && path.is_none() {
        return Err(ScimError::bad(
            ScimType::NoTarget,
            "a `remove` operation needs a `path`",
        ));
    }
    if op != Op::Remove && value.is_none() {
        return Err(ScimError::bad(
            ScimType::InvalidValue,
            "an `add` or `replace` operation needs a `value`",
        ));
    }
    Ok(Operation { op, path, value })
}

/// Applies `operation` to `attrs`, the writable attributes of a resource of `kind`.
pub fn apply(attrs: &mut Map<String, Value>, kind: Kind, operation: &Operation) -> Result<(), ScimError> {
    let value = operation.value.clone().unwrap_or(Value::Null);
    let Some(path) = &operation.path else {
        // No path: the value is an object of attributes (RFC 7644 §3.5.2.1, .3).
        let Value::Object(fields) = value else {
            return Err(ScimError::bad(
                ScimType::InvalidValue,
                "an operation without a `path` needs an object of attributes as its `value`",
            ));
        };
        for (name, value) in fields {
            let name = strip_schema(kind, &name);
            if let Some(name) = writable(kind, name)? {
                set(attrs, kind, name, operation.op, value);
            }
        }
        return Ok(());
    };
    match path {
        PatchPath::Attr(p) => {
            if p.uri.as_deref().is_some_and(|u| u != kind.schema()) {
                return Ok(());
            }
            let Some(name) = writable(kind, &p.name)? else {
                return Ok(());
            };
            match &p.sub_attr {
                None if operation.op == Op::Remove => remove(attrs, kind, name, operation.value.as_ref()),
                None => set(attrs, kind, name, operation.op, value),
                Some(sub) => {
                    if !kind.is_multi(name) {
                        return Err(ScimError::bad(
                            ScimType::InvalidPath,
                            format!("`{name}` has no sub-attribute `{sub}`"),
                        ));
                    }
                    for element in elements_mut(attrs, name) {
                        set_sub(element, sub, operation.op, &value);
                    }
                }
            }
        }
        PatchPath::Value(vp) => {
            let Some(name) = writable(kind, &vp.attr.name)? else {
                return Ok(());
            };
            if !kind.is_multi(name) {
                return Err(ScimError::bad(
                    ScimType::InvalidPath,
                    format!("`{name}` is not multi-valued; it cannot be filtered"),
                ));
            }
            let sub = vp.sub_attr.as_deref();
            let list = elements_mut(attrs, name);
            let hits: Vec<usize> = (0..list.len())
                .filter(|i| matches_element(&vp.filter, &list[*i]))
                .collect();
            match (operation.op, sub) {
                (Op::Remove, None) => {
                    let mut i = 0;
                    list.retain(|_| {
                        i += 1;
                        !hits.contains(&(i - 1))
                    });
                }
                (Op::Remove, Some(sub)) => hits
                    .iter()
                    .for_each(|i| set_sub(&mut list[*i], sub, Op::Remove, &value)),
                (_, Some(sub)) if hits.is_empty() => {
                    // Entra's `emails[type eq "work"].value` for a user with no work
                    // email: the element the filter describes, with the value.
                    let mut element = Map::new();
                    equalities(&vp.filter, &mut element);
                    element.insert(sub.to_owned(), value);
                    list.push(Value::Object(element));
                }
                (_, Some(sub)) => hits
                    .iter()
                    .for_each(|i| set_sub(&mut list[*i], sub, operation.op, &value)),
                (_, None) if hits.is_empty() => list.push(value),
                (_, None) => hits.iter().for_each(|i| list[*i] = value.clone()),
            }
            if list.is_empty() {
                attrs.remove(name);
            }
        }
    }
    Ok(())
}

/// `urn:…:User:active` is `active` for a User.
pub(super) fn strip_schema(kind: Kind, name: &str) -> &str {
    name.strip_prefix(kind.schema())
        .and_then(|rest| rest.strip_prefix(':'))
        .unwrap_or(name)
}

/// The canonical name of a writable attribute; `None` for an attribute Keysmith does
/// not keep (dropped); refused for one it keeps but nobody may write.
fn writable(kind: Kind, name: &str) -> Result<Option<&'static str>, ScimError> {
    if let Some(known) = kind.writable().iter().find(|k| k.eq_ignore_ascii_case(name)) {
        return Ok(Some(known));
    }
    if kind.read_only().iter().any(|k| k.eq_ignore_ascii_case(name)) {
        return Err(ScimError::bad(ScimType::Mutability, format!("`{name}` is read-only")));
    }
    Ok(None)
}

fn set(attrs: &mut Map<String, Value>, kind: Kind, name: &str, op: Op, value: Value) {
    if value.is_null() {
        attrs.remove(name);
        return;
    }
    if kind.is_multi(name) && op == Op::Add {
        let added = match value {
            Value::Array(items) => items,
            one => vec![one],
        };
        elements_mut(attrs, name).extend(added);
    } else {
        attrs.insert(name.to_owned(), value);
    }
}

/// `remove` of a whole attribute; of a multi-valued one with a list as its value, only
/// the elements whose `value` the list names (Entra's way to remove group members).
fn remove(attrs: &mut Map<String, Value>, kind: Kind, name: &str, value: Option<&Value>) {
    let named: Vec<&Value> = match value {
        Some(Value::Array(items)) if kind.is_multi(name) => items.iter().filter_map(|i| field(i, "value")).collect(),
        _ => {
            attrs.remove(name);
            return;
        }
    };
    let list = elements_mut(attrs, name);
    list.retain(|element| !field(element, "value").is_some_and(|v| named.contains(&v)));
    if list.is_empty() {
        attrs.remove(name);
    }
}

fn set_sub(element: &mut Value, sub: &str, op: Op, value: &Value) {
    if let Value::Object(fields) = element {
        let key = fields
            .keys()
            .find(|k| k.eq_ignore_ascii_case(sub))
            .cloned()
            .unwrap_or_else(|| sub.to_owned());
        if op == Op::Remove || value.is_null() {
            fields.remove(&key);
        } else {
            fields.insert(key, value.clone());
        }
    }
}

/// The list under `name`, made one if it is absent or a single value.
fn elements_mut<'a>(attrs: &'a mut Map<String, Value>, name: &str) -> &'a mut Vec<Value> {
    let slot = attrs.entry(name.to_owned()).or_insert_with(|| Value::Array(Vec::new()));
    if !slot.is_array() {
        let one = slot.take();
        *slot = Value::Array(if one.is_null() { Vec::new() } else { vec![one] });
    }
    match slot {
        Value::Array(items) => items,
        _ => unreachable!("made an array above"),
    }
}

/// The `attr eq "value"` conditions of a filter joined by `and`, as fields.
fn equalities(filter: &ValFilter, into: &mut Map<String, Value>) {
    match filter {
        ValFilter::Attr(AttrExp::Comparison(path, CompareOp::Eq, wanted)) if path.sub_attr.is_none() => {
            let value = match wanted {
                CompValue::Str(s) => Value::String(s.clone()),
                CompValue::True => Value::Bool(true),
                CompValue::False => Value::Bool(false),
                CompValue::Number(n) => Value::Number(n.clone()),
                CompValue::Null => return,
            };
            into.insert(path.name.clone(), value);
        }
        ValFilter::And(ops) => ops.as_slice().iter().for_each(|f| equalities(f, into)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patched(start: Value, ops: Value) -> Result<Value, ScimError> {
        let mut attrs = start.as_object().unwrap().clone();
        let body = json!({"schemas": [PATCH_OP], "Operations": ops});
        for op in parse(&body)? {
            apply(&mut attrs, Kind::User, &op)?;
        }
        Ok(Value::Object(attrs))
    }

    #[test]
    fn add_appends_replace_swaps_remove_unassigns() {
        let start = json!({"userName": "ada", "emails": [{"value": "a@x.test"}], "active": true});
        let out = patched(
            start.clone(),
            json!([
                {"op": "add", "path": "emails", "value": [{"value": "b@x.test", "type": "home"}]},
                {"op": "Replace", "path": "displayName", "value": "Ada L."},
                {"op": "remove", "path": "active"}
            ]),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"userName": "ada", "displayName": "Ada L.",
                   "emails": [{"value": "a@x.test"}, {"value": "b@x.test", "type": "home"}]})
        );
        let out = patched(
            start,
            json!([{"op": "replace", "path": "emails", "value": [{"value": "c@x.test"}]}]),
        )
        .unwrap();
        assert_eq!(out["emails"], json!([{"value": "c@x.test"}]));
    }

    #[test]
    fn the_forms_identity_providers_send_are_understood() {
        let start = json!({"userName": "ada", "emails": [{"value": "a@x.test", "type": "home"}]});
        // Entra: no path, a value object, a string boolean, a schema-qualified name.
        let out = patched(
            start.clone(),
            json!([{"op": "Replace", "value": {"active": "False",
                "urn:ietf:params:scim:schemas:core:2.0:User:displayName": "Ada", "name.givenName": "dropped"}}]),
        )
        .unwrap();
        assert_eq!(out["active"], json!("False"));
        assert_eq!(out["displayName"], json!("Ada"));
        assert!(out.get("name.givenName").is_none());
        // A filtered path: replace the work email's value, which does not exist yet.
        let out = patched(
            start.clone(),
            json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "w@x.test"}]),
        )
        .unwrap();
        assert_eq!(
            out["emails"],
            json!([{"value": "a@x.test", "type": "home"}, {"type": "work", "value": "w@x.test"}])
        );
        let out = patched(start, json!([{"op": "remove", "path": "emails[type eq \"home\"]"}])).unwrap();
        assert!(out.get("emails").is_none());
        // Attributes Keysmith does not keep are dropped, as in a POST.
        let out = patched(
            json!({"userName": "ada"}),
            json!([{"op": "add", "path": "title", "value": "x"}]),
        )
        .unwrap();
        assert_eq!(out, json!({"userName": "ada"}));
    }

    #[test]
    fn bad_operations_are_refused_with_their_scim_type() {
        let cases = [
            (json!([{"op": "move", "path": "active"}]), ScimType::InvalidSyntax),
            (json!([{"op": "remove"}]), ScimType::NoTarget),
            (json!([{"op": "add", "path": "emails["}]), ScimType::InvalidPath),
            (
                json!([{"op": "replace", "path": "id", "value": "7"}]),
                ScimType::Mutability,
            ),
            (json!([{"op": "replace", "path": "active"}]), ScimType::InvalidValue),
            (json!([{"op": "replace", "value": "x"}]), ScimType::InvalidValue),
            (
                json!([{"op": "replace", "path": "userName.first", "value": "x"}]),
                ScimType::InvalidPath,
            ),
            (json!([]), ScimType::InvalidSyntax),
        ];
        for (ops, expected) in cases {
            match patched(json!({"userName": "ada"}), ops.clone()) {
                Err(ScimError::Bad { scim_type, .. }) => assert_eq!(scim_type, expected, "{ops}"),
                other => panic!("{ops}: {other:?}"),
            }
        }
        let wrong_schema = json!({"schemas": ["urn:x"], "Operations": [{"op": "remove", "path": "active"}]});
        assert!(parse(&wrong_schema).is_err());
    }
}
