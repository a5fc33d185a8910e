//! SCIM filters (RFC 7644 §3.4.2.2) evaluated against resources as JSON. The grammar
//! is parsed by the `scim_v2` crate; what a parsed filter means for Keysmith's
//! resources is decided here: attribute names without case, strings compared without
//! case (none of Keysmith's SCIM attributes is `caseExact`), and a multi-valued
//! complex attribute compared by its `value`.

use super::{ScimError, ScimType};
use scim_v2::filter::{AttrExp, AttrPath, CompValue, CompareOp, Filter, ValFilter};
use serde_json::Value;

/// A parsed filter, checked to name only attributes of `known`.
pub fn parse(text: &str, known: &[&str]) -> Result<Filter, ScimError> {
    let filter: Filter = text
        .parse()
        .map_err(|e| ScimError::bad(ScimType::InvalidFilter, format!("the filter is not valid: {e}")))?;
    check_names(&filter, known)?;
    Ok(filter)
}

fn check_names(filter: &Filter, known: &[&str]) -> Result<(), ScimError> {
    let check = |path: &AttrPath| {
        if known.iter().any(|k| k.eq_ignore_ascii_case(&path.name)) {
            Ok(())
        } else {
            Err(ScimError::bad(
                ScimType::InvalidFilter,
                format!("the filter names `{}`, which is not an attribute here", path.name),
            ))
        }
    };
    match filter {
        Filter::Attr(exp) => check(exp_path(exp)),
        Filter::ValuePath(vp) => check(&vp.attr),
        Filter::Not(inner) => check_names(inner, known),
        Filter::And(ops) | Filter::Or(ops) => ops.as_slice().iter().try_for_each(|f| check_names(f, known)),
    }
}

fn exp_path(exp: &AttrExp) -> &AttrPath {
    match exp {
        AttrExp::Present(path) | AttrExp::Comparison(path, _, _) => path,
    }
}

/// Whether `resource` (a JSON object) matches `filter`.
pub fn matches(filter: &Filter, resource: &Value) -> bool {
    match filter {
        Filter::Attr(exp) => holds(exp, resource),
        Filter::ValuePath(vp) => elements(resource, &vp.attr.name)
            .iter()
            .any(|element| matches_element(&vp.filter, element)),
        Filter::Not(inner) => !matches(inner, resource),
        Filter::And(ops) => ops.as_slice().iter().all(|f| matches(f, resource)),
        Filter::Or(ops) => ops.as_slice().iter().any(|f| matches(f, resource)),
    }
}

/// Whether one element of a multi-valued attribute (`emails[type eq "work"]`) matches.
pub fn matches_element(filter: &ValFilter, element: &Value) -> bool {
    match filter {
        ValFilter::Attr(exp) => holds(exp, element),
        ValFilter::Not(inner) => !matches_element(inner, element),
        ValFilter::And(ops) => ops.as_slice().iter().all(|f| matches_element(f, element)),
        ValFilter::Or(ops) => ops.as_slice().iter().any(|f| matches_element(f, element)),
    }
}

/// The value of `name` in an object, its name compared without case.
pub fn field<'a>(object: &'a Value, name: &str) -> Option<&'a Value> {
    object
        .as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// The elements of an attribute: those of an array, or the value itself.
fn elements<'a>(object: &'a Value, name: &str) -> Vec<&'a Value> {
    match field(object, name) {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(Value::Null) | None => Vec::new(),
        Some(value) => vec![value],
    }
}

/// The simple values an attribute path names: `emails.value` gives each email's
/// value; `emails` alone gives each email's `value` too (RFC 7644 §3.4.2.2).
fn values<'a>(object: &'a Value, path: &AttrPath) -> Vec<&'a Value> {
    elements(object, &path.name)
        .into_iter()
        .filter_map(|element| match (&path.sub_attr, element) {
            (Some(sub), _) => field(element, sub),
            (None, Value::Object(_)) => field(element, "value"),
            (None, simple) => Some(simple),
        })
        .filter(|v| !v.is_null())
        .collect()
}

