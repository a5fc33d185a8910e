//! A fast lane for the one query every wandb SDK sends on every login check:
//! `query Viewer { viewer { id entity username flags teams { edges { node { name } } } } }`
//! and documents shaped like it (a single `viewer` field selecting plain fields of the
//! caller). Such a document is recognized once, when it is parsed, and its answer is
//! written straight from the caller (cached: no database read) instead of running the
//! executor, which validates and walks the document on every request.
//!
//! The answer is byte for byte the executor's: the same resolvers' values
//! (`objects::global_id`, `users::teams_of`), in the order the query asks for them,
//! and a test compares the two for every field this lane serves. Anything else (an
//! alias, an argument, a directive, a fragment, a variable, another field, no caller)
//! goes to the executor.

use super::objects::global_id;
use crate::access::Caller;
use crate::state::AppState;
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, Field, OperationType, Selection, SelectionSet,
};
use keysmith_app::users;

/// A field of the viewer this lane answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewerField {
    Id,
    Name,
    Username,
    Email,
    Entity,
    Flags,
    AccountType,
    /// `teams { edges { node { name } } }`
    TeamNames,
}

/// What a recognized document asks: the operation's name (if any) and the fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewerQuery {
    pub operation: Option<String>,
    pub fields: Vec<ViewerField>,
}

/// The only field of `set`, if it is plain and named `name`.
fn only<'a>(set: &'a SelectionSet, name: &str) -> Option<&'a Field> {
    match set.items.as_slice() {
        [item] => plain(&item.node).filter(|f| f.name.node == name),
        _ => None,
    }
}

/// A field with no alias, arguments or directives.
fn plain(selection: &Selection) -> Option<&Field> {
    match selection {
        Selection::Field(field) => {
            let f = &field.node;
            (f.alias.is_none() && f.arguments.is_empty() && f.directives.is_empty()).then_some(f)
        }
        _ => None,
    }
}

/// The document, if this lane can answer it.
pub fn recognize(document: &ExecutableDocument) -> Option<ViewerQuery> {
    if !document.fragments.is_empty() {
        return None;
    }
    let (name, operation) = match &document.operations {
        DocumentOperations::Single(op) => (None, op),
        DocumentOperations::Multiple(ops) if ops.len() == 1 => {
            let (name, op) = ops.iter().next()?;
            (Some(name.to_string()), op)
        }
        DocumentOperations::Multiple(_) => return None,
    };
    let op = &operation.node;
    if op.ty != OperationType::Query || !op.variable_definitions.is_empty() || !op.directives.is_empty() {
        return None;
    }
    let viewer = only(&op.selection_set.node, "viewer")?;
    let mut fields = Vec::new();
    for item in &viewer.selection_set.node.items {
        let field = plain(&item.node)?;
        let scalar = field.selection_set.node.items.is_empty();
        let wanted = match field.name.node.as_str() {
            "id" if scalar => ViewerField::Id,
            "name" if scalar => ViewerField::Name,
            "username" if scalar => ViewerField::Username,
            "email" if scalar => ViewerField::Email,
            "entity" if scalar => ViewerField::Entity,
            "flags" if scalar => ViewerField::Flags,
            "accountType" if scalar => ViewerField::AccountType,
            "teams" => {
                let edges = only(&field.selection_set.node, "edges")?;
                let node = only(&edges.selection_set.node, "node")?;
                let name = only(&node.selection_set.node, "name")?;
                if !name.selection_set.node.items.is_empty() {
                    return None;
                }
                ViewerField::TeamNames
            }
            _ => return None,
        };
        if fields.contains(&wanted) {
            // Asked twice: GraphQL merges them; the executor knows how.
            return None;
        }
        fields.push(wanted);
    }
    if fields.is_empty() {
        return None;
    }
    Some(ViewerQuery {
        operation: name,
        fields,
    })
}

fn string(out: &mut String, value: &str) {
    // Writing JSON into a String cannot fail.
    out.push_str(&serde_json::to_string(value).unwrap_or_default());
}

/// The response body for `query`, answered for `caller`; `None` if the executor must
/// answer (a teams lookup that needs the store failed, say).
pub async fn answer(state: &AppState, caller: &Caller, query: &ViewerQuery) -> Option<String> {
    let user = &caller.principal.user;
    let mut out = String::with_capacity(160);
    out.push_str(r#"{"data":{"viewer":{"#);
    for (i, field) in query.fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match field {
            ViewerField::Id => {
                out.push_str(r#""id":"#);
                string(&mut out, &global_id("User", user.id.0).0);
            }
            ViewerField::Name => {
                out.push_str(r#""name":"#);
                string(&mut out, &user.username);
            }
            ViewerField::Username => {
                out.push_str(r#""username":"#);
                string(&mut out, &user.username);
            }
            ViewerField::Entity => {
                out.push_str(r#""entity":"#);
                string(&mut out, &user.username);
            }
            ViewerField::Email => {
                out.push_str(r#""email":"#);
                match &caller.profile.email {
                    Some(email) => string(&mut out, email),
                    None => out.push_str("null"),
                }
            }
            ViewerField::Flags => out.push_str(r#""flags":"{}""#),
            ViewerField::AccountType => {
                out.push_str(r#""accountType":"#);
                string(&mut out, super::objects::account_type(user.kind));
            }
            ViewerField::TeamNames => {
                let teams = users::teams_of(&state.app, caller, user.id).await.ok()?;
                out.push_str(r#""teams":{"edges":["#);
                for (j, team) in teams.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    out.push_str(r#"{"node":{"name":"#);
                    string(&mut out, &team.name);
                    out.push_str("}}");
                }
                out.push_str("]}");
            }
        }
    }
    out.push_str("}}}");
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(text: &str) -> Option<ViewerQuery> {
        recognize(&async_graphql::parser::parse_query(text).unwrap())
    }

    #[test]
    fn the_sdks_viewer_query_is_recognized_and_nothing_else() {
        let sdk = query("query Viewer { viewer { id entity username flags teams { edges { node { name } } } } }");
        assert_eq!(
            sdk,
            Some(ViewerQuery {
                operation: Some("Viewer".into()),
                fields: vec![
                    ViewerField::Id,
                    ViewerField::Entity,
                    ViewerField::Username,
                    ViewerField::Flags,
                    ViewerField::TeamNames
                ],
            })
        );
        assert_eq!(query("{ viewer { username } }").unwrap().operation, None);
        for other in [
            "query { viewer { id } serverInfo { features } }",
            "query { me: viewer { id } }",
            "query { viewer { id: username } }",
            "query { viewer @include(if: true) { id } }",
            "query($x: Boolean!) { viewer { id @include(if: $x) } }",
            "query { viewer { ...F } } fragment F on User { id }",
            "query { viewer { id id } }",
            "query { viewer { admin } }",
            "query { viewer { teams { edges { node { id name } } } } }",
            "query { viewer { __typename } }",
            "mutation { viewer { id } }",
            "query A { viewer { id } } query B { viewer { id } }",
        ] {
            assert_eq!(query(other), None, "{other}");
        }
    }
}