fn holds(exp: &AttrExp, object: &Value) -> bool {
    match exp {
        AttrExp::Present(path) => values(object, path).iter().any(|v| match v {
            Value::String(s) => !s.is_empty(),
            Value::Array(a) => !a.is_empty(),
            _ => true,
        }),
        AttrExp::Comparison(path, op, wanted) => {
            let found = values(object, path);
            match (op, wanted) {
                (CompareOp::Eq, CompValue::Null) => found.is_empty(),
                (CompareOp::Ne, CompValue::Null) => !found.is_empty(),
                (CompareOp::Ne, _) => !found.iter().any(|v| compare(v, &CompareOp::Eq, wanted)),
                _ => found.iter().any(|v| compare(v, op, wanted)),
            }
        }
    }
}

fn compare(value: &Value, op: &CompareOp, wanted: &CompValue) -> bool {
    use std::cmp::Ordering;
    let ordering = match (value, wanted) {
        (Value::String(have), CompValue::Str(want)) => {
            let (have, want) = (have.to_lowercase(), want.to_lowercase());
            match op {
                CompareOp::Co => return have.contains(&want),
                CompareOp::Sw => return have.starts_with(&want),
                CompareOp::Ew => return have.ends_with(&want),
                _ => have.cmp(&want),
            }
        }
        (Value::Bool(have), CompValue::True) => have.cmp(&true),
        (Value::Bool(have), CompValue::False) => have.cmp(&false),
        (Value::Number(have), CompValue::Number(want)) => match (have.as_f64(), want.as_f64()) {
            (Some(h), Some(w)) => h.partial_cmp(&w).unwrap_or(Ordering::Less),
            _ => return false,
        },
        _ => return false,
    };
    match op {
        CompareOp::Eq => ordering == Ordering::Equal,
        CompareOp::Ne => ordering != Ordering::Equal,
        CompareOp::Gt => ordering == Ordering::Greater,
        CompareOp::Ge => ordering != Ordering::Less,
        CompareOp::Lt => ordering == Ordering::Less,
        CompareOp::Le => ordering != Ordering::Greater,
        // Containment means nothing for booleans and numbers.
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const KNOWN: &[&str] = &["userName", "emails", "active", "displayName", "externalId"];

    fn hit(filter: &str, resource: &Value) -> bool {
        matches(&parse(filter, KNOWN).unwrap(), resource)
    }

    #[test]
    fn operators_compare_strings_without_case_and_lists_by_any_element() {
        let ada = json!({
            "userName": "Ada", "active": false, "externalId": "e-1",
            "emails": [{"value": "ada@Example.com", "type": "work"}, {"value": "a@home.test", "type": "home"}]
        });
        for yes in [
            r#"username eq "ada""#,
            r#"userName co "D""#,
            r#"userName sw "ad""#,
            r#"userName ew "DA""#,
            r#"emails.value eq "ADA@example.com""#,
            r#"emails co "home.test""#,
            r#"emails[type eq "work" and value co "example"]"#,
            "externalId pr",
            "active eq false",
            r#"displayName eq null"#,
            r#"userName ne "bob""#,
            r#"not (userName eq "bob")"#,
            r#"(displayName sw "x" or externalId pr) and active eq false"#,
            r#"userName gt "Aa" and userName lt "b""#,
        ] {
            assert!(hit(yes, &ada), "{yes}");
        }
        for no in [
            r#"userName eq "ad""#,
            "displayName pr",
            "active eq true",
            r#"emails[type eq "home" and value co "example"]"#,
            r#"userName ne "ADA""#,
            r#"userName co "zz" or externalId eq "e-2""#,
            r#"active co "f""#,
        ] {
            assert!(!hit(no, &ada), "{no}");
        }
    }

    #[test]
    fn a_bad_filter_or_an_unknown_attribute_is_invalid_filter() {
        for bad in [
            r#"userName eq"#,
            r#"userName xx "a""#,
            r#"(userName eq "a""#,
            r#"title eq "x""#,
        ] {
            let err = parse(bad, KNOWN).unwrap_err();
            assert!(
                matches!(
                    &err,
                    ScimError::Bad {
                        scim_type: ScimType::InvalidFilter,
                        ..
                    }
                ),
                "{bad}: {err:?}"
            );
        }
    }
}
