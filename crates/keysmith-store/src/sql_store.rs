//! The [`Store`](crate::Store) implementation shared by SQLite and PostgreSQL.
//!
//! The SQL is written once in the dialect both accept (`$N` placeholders in order,
//! `RETURNING`, `ON CONFLICT`, expression indexes), and the macro instantiates it for
//! each backend's concrete sqlx types, which keeps the queries typed without a tower
//! of generic bounds. The one dialect difference that matters, row locks, comes in as
//! `$lock`: `FOR UPDATE` on PostgreSQL; SQLite serializes writers anyway, and `$begin`
//! makes it take the write lock when a transaction starts (`BEGIN IMMEDIATE`): a
//! deferred transaction that read first and writes second cannot wait for another
//! writer (SQLite answers "database is locked" at once), while `BEGIN IMMEDIATE` waits
//! under the busy timeout like any writer. The other,
//! query planning, comes in as `$order_hint`: how an org admin's list is kept on the
//! index that matches its order ([`OrderHint`]). And
//! `$name_like` matches a key's name without regard to case: SQLite's `LIKE` already
//! ignores ASCII case; PostgreSQL has `ILIKE`, which also keeps the planner's column
//! statistics in play.

/// Columns of a key as shown to users, joined with its owner (`u`) and creator (`cb`).
pub(crate) const KEY_COLUMNS: &str = "k.key_id, k.format, k.display, k.name, k.created_at, k.last_used_at, \
     k.last_write_at, k.expires_at, k.rotated_from, k.federated_issuer, k.scope, k.allowed_networks, k.requests_per_minute, \
     (SELECT s.key_id FROM api_keys s WHERE s.rotated_from = k.key_id LIMIT 1) AS rotated_to, \
     u.id AS owner_id, u.kind AS owner_kind, u.username AS owner_username, \
     cb.id AS creator_id, cb.kind AS creator_kind, cb.username AS creator_username";

/// The columns an audit entry is read with (`audit_from_row`).
pub(crate) const AUDIT_COLUMNS: &str =
    "id, org_id, at, actor_id, actor_name, action, target_kind, target, source_address, detail, chain_hash";

/// A key (`k`) that no rotation has replaced: it is not expiring by a rotation's design.
pub(crate) const NOT_ROTATED_AWAY: &str = "NOT EXISTS (SELECT 1 FROM api_keys s WHERE s.rotated_from = k.key_id)";

/// A key (`k`) whose owner is a member of the organization bound as `placeholder`.
pub(crate) fn owned_in_org(placeholder: &str) -> String {
    format!("EXISTS (SELECT 1 FROM org_members m WHERE m.user_id = k.owner_user_id AND m.org_id = {placeholder})")
}

/// How long the outbox waits for a missing audit ID before it goes past it.
pub(crate) const GAP_WAIT_MS: i64 = 60_000;

/// The entries after `cursor` that may be read now: up to the first ID still missing.
/// IDs are handed out at insert, not at commit, so on PostgreSQL a transaction that took
/// a lower ID may commit after one with a higher ID; moving the cursor past the gap
/// would lose its entry for good. A gap is passed only once the entry after it is
/// [`GAP_WAIT_MS`] old (the missing transaction rolled back, or is stuck far longer
/// than any audited change takes). Audit entries are never deleted, and both backends
/// hand out consecutive IDs, so a gap means exactly that.
pub(crate) fn without_gaps(cursor: i64, entries: Vec<crate::AuditEntry>, now: i64) -> Vec<crate::AuditEntry> {
    // Saturating: a reader may name any cursor, the largest ID included.
    let mut expected = cursor.saturating_add(1);
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        if entry.id != expected && entry.at > now.saturating_sub(GAP_WAIT_MS) {
            break;
        }
        expected = entry.id.saturating_add(1);
        out.push(entry);
    }
    out
}

pub(crate) const KEY_FROM: &str =
    "api_keys k JOIN users u ON u.id = k.owner_user_id LEFT JOIN users cb ON cb.id = k.created_by_user_id";

pub(crate) const USER_COLUMNS: &str = "id, kind, username, email, active, created_at";

pub(crate) const ORG_COLUMNS: &str = "o.id AS org_id, o.name AS org_name, o.created_at AS org_created_at, \
     o.key_creation_disabled AS org_key_creation_disabled, o.legacy_keys_allowed AS org_legacy_keys_allowed, \
     o.max_user_key_lifetime_days AS org_max_user_days, \
     o.max_service_account_key_lifetime_days AS org_max_sa_days, o.sso_required AS org_sso_required, \
     o.allowed_networks AS org_allowed_networks, o.unused_key_notice_days AS org_unused_days";

/// `RETURNING` columns of an `orgs` row, named as [`ORG_COLUMNS`] names them.
pub(crate) const ORG_RETURNING: &str = "RETURNING id AS org_id, name AS org_name, created_at AS org_created_at, \
     key_creation_disabled AS org_key_creation_disabled, legacy_keys_allowed AS org_legacy_keys_allowed, \
     max_user_key_lifetime_days AS org_max_user_days, \
     max_service_account_key_lifetime_days AS org_max_sa_days, sso_required AS org_sso_required, \
     allowed_networks AS org_allowed_networks, unused_key_notice_days AS org_unused_days";

pub(crate) const TEAM_COLUMNS: &str =
    "t.id AS team_id, t.org_id AS team_org_id, t.name AS team_name, t.created_at AS team_created_at";

pub(crate) const SERVICE_ACCOUNT_SELECT: &str = "SELECT u.id, u.kind, u.username, u.email, u.active, u.created_at, \
     s.org_id AS sa_org_id, s.description AS sa_description, s.external_subject AS sa_subject, \
     s.allowed_networks AS sa_networks, \
     t.id AS team_id, t.org_id AS team_org_id, t.name AS team_name, t.created_at AS team_created_at \
     FROM service_accounts s JOIN users u ON u.id = s.user_id LEFT JOIN teams t ON t.id = s.team_id";

/// Orgs where `$1` is an admin and no other active admin exists: the ones a
/// demotion, deactivation or deletion of `$1` would leave without an admin. `$2` is
/// `$1` again; `$3` restricts to one org (or is NULL).
pub(crate) const ORPHANED_ORGS: &str = "SELECT COUNT(*) FROM org_members m \
     WHERE m.user_id = $1 AND m.role = 'admin' AND ($3 IS NULL OR m.org_id = $4) \
     AND NOT EXISTS (SELECT 1 FROM org_members o JOIN users ou ON ou.id = o.user_id \
         WHERE o.org_id = m.org_id AND o.role = 'admin' AND ou.active AND o.user_id <> $2)";

/// How a backend is kept on the index that already holds a list's order, so a page
/// costs a short index walk rather than a sort of every visible key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OrderHint {
    None,
    /// SQLite: `FROM api_keys k INDEXED BY <index>`.
    IndexedBy,
    /// PostgreSQL: `SET LOCAL enable_sort = off` for the one query.
    DisableSort,
}

/// Escapes `%`, `_` and `\` for a `LIKE … ESCAPE '\'` pattern.
pub(crate) fn like_pattern(needle: &str) -> String {
    let mut out = String::with_capacity(needle.len() + 2);
    out.push('%');
    for c in needle.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

macro_rules! sql_store {
    ($store:ident, $db:ty, $backend:expr, $begin:expr, $lock:expr, $order_hint:expr, $name_like:expr, $notify:expr, $org_names:expr, $org_networks:expr) => {
        use crate::model::*;
        use crate::sql_store::{
            AUDIT_COLUMNS, KEY_COLUMNS, KEY_FROM, NOT_ROTATED_AWAY, ORG_COLUMNS, ORG_RETURNING, ORPHANED_ORGS,
            SERVICE_ACCOUNT_SELECT, TEAM_COLUMNS, USER_COLUMNS, like_pattern, owned_in_org,
        };
        use crate::{Backend, Result, Store, StoreError};
        use keysmith_core::policy::{OwnerScope, Roles};
        use keysmith_core::role::{OrgRole, PrincipalKind, TeamRole};
        use keysmith_core::{KeyDigest, KeyId, KeyScope};
        use sqlx::Row;

        type DbRow = <$db as sqlx::Database>::Row;
        type Tx<'a> = sqlx::Transaction<'a, $db>;

        fn backend_err(err: sqlx::Error) -> StoreError {
            StoreError::Backend(err.to_string())
        }

        fn corrupt(what: &str) -> StoreError {
            StoreError::Corrupt(what.to_owned())
        }

        fn get<'r, T>(row: &'r DbRow, column: &str) -> Result<T>
        where
            T: sqlx::Decode<'r, $db> + sqlx::Type<$db>,
        {
            row.try_get(column).map_err(backend_err)
        }

        fn kind_from(s: &str) -> Result<PrincipalKind> {
            PrincipalKind::parse(s).ok_or_else(|| corrupt("principal kind"))
        }

        fn user_from_row(row: &DbRow) -> Result<User> {
            Ok(User {
                id: UserId(get(row, "id")?),
                kind: kind_from(&get::<String>(row, "kind")?)?,
                username: get(row, "username")?,
                email: get(row, "email")?,
                active: get(row, "active")?,
                created_at: get(row, "created_at")?,
            })
        }

        fn user_ref(row: &DbRow, prefix: &str) -> Result<Option<UserRef>> {
            let id: Option<i64> = get(row, &format!("{prefix}_id"))?;
            let Some(id) = id else { return Ok(None) };
            Ok(Some(UserRef {
                id: UserId(id),
                kind: kind_from(&get::<String>(row, &format!("{prefix}_kind"))?)?,
                username: get(row, &format!("{prefix}_username"))?,
            }))
        }

        fn key_id_from_row(row: &DbRow) -> Result<KeyId> {
            KeyId::parse(&get::<String>(row, "key_id")?).map_err(|_| corrupt("key id"))
        }

        fn key_from_row(row: &DbRow) -> Result<StoredKey> {
            Ok(StoredKey {
                key_id: key_id_from_row(row)?,
                format: KeyFormat::parse(&get::<String>(row, "format")?).ok_or_else(|| corrupt("key format"))?,
                display: get(row, "display")?,
                name: get(row, "name")?,
                owner: user_ref(row, "owner")?.ok_or_else(|| corrupt("key without owner"))?,
                created_by: user_ref(row, "creator")?,
                created_at: get(row, "created_at")?,
                last_used_at: get(row, "last_used_at")?,
                last_write_at: get(row, "last_write_at")?,
                expires_at: get(row, "expires_at")?,
                rotated_from: get(row, "rotated_from")?,
                rotated_to: get(row, "rotated_to")?,
                federated_issuer: get(row, "federated_issuer")?,
                scope: scope_from_row(row)?,
                allowed_networks: get(row, "allowed_networks")?,
                requests_per_minute: per_minute(row)?,
            })
        }

        fn per_minute(row: &DbRow) -> Result<Option<u32>> {
            get::<Option<i64>>(row, "requests_per_minute")?
                .map(|n| u32::try_from(n).map_err(|_| corrupt("key request limit")))
                .transpose()
        }

        fn scope_from_row(row: &DbRow) -> Result<KeyScope> {
            KeyScope::parse(&get::<String>(row, "scope")?).ok_or_else(|| corrupt("key scope"))
        }

        fn auth_from_row(row: &DbRow) -> Result<AuthRecord> {
            let digest: Vec<u8> = get(row, "digest")?;
            Ok(AuthRecord {
                key_id: key_id_from_row(row)?,
                digest: KeyDigest::from_bytes(&digest).ok_or_else(|| corrupt("key digest"))?,
                owner: user_ref(row, "owner")?.ok_or_else(|| corrupt("key without owner"))?,
                owner_active: get(row, "owner_active")?,
                expires_at: get(row, "expires_at")?,
                scope: scope_from_row(row)?,
                key_networks: get(row, "allowed_networks")?,
                requests_per_minute: per_minute(row)?,
                account_networks: get(row, "account_networks")?,
                org_networks: get::<Option<String>>(row, "org_networks")?
                    .map(|lists| lists.split(';').filter(|n| !n.is_empty()).map(str::to_owned).collect())
                    .unwrap_or_default(),
                orgs: get::<Option<String>>(row, "org_names")?
                    .map(|names| names.split(',').filter(|n| !n.is_empty()).map(str::to_owned).collect())
                    .unwrap_or_default(),
            })
        }

        fn org_from_row(row: &DbRow) -> Result<Org> {
            Ok(Org {
                id: OrgId(get(row, "org_id")?),
                name: get(row, "org_name")?,
                created_at: get(row, "org_created_at")?,
                key_creation_disabled: get(row, "org_key_creation_disabled")?,
                legacy_keys_allowed: get(row, "org_legacy_keys_allowed")?,
                max_user_key_lifetime_days: days(get(row, "org_max_user_days")?),
                max_service_account_key_lifetime_days: days(get(row, "org_max_sa_days")?),
                sso_required: get(row, "org_sso_required")?,
                allowed_networks: get(row, "org_allowed_networks")?,
                unused_key_notice_days: days(get(row, "org_unused_days")?),
            })
        }

        fn days(v: i64) -> u32 {
            u32::try_from(v).unwrap_or(0)
        }

        fn team_from_row(row: &DbRow) -> Result<Team> {
            Ok(Team {
                id: TeamId(get(row, "team_id")?),
                org: OrgId(get(row, "team_org_id")?),
                name: get(row, "team_name")?,
                created_at: get(row, "team_created_at")?,
            })
        }

        fn service_account_from_row(row: &DbRow) -> Result<ServiceAccount> {
            let team_id: Option<i64> = get(row, "team_id")?;
            Ok(ServiceAccount {
                user: user_from_row(row)?,
                org: OrgId(get(row, "sa_org_id")?),
                team: match team_id {
                    Some(_) => Some(team_from_row(row)?),
                    None => None,
                },
                description: get(row, "sa_description")?,
                external_subject: get(row, "sa_subject")?,
                allowed_networks: get(row, "sa_networks")?,
            })
        }

        fn audit_from_row(row: &DbRow) -> Result<AuditEntry> {
            let actor_id: Option<i64> = get(row, "actor_id")?;
            Ok(AuditEntry {
                id: get(row, "id")?,
                org: OrgId(get(row, "org_id")?),
                at: get(row, "at")?,
                actor_id: actor_id.map(UserId),
                actor_name: get(row, "actor_name")?,
                action: get(row, "action")?,
                target_kind: get(row, "target_kind")?,
                target: get(row, "target")?,
                source_address: get(row, "source_address")?,
                detail: get(row, "detail")?,
                chain_hash: get(row, "chain_hash")?,
            })
        }

        /// The owner's organizations travel with the key (for forward auth), as one
        /// comma-separated column; organization names cannot contain commas. So do
        /// their allowlists, separated by `;` (a list itself is comma-separated).
        const AUTH_SELECT: &str = concat!(
            "SELECT k.key_id, k.digest, u.id AS owner_id, u.kind AS owner_kind, \
             u.username AS owner_username, u.active AS owner_active, k.expires_at, k.scope, \
             k.allowed_networks, k.requests_per_minute, (SELECT sa.allowed_networks FROM service_accounts sa WHERE sa.user_id = u.id) \
             AS account_networks, (SELECT ",
            $org_names,
            " FROM orgs o WHERE o.id IN (SELECT m.org_id FROM org_members m WHERE m.user_id = u.id \
             UNION SELECT s.org_id FROM service_accounts s WHERE s.user_id = u.id)) AS org_names, (SELECT ",
            $org_networks,
            " FROM orgs o WHERE o.id IN (SELECT m.org_id FROM org_members m WHERE m.user_id = u.id \
             UNION SELECT s.org_id FROM service_accounts s WHERE s.user_id = u.id)) AS org_networks \
             FROM api_keys k JOIN users u ON u.id = k.owner_user_id"
        );

        /// Announces an invalidation to the other replicas, inside the changing
        /// transaction, so it is sent if and only if the change commits.
        async fn invalidate(tx: &mut Tx<'_>, inv: &Invalidation) -> Result<()> {
            if $notify {
                sqlx::query(
                    "SELECT pg_notify($1, $2 || '@' || (extract(epoch from clock_timestamp()) * 1000)::bigint)",
                )
                .bind(crate::INVALIDATION_CHANNEL)
                .bind(inv.encode())
                .execute(&mut **tx)
                .await
                .map_err(backend_err)?;
            }
            Ok(())
        }

        async fn append_audit(tx: &mut Tx<'_>, entries: &[NewAuditEntry]) -> Result<()> {
            for e in entries {
                sqlx::query(
                    "INSERT INTO audit_log (org_id, at, actor_id, actor_name, action, target_kind, target, \
                     source_address, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(e.org.0)
                .bind(e.at)
                .bind(e.actor.as_ref().map(|a| a.id.0))
                .bind(e.actor.as_ref().map_or("system", |a| a.username.as_str()))
                .bind(&e.action)
                .bind(&e.target_kind)
                .bind(&e.target)
                .bind(&e.source_address)
                .bind(&e.detail)
                .execute(&mut **tx)
                .await
                .map_err(backend_err)?;
            }
            Ok(())
        }

        async fn insert_user(tx: &mut Tx<'_>, user: &NewUser, now: i64) -> Result<User> {
            let sql = format!(
                "INSERT INTO users (kind, username, email, password_hash, active, created_at) \
                 VALUES ($1, $2, $3, $4, TRUE, $5) RETURNING {USER_COLUMNS}"
            );
            let row = sqlx::query(&sql)
                .bind(user.kind.as_str())
                .bind(&user.username)
                .bind(&user.email)
                .bind(&user.password_hash)
                .bind(now)
                .fetch_one(&mut **tx)
                .await
                .map_err(|e| StoreError::from_sqlx(e, "a user or service account with this name or email"))?;
            user_from_row(&row)
        }

        async fn insert_member(tx: &mut Tx<'_>, org: OrgId, user: UserId, role: OrgRole, now: i64) -> Result<()> {
            sqlx::query("INSERT INTO org_members (org_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)")
                .bind(org.0)
                .bind(user.0)
                .bind(role.as_str())
                .bind(now)
                .execute(&mut **tx)
                .await
                .map_err(|e| StoreError::from_sqlx(e, "this membership"))?;
            Ok(())
        }

        /// Locks the admin rows of every org `user` administers (PostgreSQL), then
        /// counts the orgs (all, or just `org`) that would be left without an active
        /// admin if `user` stopped being one.
        async fn orphaned_orgs(tx: &mut Tx<'_>, user: UserId, org: Option<OrgId>) -> Result<i64> {
            let lock = format!(
                "SELECT org_id FROM org_members WHERE role = 'admin' AND org_id IN \
                 (SELECT org_id FROM org_members WHERE user_id = $1 AND role = 'admin'){}",
                $lock
            );
            sqlx::query(&lock).bind(user.0).fetch_all(&mut **tx).await.map_err(backend_err)?;
            sqlx::query_scalar(ORPHANED_ORGS)
                .bind(user.0)
                .bind(user.0)
                .bind(org.map(|o| o.0))
                .bind(org.map(|o| o.0))
                .fetch_one(&mut **tx)
                .await
                .map_err(backend_err)
        }

        impl $store {
            async fn begin(&self) -> Result<Tx<'_>> {
                self.pool.begin_with($begin).await.map_err(backend_err)
            }

            /// Sets a key time column (`last_used_at`, `last_write_at`) to each given
            /// time, in one transaction; a time never moves backwards.
            async fn record_latest(&self, column: &'static str, times: &[(KeyId, i64)]) -> Result<()> {
                if times.is_empty() {
                    return Ok(());
                }
                let sql = format!(
                    "UPDATE api_keys SET {column} = $1 WHERE key_id = $2 AND ({column} IS NULL OR {column} < $3)"
                );
                let mut tx = self.begin().await?;
                for (key_id, at) in times {
                    sqlx::query(&sql)
                        .bind(*at)
                        .bind(key_id.as_str())
                        .bind(*at)
                        .execute(&mut *tx)
                        .await
                        .map_err(backend_err)?;
                }
                tx.commit().await.map_err(backend_err)?;
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl Store for $store {
            fn backend(&self) -> Backend {
                $backend
            }

            async fn ping(&self) -> Result<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await.map_err(backend_err)?;
                Ok(())
            }

            async fn check_writable(&self) -> Result<()> {
                // An UPDATE that matches no row still needs the right to write: SQLite
                // answers "attempt to write a readonly database", PostgreSQL "cannot
                // execute UPDATE in a read-only transaction". The rollback (on drop)
                // leaves nothing behind, so readiness probes cost no disk write.
                let mut tx = self.pool.begin().await.map_err(backend_err)?;
                sqlx::query("UPDATE orgs SET name = name WHERE 1 = 0")
                    .execute(&mut *tx)
                    .await
                    .map_err(backend_err)?;
                tx.rollback().await.map_err(backend_err)?;
                Ok(())
            }

            async fn bootstrap(&self, org_name: &str, admin: NewUser, now: i64) -> Result<Option<(Org, User)>> {
                let mut tx = self.begin().await?;
                let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(backend_err)?;
                if users > 0 {
                    return Ok(None);
                }
                let org = insert_org(&mut tx, org_name, now).await?;
                let user = insert_user(&mut tx, &admin, now).await?;
                insert_member(&mut tx, org.id, user.id, OrgRole::Admin, now).await?;
                tx.commit().await.map_err(backend_err)?;
                Ok(Some((org, user)))
            }

            // -------------------------------------------------------- organizations

            async fn create_org(&self, name: &str, now: i64) -> Result<Org> {
                let mut tx = self.begin().await?;
                let org = insert_org(&mut tx, name, now).await?;
                tx.commit().await.map_err(backend_err)?;
                Ok(org)
            }

            async fn get_org(&self, id: OrgId) -> Result<Option<Org>> {
                let sql = format!("SELECT {ORG_COLUMNS} FROM orgs o WHERE o.id = $1");
                let row = sqlx::query(&sql).bind(id.0).fetch_optional(&self.pool).await.map_err(backend_err)?;
                row.as_ref().map(org_from_row).transpose()
            }

            async fn find_org(&self, name: &str) -> Result<Option<Org>> {
                let sql = format!("SELECT {ORG_COLUMNS} FROM orgs o WHERE lower(o.name) = lower($1)");
                let row = sqlx::query(&sql).bind(name).fetch_optional(&self.pool).await.map_err(backend_err)?;
                row.as_ref().map(org_from_row).transpose()
            }

            async fn update_org_settings(&self, org: OrgId, settings: OrgSettings, audit: &[NewAuditEntry]) -> Result<Org> {
                let mut tx = self.begin().await?;
                let sql = format!(
                    "UPDATE orgs SET key_creation_disabled = COALESCE($1, key_creation_disabled), \
                     legacy_keys_allowed = COALESCE($2, legacy_keys_allowed), \
                     max_user_key_lifetime_days = COALESCE($3, max_user_key_lifetime_days), \
                     max_service_account_key_lifetime_days = COALESCE($4, max_service_account_key_lifetime_days), \
                     sso_required = COALESCE($5, sso_required), \
                     allowed_networks = CASE WHEN $6 THEN $7 ELSE allowed_networks END, \
                     unused_key_notice_days = COALESCE($8, unused_key_notice_days) \
                     WHERE id = $9 {ORG_RETURNING}"
                );
                let networks = settings.allowed_networks.clone();
                let row = sqlx::query(&sql)
                    .bind(settings.key_creation_disabled)
                    .bind(settings.legacy_keys_allowed)
                    .bind(settings.max_user_key_lifetime_days.map(i64::from))
                    .bind(settings.max_service_account_key_lifetime_days.map(i64::from))
                    .bind(settings.sso_required)
                    .bind(networks.is_some())
                    .bind(networks.flatten())
                    .bind(settings.unused_key_notice_days.map(i64::from))
                    .bind(org.0)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(backend_err)?;
                append_audit(&mut tx, audit).await?;
                // The allowlist travels with every cached key of the organization's
                // members and service accounts: each of them is stale.
                let mut invalidations = Vec::new();
                if settings.allowed_networks.is_some() {
                    let owners: Vec<i64> = sqlx::query_scalar(
                        "SELECT user_id FROM org_members WHERE org_id = $1 \
                         UNION SELECT user_id FROM service_accounts WHERE org_id = $2",
                    )
                    .bind(org.0)
                    .bind(org.0)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(backend_err)?;
                    invalidations = owners.into_iter().map(|u| Invalidation::Owner(UserId(u))).collect();
                    for inv in &invalidations {
                        invalidate(&mut tx, inv).await?;
                    }
                }
                tx.commit().await.map_err(backend_err)?;
                for inv in &invalidations {
                    self.hooks.fire(inv);
                }
                org_from_row(&row)
            }

            async fn org_members(&self, org: OrgId) -> Result<Vec<OrgMember>> {
                let rows = sqlx::query(
                    "SELECT u.id, u.kind, u.username, u.email, u.active, u.created_at, m.role \
                     FROM org_members m JOIN users u ON u.id = m.user_id WHERE m.org_id = $1 ORDER BY lower(u.username)",
                )
                .bind(org.0)
                .fetch_all(&self.pool)
                .await
                .map_err(backend_err)?;
                rows.iter()
                    .map(|row| {
                        Ok(OrgMember {
                            user: user_from_row(row)?,
                            role: OrgRole::parse(&get::<String>(row, "role")?).ok_or_else(|| corrupt("org role"))?,
                        })
                    })
                    .collect()
            }

            async fn add_org_member(&self, org: OrgId, user: UserId, role: OrgRole, now: i64, audit: &[NewAuditEntry]) -> Result<()> {
                let mut tx = self.begin().await?;
                insert_member(&mut tx, org, user, role, now).await?;
                append_audit(&mut tx, audit).await?;
                let inv = Invalidation::Owner(user);
                invalidate(&mut tx, &inv).await?;
                tx.commit().await.map_err(backend_err)?;
                self.hooks.fire(&inv);
                Ok(())
            }

            async fn set_org_role(&self, org: OrgId, user: UserId, role: OrgRole, audit: &[NewAuditEntry])
            -> Result<bool> {
                let mut tx = self.begin().await?;
                if role != OrgRole::Admin && orphaned_orgs(&mut tx, user, Some(org)).await? > 0 {
                    return Err(StoreError::Refused(Refused::LastAdmin));
                }
                let done = sqlx::query("UPDATE org_members SET role = $1 WHERE org_id = $2 AND user_id = $3")
                    .bind(role.as_str())
                    .bind(org.0)
                    .bind(user.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend_err)?;
                if done.rows_affected() == 0 {
                    return Ok(false);
                }
                append_audit(&mut tx, audit).await?;
                let inv = Invalidation::Owner(user);
                invalidate(&mut tx, &inv).await?;
                tx.commit().await.map_err(backend_err)?;
                self.hooks.fire(&inv);
                Ok(true)
            }

            async fn remove_org_member(&self, org: OrgId, user: UserId, audit: &[NewAuditEntry])
            -> Result<bool> {
                let mut tx = self.begin().await?;
                if orphaned_orgs(&mut tx, user, Some(org)).await? > 0 {
                    return Err(StoreError::Refused(Refused::LastAdmin));
                }
                sqlx::query("DELETE FROM team_members WHERE user_id = $1 AND team_id IN (SELECT id FROM teams WHERE org_id = $2)")
                    .bind(user.0)
                    .bind(org.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend_err)?;
                let done = sqlx::query("DELETE FROM org_members WHERE org_id = $1 AND user_id = $2")
                    .bind(org.0)
                    .bind(user.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend_err)?;
                if done.rows_affected() == 0 {
                    return Ok(false);
                }
                append_audit(&mut tx, audit).await?;
                let inv = Invalidation::Owner(user);
                invalidate(&mut tx, &inv).await?;
                tx.commit().await.map_err(backend_err)?;
                self.hooks.fire(&inv);
                Ok(true)
            }

            async fn memberships(&self, user: UserId) -> Result<Vec<Membership>> {
                let sql = format!(
                    "SELECT {ORG_COLUMNS}, m.role FROM org_members m JOIN orgs o ON o.id = m.org_id \
                     WHERE m.user_id = $1 ORDER BY o.id"
                );
                let rows = sqlx::query(&sql).bind(user.0).fetch_all(&self.pool).await.map_err(backend_err)?;
                rows.iter()
                    .map(|row| {
                        Ok(Membership {
                            org: org_from_row(row)?,
                            role: OrgRole::parse(&get::<String>(row, "role")?).ok_or_else(|| corrupt("org role"))?,
                        })
                    })
                    .collect()
            }

            // -------------------------------------------------------- users

            async fn create_user(&self, user: NewUser, now: i64) -> Result<User> {
                let mut tx = self.begin().await?;
                let user = insert_user(&mut tx, &user, now).await?;
                tx.commit().await.map_err(backend_err)?;
                Ok(user)
            }

            async fn create_member(&self, user: NewUser, org: OrgId, role: OrgRole, now: i64, audit: &[NewAuditEntry]) -> Result<User> {
                let mut tx = self.begin().await?;
                let user = insert_user(&mut tx, &user, now).await?;
                insert_member(&mut tx, org, user.id, role, now).await?;
                append_audit(&mut tx, audit).await?;
                tx.commit().await.map_err(backend_err)?;
                Ok(user)
            }

            async fn get_user(&self, id: UserId) -> Result<Option<User>> {
                let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
                let row = sqlx::query(&sql).bind(id.0).fetch_optional(&self.pool).await.map_err(backend_err)?;
                row.as_ref().map(user_from_row).transpose()
            }

            async fn find_user_for_sign_in(&self, login: &str) -> Result<Option<(User, Option<String>)>> {
                let sql = format!(
                    "SELECT {USER_COLUMNS}, password_hash FROM users \
                     WHERE lower(username) = lower($1) OR lower(email) = lower($2) \
                     ORDER BY CASE WHEN lower(username) = lower($3) THEN 0 ELSE 1 END LIMIT 1"
                );
                let row = sqlx::query(&sql)
                    .bind(login)
                    .bind(login)
                    .bind(login)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(backend_err)?;
                match row {
                    None => Ok(None),
                    Some(row) => Ok(Some((user_from_row(&row)?, get(&row, "password_hash")?))),
                }
            }

            async fn find_user_by_username(&self, username: &str) -> Result<Option<User>> {
                let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE lower(username) = lower($1)");
                let row = sqlx::query(&sql).bind(username).fetch_optional(&self.pool).await.map_err(backend_err)?;
                row.as_ref().map(user_from_row).transpose()
            }

            async fn set_password(&self, user: UserId, password_hash: &str) -> Result<bool> {
                let done = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2 AND kind = 'user'")
                    .bind(password_hash)
                    .bind(user.0)
                    .execute(&self.pool)
                    .await
                    .map_err(backend_err)?;
                Ok(done.rows_affected() > 0)
            }

            async fn reset_password(&self, user: UserId, password_hash: &str, now: i64, audit: &[NewAuditEntry])
            -> Result<bool> {
                let mut tx = self.begin().await?;
                let done = sqlx::query(
                    "UPDATE users SET password_hash = $1, sign_in_unlocked_at = $2 WHERE id = $3 AND kind = 'user'",
                )
                .bind(password_hash)
                .bind(now)
                .bind(user.0)
                .execute(&mut *tx)
                .await
                .map_err(backend_err)?;
                if done.rows_affected() == 0 {
                    return Ok(false);
                }
                sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                    .bind(user.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend_err)?;
                append_audit(&mut tx, audit).await?;
                // Their sessions ended: cached ones go too, on every replica.
                let inv = Invalidation::Owner(user);
                invalidate(&mut tx, &inv).await?;
                tx.commit().await.map_err(backend_err)?;
                self.hooks.fire(&inv);
                Ok(true)
            }

            async fn unlock_sign_in(&self, user: UserId, now: i64, audit: &[NewAuditEntry]) -> Result<bool> {
                let mut tx = self.begin().await?;
                let done = sqlx::query("UPDATE users SET sign_in_unlocked_at = $1 WHERE id = $2 AND kind = 'user'")
                    .bind(now)
                    .bind(user.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend_err)?;
                if done.rows_affected() == 0 {
                    return Ok(false);
                }
                append_audit(&mut tx, audit).await?;
                tx.commit().await.map_err(backend_err)?;
                Ok(true)
            }

            async fn sign_in_unlocked_at(&self, user: UserId) -> Result<Option<i64>> {
                let at: Option<Option<i64>> = sqlx::query_scalar("SELECT sign_in_unlocked_at FROM users WHERE id = $1")
                    .bind(user.0)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(backend_err)?;
                Ok(at.flatten())
            }

            async fn set_user_active(&self, user: UserId, active: bool, audit: &[NewAuditEntry])
            -> Result<bool> {
                let mut tx = self.begin().await?;
                if !active && orphaned_orgs(&mut tx, user, None).await? > 0 {
                    return Err(StoreError::Refused(Refused::LastAdmin));
                }
                let done = sqlx::query("UPDATE users SET active = $1 WHERE id = $2")
                    .bind(active)
                    .bind(user.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend_err)?;
                if done.rows_affected() == 0 {
                    return Ok(false);
                }
                if !active {
                    sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                        .bind(user.0)
                        .execute(&mut *tx)
                        .await
                        .map_err(backend_err)?;
                }
                append_audit(&mut tx, audit).await?;
                let inv = Invalidation::Owner(user);
                invalidate(&mut tx, &inv).await?;
                tx.commit().await.map_err(backend_err)?;
                self.hooks.fire(&inv);
                Ok(true)
            }

            async fn delete_user(&self, user: UserId, audit: &[NewAuditEntry]) -> Result<bool> {
                let mut tx = self.begin().await?;
                if orphaned_orgs(&mut tx, user, None).await? > 0 {
                    return Err(StoreError::Refused(Refused::LastAdmin));
                }
                // Keys, sessions, memberships and the service-account scope go with the
                // row (ON DELETE CASCADE); keys it created for others keep a NULL creator.
                let done = sqlx::query("DELETE FROM users WHERE id = $1")
                    .bind(user.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend_err)?;
                if done.rows_affected() == 0 {
                    return Ok(false);
                }
                append_audit(&mut tx, audit).await?;
                let inv = Invalidation::Owner(user);
                invalidate(&mut tx, &inv).await?;
                tx.commit().await.map_err(backend_err)?;
                self.hooks.fire(&inv);
                Ok(true)
            }

            async fn roles(&self, user: UserId) -> Result<Roles> {
                let orgs: Vec<i64> = sqlx::query_scalar("SELECT org_id FROM org_members WHERE user_id = $1 AND role = 'admin'")
                    .bind(user.0)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(backend_err)?;
                let teams: Vec<i64> =
                    sqlx::query_scalar("SELECT team_id FROM team_members WHERE user_id = $1 AND role = 'admin'")
                        .bind(user.0)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(backend_err)?;
                Ok(Roles {
                    admin_of_orgs: orgs.into_iter().map(OrgId).collect(),
                    admin_of_teams: teams.into_iter().map(TeamId).collect(),
                })
            }

            async fn owner_scope(&self, user: UserId) -> Result<Option<OwnerScope>> {
                let row = sqlx::query(
                    "SELECT u.kind, s.org_id, s.team_id FROM users u LEFT JOIN service_accounts s ON s.user_id = u.id \
                     WHERE u.id = $1",
                )
                .bind(user.0)
                .fetch_optional(&self.pool)
                .await
                .map_err(backend_err)?;
                let Some(row) = row else { return Ok(None) };
                match kind_from(&get::<String>(&row, "kind")?)? {
                    PrincipalKind::ServiceAccount => {
                        let org: Option<i64> = get(&row, "org_id")?;
                        let org = OrgId(org.ok_or_else(|| corrupt("service account without scope"))?);
                        let team: Option<i64> = get(&row, "team_id")?;
                        Ok(Some(match team {
                            Some(team) => OwnerScope::TeamServiceAccount { org, team: TeamId(team) },
                            None => OwnerScope::OrgServiceAccount { org },
                        }))
                    }
                    PrincipalKind::User => {
                        let orgs: Vec<i64> = sqlx::query_scalar("SELECT org_id FROM org_members WHERE user_id = $1 ORDER BY org_id")
                            .bind(user.0)
                            .fetch_all(&self.pool)
                            .await
                            .map_err(backend_err)?;
                        Ok(Some(OwnerScope::User { orgs: orgs.into_iter().map(OrgId).collect() }))
                    }
                }
            }

            // -------------------------------------------------------- teams

            async fn create_team(&self, org: OrgId, name: &str, now: i64, audit: &[NewAuditEntry]) -> Result<Team> {
                let mut tx = self.begin().await?;
                let row = sqlx::query(
                    "INSERT INTO teams (org_id, name, created_at) VALUES ($1, $2, $3) \
                     RETURNING id AS team_id, org_id AS team_org_id, name AS team_name, created_at AS team_created_at",
                )
                .bind(org.0)
                .bind(name)
                .bind(now)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| StoreError::from_sqlx(e, "a team with this name"))?;
                append_audit(&mut tx, audit).await?;
                tx.commit().await.map_err(backend_err)?;
                team_from_row(&row)
            }

            async fn find_team(&self, org: OrgId, name: &str) -> Result<Option<Team>> {
                let sql = format!("SELECT {TEAM_COLUMNS} FROM teams t WHERE t.org_id = $1 AND lower(t.name) = lower($2)");
                let row = sqlx::query(&sql).bind(org.0).bind(name).fetch_optional(&self.pool).await.map_err(backend_err)?;
                row.as_ref().map(team_from_row).transpose()
            }

            async fn list_teams(&self, org: OrgId) -> Result<Vec<Team>> {
                let sql = format!("SELECT {TEAM_COLUMNS} FROM teams t WHERE t.org_id = $1 ORDER BY lower(t.name)");
                let rows = sqlx::query(&sql).bind(org.0).fetch_all(&self.pool).await.map_err(backend_err)?;
                rows.iter().map(team_from_row).collect()
            }

            async fn set_team_member(&self, team: TeamId, user: UserId, role: TeamRole, now: i64, audit: &[NewAuditEntry]) -> Result<()> {
                let mut tx = self.begin().await?;
                sqlx::query(
                    "INSERT INTO team_members (team_id, user_id, role, created_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (team_id, user_id) DO UPDATE SET role = excluded.role",
                )
                .bind(team.0)
                .bind(user.0)
                .bind(role.as_str())
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(backend_err)?;
                append_audit(&mut tx, audit).await?;
                // A team role is part of who the user is to every cache of callers.
                let inv = Invalidation::Owner(user);
                invalidate(&mut tx, &inv).await?;
                tx.commit().await.map_err(backend_err)?;
                self.hooks.fire(&inv);
                Ok(())
            }

            async fn remove_team_member(&self, team: TeamId, user: UserId, audit: &[NewAuditEntry]) -> Result<bool> {
                let mut tx = self.begin().await?;
                let done = sqlx::query("DELETE FROM team_members WHERE team_id = $1 AND user_id = $2")
                    .bind(team.0)
                    .bind(user.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend_err)?;
                if done.rows_affected() == 0 {
                    return Ok(false);
                }
                append_audit(&mut tx, audit).await?;
                let inv = Invalidation::Owner(user);
                invalidate(&mut tx, &inv).await?;
                tx.commit().await.map_err(backend_err)?;
                self.hooks.fire(&inv);
                Ok(true)
            }

            async fn team_members(&self, team: TeamId) -> Result<Vec<TeamMember>> {
                let rows = sqlx::query(
                    "SELECT u.id AS member_id, u.kind AS member_kind, u.username AS member_username, tm.role \
                     FROM team_members tm JOIN users u ON u.id = tm.user_id WHERE tm.team_id = $1 ORDER BY lower(u.username)",
                )
                .bind(team.0)
                .fetch_all(&self.pool)
                .await
                .map_err(backend_err)?;
                rows.iter()
                    .map(|row| {
                        Ok(TeamMember {
                            user: user_ref(row, "member")?.ok_or_else(|| corrupt("team member"))?,
                            role: TeamRole::parse(&get::<String>(row, "role")?).ok_or_else(|| corrupt("team role"))?,
                        })
                    })
                    .collect()
            }

            async fn user_teams(&self, user: UserId) -> Result<Vec<(Team, TeamRole)>> {
                let sql = format!(
                    "SELECT {TEAM_COLUMNS}, tm.role FROM team_members tm JOIN teams t ON t.id = tm.team_id \
                     WHERE tm.user_id = $1 ORDER BY lower(t.name)"
                );
                let rows = sqlx::query(&sql).bind(user.0).fetch_all(&self.pool).await.map_err(backend_err)?;
                rows.iter()
                    .map(|row| {
                        let role = TeamRole::parse(&get::<String>(row, "role")?).ok_or_else(|| corrupt("team role"))?;
                        Ok((team_from_row(row)?, role))
                    })
                    .collect()
            }

            // -------------------------------------------------------- service accounts

            async fn create_service_account(&self, account: NewServiceAccount, now: i64, audit: &[NewAuditEntry]) -> Result<ServiceAccount> {
                let mut tx = self.begin().await?;
                let new_user = NewUser {
                    kind: PrincipalKind::ServiceAccount,
                    username: account.username.clone(),
                    email: None,
                    password_hash: None,
                };
                let user = insert_user(&mut tx, &new_user, now).await?;
                sqlx::query(
                    "INSERT INTO service_accounts (user_id, org_id, team_id, description, created_by_user_id, \
                     external_subject, allowed_networks) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(user.id.0)
                .bind(account.org.0)
                .bind(account.team.map(|t| t.0))
                .bind(&account.description)
                .bind(account.created_by.map(|u| u.0))
                .bind(&account.external_subject)
                .bind(&account.allowed_networks)
                .execute(&mut *tx)
                .await
                .map_err(|e| StoreError::from_sqlx(e, "a service account with this subject"))?;
                insert_member(&mut tx, account.org, user.id, OrgRole::Member, now).await?;
                append_audit(&mut tx, audit).await?;
                tx.commit().await.map_err(backend_err)?;
                self.get_service_account(user.id).await?.ok_or_else(|| corrupt("service account vanished"))
            }

            async fn set_service_account_networks(
                &self,
                user: UserId,
                networks: Option<String>,
                audit: &[NewAuditEntry],
            ) -> Result<bool> {
                let mut tx = self.begin().await?;
                let done = sqlx::query("UPDATE service_accounts SET allowed_networks = $1 WHERE user_id = $2")
                    .bind(networks)
                    .bind(user.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend_err)?;
                if done.rows_affected() == 0 {
                    return Ok(false);
                }
                append_audit(&mut tx, audit).await?;
                let inv = Invalidation::Owner(user);
                invalidate(&mut tx, &inv).await?;
                tx.commit().await.map_err(backend_err)?;
                self.hooks.fire(&inv);
                Ok(true)
            }

            async fn get_service_account(&self, user: UserId) -> Result<Option<ServiceAccount>> {
                let sql = format!("{SERVICE_ACCOUNT_SELECT} WHERE s.user_id = $1");
                let row = sqlx::query(&sql).bind(user.0).fetch_optional(&self.pool).await.map_err(backend_err)?;
                row.as_ref().map(service_account_from_row).transpose()
            }

            async fn list_service_accounts(&self, org: OrgId, team: Option<TeamId>) -> Result<Vec<ServiceAccount>> {
                let sql = format!(
                    "{SERVICE_ACCOUNT_SELECT} WHERE s.org_id = $1 AND ($2 IS NULL OR s.team_id = $3) ORDER BY lower(u.username)"
                );
                let rows = sqlx::query(&sql)
                    .bind(org.0)
                    .bind(team.map(|t| t.0))
                    .bind(team.map(|t| t.0))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(backend_err)?;
                rows.iter().map(service_account_from_row).collect()
            }

            // -------------------------------------------------------- invitations

            async fn create_invite(&self, user: UserId, token_digest: &KeyDigest, now: i64, expires_at: i64) -> Result<()> {
                sqlx::query("INSERT INTO invites (token_digest, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
                    .bind(token_digest.as_bytes().as_slice())
                    .bind(user.0)
                    .bind(now)
                    .bind(expires_at)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| StoreError::from_sqlx(e, "an invitation with this token"))?;
                Ok(())
            }

            async fn accept_invite(
                &self,
                token_digest: &KeyDigest,
                password_hash: &str,
                now: i64,
                source_address: Option<&str>,
            ) -> Result<Option<UserId>> {
                let mut tx = self.begin().await?;
                let user: Option<i64> = sqlx::query_scalar(
                    "DELETE FROM invites WHERE token_digest = $1 AND expires_at > $2 RETURNING user_id",
                )
                .bind(token_digest.as_bytes().as_slice())
                .bind(now)
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend_err)?;
                let Some(user) = user else { return Ok(None) };
                // A deactivated user's invitation sets nothing; dropping the transaction
                // keeps the invitation for a reactivation.
                let username: Option<String> = sqlx::query_scalar(
                    "UPDATE users SET password_hash = $1 WHERE id = $2 AND kind = 'user' AND active RETURNING username",
                )
                .bind(password_hash)
                .bind(user)
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend_err)?;
                let Some(username) = username else { return Ok(None) };
                let orgs: Vec<i64> = sqlx::query_scalar("SELECT org_id FROM org_members WHERE user_id = $1 ORDER BY org_id")
                    .bind(user)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(backend_err)?;
                let audit: Vec<NewAuditEntry> = orgs
                    .into_iter()
                    .map(|org| NewAuditEntry {
                        org: OrgId(org),
                        at: now,
                        actor: Some(UserRef {
                            id: UserId(user),
                            kind: PrincipalKind::User,
                            username: username.clone(),
                        }),
                        action: "user.invitation_accepted".into(),
                        target_kind: "user".into(),
                        target: username.clone(),
                        source_address: source_address.map(str::to_owned),
                        detail: None,
                    })
                    .collect();
                append_audit(&mut tx, &audit).await?;
                tx.commit().await.map_err(backend_err)?;
                Ok(Some(UserId(user)))
            }

            async fn delete_invites(&self, user: UserId) -> Result<u64> {
                let done = sqlx::query("DELETE FROM invites WHERE user_id = $1")
                    .bind(user.0)
                    .execute(&self.pool)
                    .await
                    .map_err(backend_err)?;
                Ok(done.rows_affected())
            }

            // -------------------------------------------------------- sessions

            async fn create_session(&self, session: NewSession) -> Result<()> {
                sqlx::query("INSERT INTO sessions (token_digest, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
                    .bind(session.token_digest.as_bytes().as_slice())
                    .bind(session.user_id.0)
                    .bind(session.created_at)
                    .bind(session.expires_at)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| StoreError::from_sqlx(e, "a session with this token"))?;
                Ok(())
            }

            async fn find_session(&self, token_digest: &KeyDigest, now: i64) -> Result<Option<Session>> {
                let row = sqlx::query(
                    "SELECT user_id, created_at, expires_at FROM sessions WHERE token_digest = $1 AND expires_at > $2",
                )
                .bind(token_digest.as_bytes().as_slice())
                .bind(now)
                .fetch_optional(&self.pool)
                .await
                .map_err(backend_err)?;
                row.map(|row| {
                    Ok(Session {
                        user_id: UserId(get(&row, "user_id")?),
                        created_at: get(&row, "created_at")?,
                        expires_at: get(&row, "expires_at")?,
                    })
                })
                .transpose()
            }

            async fn delete_session(&self, token_digest: &KeyDigest) -> Result<()> {
                let mut tx = self.begin().await?;
                sqlx::query("DELETE FROM sessions WHERE token_digest = $1")
                    .bind(token_digest.as_bytes().as_slice())
                    .execute(&mut *tx)
                    .await
                    .map_err(backend_err)?;
                let inv = Invalidation::Session(*token_digest);
                invalidate(&mut tx, &inv).await?;
                tx.commit().await.map_err(backend_err)?;
                self.hooks.fire(&inv);
                Ok(())
            }

            async fn delete_expired_sessions(&self, now: i64) -> Result<u64> {
                let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
                    .bind(now)
                    .execute(&self.pool)
                    .await
                    .map_err(backend_err)?;
                Ok(done.rows_affected())
            }

            // -------------------------------------------------------- keys

            async fn insert_key(&self, key: NewKey, audit: &[NewAuditEntry]) -> Result<StoredKey> {
                let mut tx = self.begin().await?;
                insert_key_row(&mut tx, &key).await?;
                append_audit(&mut tx, audit).await?;
                // A cache may hold the new ID as absent (someone presented it before it
                // existed, as when keys are imported): that entry goes.
                let inv = Invalidation::Key(key.key_id.to_string());
                invalidate(&mut tx, &inv).await?;
                tx.commit().await.map_err(backend_err)?;
                self.hooks.fire(&inv);
                self.get_key(&key.key_id).await?.ok_or_else(|| corrupt("key vanished after insert"))
            }

            async fn rotate_key(
                &self,
                old: &KeyId,
                new: NewKey,
                old_expires_at: Option<i64>,
                audit: &[NewAuditEntry],
            ) -> Result<Option<StoredKey>> {
                let mut tx = self.begin().await?;
                // The old key's expiry only ever moves earlier.
                let done = sqlx::query(
                    "UPDATE api_keys SET expires_at = CASE \
                     WHEN $1 IS NULL THEN expires_at \
                     WHEN expires_at IS NULL OR expires_at > $2 THEN $3 ELSE expires_at END \
                     WHERE key_id = $4",
                )
                .bind(old_expires_at)
                .bind(old_expires_at)
                .bind(old_expires_at)
                .bind(old.as_str())
                .execute(&mut *tx)
                .await
                .map_err(backend_err)?;
                if done.rows_affected() == 0 {
                    return Ok(None);
                }
                insert_key_row(&mut tx, &new).await?;
                append_audit(&mut tx, audit).await?;
                let invs = [Invalidation::Key(old.to_string()), Invalidation::Key(new.key_id.to_string())];
                for inv in &invs {
                    invalidate(&mut tx, inv).await?;
                }
                tx.commit().await.map_err(backend_err)?;
                for inv in &invs {
                    self.hooks.fire(inv);
                }
                self.get_key(&new.key_id).await
            }

            async fn keys_expiring(&self, now: i64, until: i64, kind: &str, limit: u32) -> Result<Vec<StoredKey>> {
                let sql = format!(
                    "SELECT {KEY_COLUMNS} FROM {KEY_FROM} WHERE k.expires_at > $1 AND k.expires_at <= $2 \
                     AND k.federated_issuer IS NULL AND NOT EXISTS (SELECT 1 FROM key_notices n \
                     WHERE n.key_id = k.key_id AND n.kind = $3 AND n.due_at = k.expires_at) \
                     AND {NOT_ROTATED_AWAY} \
                     ORDER BY k.expires_at LIMIT $4"
                );
                let rows = sqlx::query(&sql)
                    .bind(now)
                    .bind(until)
                    .bind(kind)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(backend_err)?;
                rows.iter().map(key_from_row).collect()
            }

            async fn idle_keys(&self, org: OrgId, idle_since: i64, now: i64, kind: &str, limit: u32) -> Result<Vec<StoredKey>> {
                let in_org = owned_in_org("$3");
                let sql = format!(
                    "SELECT {KEY_COLUMNS} FROM {KEY_FROM} WHERE COALESCE(k.last_used_at, k.created_at) <= $1 \
                     AND (k.expires_at IS NULL OR k.expires_at > $2) AND k.federated_issuer IS NULL \
                     AND {in_org} \
                     AND NOT EXISTS (SELECT 1 FROM key_notices n WHERE n.key_id = k.key_id AND n.kind = $4 \
                     AND n.due_at = COALESCE(k.last_used_at, k.created_at)) \
                     AND {NOT_ROTATED_AWAY} \
                     ORDER BY COALESCE(k.last_used_at, k.created_at), k.key_id LIMIT $5"
                );
                let rows = sqlx::query(&sql)
                    .bind(idle_since)
                    .bind(now)
                    .bind(org.0)
                    .bind(kind)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(backend_err)?;
                rows.iter().map(key_from_row).collect()
            }

            async fn orgs_announcing_idle_keys(&self) -> Result<Vec<Org>> {
                let sql = format!("SELECT {ORG_COLUMNS} FROM orgs o WHERE o.unused_key_notice_days > 0 ORDER BY o.id");
                let rows = sqlx::query(&sql).fetch_all(&self.pool).await.map_err(backend_err)?;
                rows.iter().map(org_from_row).collect()
            }

            async fn append_audit_entries(&self, audit: &[NewAuditEntry]) -> Result<()> {
                let mut tx = self.begin().await?;
                append_audit(&mut tx, audit).await?;
                tx.commit().await.map_err(backend_err)
            }

            async fn claim_key_notice(
                &self,
                key_id: &KeyId,
                kinds: &[String],
                due_at: i64,
                at: i64,
                audit: &[NewAuditEntry],
                emails: &[NewEmail],
            ) -> Result<bool> {
                if kinds.is_empty() {
                    return Ok(false);
                }
                let mut tx = self.begin().await?;
                for (i, kind) in kinds.iter().enumerate() {
                    // The key may be gone: then nothing is inserted, and the first
                    // notice counts as not given here.
                    let done = sqlx::query(
                        "INSERT INTO key_notices (key_id, kind, due_at, announced_at) \
                         SELECT key_id, $1, $2, $3 FROM api_keys WHERE key_id = $4 \
                         ON CONFLICT DO NOTHING",
                    )
                    .bind(kind)
                    .bind(due_at)
                    .bind(at)
                    .bind(key_id.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(backend_err)?;
                    if i == 0 && done.rows_affected() == 0 {
                        return Ok(false);
                    }
                }
                append_audit(&mut tx, audit).await?;
                for email in emails {
                    sqlx::query(
                        "INSERT INTO email_outbox (dedupe, to_address, subject, body, status, next_attempt_at, created_at) \
                         VALUES ($1, $2, $3, $4, 'pending', $5, $6) ON CONFLICT DO NOTHING",
                    )
                    .bind(&email.dedupe)
                    .bind(&email.to)
                    .bind(&email.subject)
                    .bind(&email.body)
                    .bind(email.created_at)
                    .bind(email.created_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend_err)?;
                }
                tx.commit().await.map_err(backend_err)?;
                Ok(true)
            }

            async fn claim_emails(&self, now: i64, lease_until: i64, limit: u32) -> Result<Vec<Email>> {
                let ids: Vec<i64> = sqlx::query_scalar(
                    "SELECT id FROM email_outbox WHERE status = 'pending' AND next_attempt_at <= $1 \
                     AND locked_until <= $2 ORDER BY next_attempt_at, id LIMIT $3",
                )
                .bind(now)
                .bind(now)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(backend_err)?;
                let mut out = Vec::new();
                for id in ids {
                    // Claimed only if no other replica claimed it since the read.
                    let row = sqlx::query(&format!(
                        "UPDATE email_outbox SET locked_until = $1 \
                         WHERE id = $2 AND status = 'pending' AND locked_until <= $3 RETURNING {EMAIL_COLUMNS}"
                    ))
                    .bind(lease_until)
                    .bind(id)
                    .bind(now)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(backend_err)?;
                    if let Some(row) = row {
                        out.push(email_from_row(&row)?);
                    }
                }
                Ok(out)
            }

            async fn finish_email(&self, id: i64, a: &EmailAttempt) -> Result<()> {
                sqlx::query(
                    "UPDATE email_outbox SET status = $1, attempts = attempts + 1, last_error = $2, \
                     next_attempt_at = $3, locked_until = 0, \
                     sent_at = CASE WHEN $4 = 'sent' THEN $5 ELSE sent_at END WHERE id = $6",
                )
                .bind(a.status.as_str())
                .bind(a.error.as_deref())
                .bind(a.next_attempt_at)
                .bind(a.status.as_str())
                .bind(a.at)
                .bind(id)
                .execute(&self.pool)
                .await
                .map_err(backend_err)?;
                Ok(())
            }

            async fn list_emails(&self, limit: u32) -> Result<Vec<Email>> {
                let rows = sqlx::query(&format!("SELECT {EMAIL_COLUMNS} FROM email_outbox ORDER BY id DESC LIMIT $1"))
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(backend_err)?;
                rows.iter().map(email_from_row).collect()
            }

            async fn keys_expired_before(&self, before: i64, limit: u32) -> Result<Vec<StoredKey>> {
                let sql = format!(
                    "SELECT {KEY_COLUMNS} FROM {KEY_FROM} WHERE k.expires_at <= $1 ORDER BY k.expires_at, k.key_id LIMIT $2"
                );
                let rows = sqlx::query(&sql)
                    .bind(before)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(backend_err)?;
                rows.iter().map(key_from_row).collect()
            }

            async fn purge_deliveries(&self, before: i64) -> Result<u64> {
                let done = sqlx::query("DELETE FROM webhook_deliveries WHERE status <> 'pending' AND created_at < $1")
                    .bind(before)
                    .execute(&self.pool)
                    .await
                    .map_err(backend_err)?;
                Ok(done.rows_affected())
            }

            async fn purge_emails(&self, before: i64) -> Result<u64> {
                let done = sqlx::query("DELETE FROM email_outbox WHERE status <> 'pending' AND created_at < $1")
                    .bind(before)
                    .execute(&self.pool)
                    .await
                    .map_err(backend_err)?;
                Ok(done.rows_affected())
            }

            async fn find_key_for_auth(&self, key_id: &KeyId) -> Result<Option<AuthRecord>> {
                let sql = format!("{AUTH_SELECT} WHERE k.key_id = $1");
                let row = sqlx::query(&sql)
                    .bind(key_id.as_str())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(backend_err)?;
                row.as_ref().map(auth_from_row).transpose()
            }

            async fn find_legacy_key_for_auth(&self, digest: &KeyDigest) -> Result<Option<AuthRecord>> {
                let sql = format!("{AUTH_SELECT} WHERE k.digest = $1 AND k.format = 'legacy'");
                let row = sqlx::query(&sql)
                    .bind(digest.as_bytes().as_slice())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(backend_err)?;
                row.as_ref().map(auth_from_row).transpose()
            }

            async fn get_key(&self, key_id: &KeyId) -> Result<Option<StoredKey>> {
                let sql = format!("SELECT {KEY_COLUMNS} FROM {KEY_FROM} WHERE k.key_id = $1");
                let row = sqlx::query(&sql)
                    .bind(key_id.as_str())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(backend_err)?;
                row.as_ref().map(key_from_row).transpose()
            }

            async fn list_keys(&self, query: &KeyListQuery) -> Result<Vec<StoredKey>> {
                let vis = &query.visibility;
                let f = &query.filter;
                let (order, order_index) = match query.sort {
                    KeySort::Created => ("k.created_at", "api_keys_created"),
                    KeySort::LastUsed => ("COALESCE(k.last_used_at, -1)", "api_keys_last_used"),
                };
                // An org admin sees most of the table: the fast plan walks the sort
                // index and stops after a page. Both planners tend to start elsewhere
                // and sort everything when a filter looks selective, so they are told
                // ($order_hint).
                // Narrow lists (own keys, a team admin's bots, one owner, one team) are
                // served by the owner index.
                let broad = !vis.admin_orgs.is_empty() && f.owner.is_none() && f.team.is_none();
                let hint = if broad { $order_hint } else { crate::sql_store::OrderHint::None };
                let indexed_by = match hint {
                    crate::sql_store::OrderHint::IndexedBy => format!(" INDEXED BY {order_index}"),
                    _ => String::new(),
                };
                // The page is chosen from api_keys alone; owners and creators are joined
                // to its rows only, never to every candidate.
                let mut qb = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT {KEY_COLUMNS} FROM (SELECT * FROM api_keys k{indexed_by} WHERE 1 = 1"
                ));
                // Cheap filters first: SQLite evaluates terms in order, so the
                // per-row visibility subqueries run only on rows that pass them.
                if let Some(owner) = f.owner {
                    qb.push(" AND k.owner_user_id = ").push_bind(owner.0);
                }
                if let Some(needle) = &f.name_contains {
                    qb.push(format!(" AND {} ", $name_like)).push_bind(like_pattern(needle)).push(" ESCAPE '\\'");
                }
                if let Some(t) = f.last_used_before {
                    qb.push(" AND k.last_used_at < ").push_bind(t);
                }
                if let Some(t) = f.last_used_after {
                    qb.push(" AND k.last_used_at > ").push_bind(t);
                }
                if let Some(t) = f.expires_after {
                    qb.push(" AND k.expires_at > ").push_bind(t);
                }
                if let Some(t) = f.expires_before {
                    qb.push(" AND k.expires_at <= ").push_bind(t);
                }
                if let Some(kind) = f.owner_kind {
                    qb.push(" AND k.owner_user_id IN (SELECT fk.id FROM users fk WHERE fk.kind = ")
                        .push_bind(kind.as_str())
                        .push(")");
                }
                if let Some(after) = &query.after {
                    qb.push(format!(" AND ({order} < "))
                        .push_bind(after.value)
                        .push(format!(" OR ({order} = "))
                        .push_bind(after.value)
                        .push(" AND k.key_id < ")
                        .push_bind(after.key_id.clone())
                        .push("))");
                }
                if let Some(team) = f.team {
                    qb.push(" AND k.owner_user_id IN (SELECT fs.user_id FROM service_accounts fs WHERE fs.team_id = ")
                        .push_bind(team.0)
                        .push(" UNION SELECT ft.user_id FROM team_members ft WHERE ft.team_id = ")
                        .push_bind(team.0)
                        .push(")");
                }
                if let Some(org) = f.org {
                    qb.push(" AND EXISTS (SELECT 1 FROM org_members fo WHERE fo.user_id = k.owner_user_id AND fo.org_id = ")
                        .push_bind(org.0)
                        .push(")");
                }
                // Visibility: own keys OR keys of the org admin's orgs OR keys of the team
                // admin's bots. Written as ORs of owner conditions (never a constant
                // `1 = 0 OR …`, which would hide the owner index from SQLite).
                qb.push(" AND (");
                let mut terms = 0;
                if let Some(caller) = vis.caller {
                    qb.push("k.owner_user_id = ").push_bind(caller.0);
                    terms += 1;
                }
                if !vis.admin_teams.is_empty() {
                    if terms > 0 {
                        qb.push(" OR ");
                    }
                    qb.push("k.owner_user_id IN (SELECT vs.user_id FROM service_accounts vs WHERE vs.team_id IN (");
                    let mut list = qb.separated(", ");
                    for team in &vis.admin_teams {
                        list.push_bind(team.0);
                    }
                    qb.push("))");
                    terms += 1;
                }
                if !vis.admin_orgs.is_empty() {
                    if terms > 0 {
                        qb.push(" OR ");
                    }
                    qb.push("EXISTS (SELECT 1 FROM org_members vm WHERE vm.user_id = k.owner_user_id AND vm.org_id IN (");
                    let mut list = qb.separated(", ");
                    for org in &vis.admin_orgs {
                        list.push_bind(org.0);
                    }
                    qb.push("))");
                    terms += 1;
                }
                if terms == 0 {
                    qb.push("1 = 0");
                }
                qb.push(")");
                qb.push(format!(" ORDER BY {order} DESC, k.key_id DESC LIMIT ")).push_bind(i64::from(query.limit));
                qb.push(format!(
                    ") k JOIN users u ON u.id = k.owner_user_id LEFT JOIN users cb ON cb.id = k.created_by_user_id \
                     ORDER BY {order} DESC, k.key_id DESC"
                ));
                // Not a cached prepared statement: PostgreSQL would switch to a generic
                // plan after five runs and lose the selectivity of a name pattern.
                let rows = if hint == crate::sql_store::OrderHint::DisableSort {
                    let mut tx = self.begin().await?;
                    sqlx::query("SET LOCAL enable_sort = off").execute(&mut *tx).await.map_err(backend_err)?;
                    let rows = qb.build().persistent(false).fetch_all(&mut *tx).await.map_err(backend_err)?;
                    tx.commit().await.map_err(backend_err)?;
                    rows
                } else {
                    qb.build().persistent(false).fetch_all(&self.pool).await.map_err(backend_err)?
                };
                rows.iter().map(key_from_row).collect()
            }

            async fn rename_key(&self, key_id: &KeyId, name: &str, audit: &[NewAuditEntry]) -> Result<Option<StoredKey>> {
                let mut tx = self.begin().await?;
                let done = sqlx::query("UPDATE api_keys SET name = $1 WHERE key_id = $2")
                    .bind(name)
                    .bind(key_id.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(backend_err)?;
                if done.rows_affected() == 0 {
                    return Ok(None);
                }
                append_audit(&mut tx, audit).await?;
                tx.commit().await.map_err(backend_err)?;
                self.get_key(key_id).await
            }

            async fn delete_key(&self, key_id: &KeyId, audit: &[NewAuditEntry]) -> Result<bool> {
                let mut tx = self.begin().await?;
                let done = sqlx::query("DELETE FROM api_keys WHERE key_id = $1")
                    .bind(key_id.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(backend_err)?;
                if done.rows_affected() == 0 {
                    return Ok(false);
                }
                append_audit(&mut tx, audit).await?;
                let inv = Invalidation::Key(key_id.to_string());
                invalidate(&mut tx, &inv).await?;
                tx.commit().await.map_err(backend_err)?;
                self.hooks.fire(&inv);
                Ok(true)
            }

            async fn record_key_use(&self, uses: &[(KeyId, i64)]) -> Result<()> {
                self.record_latest("last_used_at", uses).await
            }

            async fn record_key_writes(&self, writes: &[(KeyId, i64)]) -> Result<()> {
                self.record_latest("last_write_at", writes).await
            }

            async fn key_report(&self, q: &KeyReportQuery) -> Result<Vec<StoredKey>> {
                // Keys of the organization's members and service accounts that still
                // work: not expired, not rotated away, not federated sessions.
                let (term, order) = match q.kind {
                    ReportKind::NeverUsed => ("k.last_used_at IS NULL AND k.created_at <= $3", "k.created_at, k.key_id"),
                    ReportKind::Idle => ("k.last_used_at <= $3", "k.last_used_at, k.key_id"),
                    ReportKind::Expiring => ("k.expires_at <= $3", "k.expires_at, k.key_id"),
                    ReportKind::ReadsOnly => (
                        "k.scope <> 'read' AND k.last_used_at > $3 AND k.created_at <= $3 \
                         AND (k.last_write_at IS NULL OR k.last_write_at <= $3)",
                        "k.last_used_at DESC, k.key_id",
                    ),
                };
                let in_org = owned_in_org("$1");
                let sql = format!(
                    "SELECT {KEY_COLUMNS} FROM {KEY_FROM} \
                     WHERE {in_org} \
                     AND (k.expires_at IS NULL OR k.expires_at > $2) AND k.federated_issuer IS NULL \
                     AND {NOT_ROTATED_AWAY} \
                     AND {term} ORDER BY {order} LIMIT $4"
                );
                let rows = sqlx::query(&sql)
                    .bind(q.org.0)
                    .bind(q.now)
                    .bind(q.threshold)
                    .bind(i64::from(q.limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(backend_err)?;
                rows.iter().map(key_from_row).collect()
            }

            async fn record_key_sources(&self, uses: &[KeySourceUse]) -> Result<()> {
                if uses.is_empty() {
                    return Ok(());
                }
                let mut tx = self.begin().await?;
                for u in uses {
                    // A key deleted since its use has no sources to keep.
                    sqlx::query(
                        "INSERT INTO key_sources (key_id, address, user_agent, first_seen, last_seen) \
                         SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM api_keys WHERE key_id = $6) \
                         ON CONFLICT (key_id, address, user_agent) DO UPDATE SET \
                         first_seen = CASE WHEN excluded.first_seen < key_sources.first_seen \
                             THEN excluded.first_seen ELSE key_sources.first_seen END, \
                         last_seen = CASE WHEN excluded.last_seen > key_sources.last_seen \
                             THEN excluded.last_seen ELSE key_sources.last_seen END",
                    )
                    .bind(u.key_id.as_str())
                    .bind(&u.address)
                    .bind(&u.user_agent)
                    .bind(u.first_seen)
                    .bind(u.last_seen)
                    .bind(u.key_id.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(backend_err)?;
                }
                let mut keys: Vec<&str> = uses.iter().map(|u| u.key_id.as_str()).collect();
                keys.sort_unstable();
                keys.dedup();
                for key in keys {
                    sqlx::query(
                        "DELETE FROM key_sources WHERE key_id = $1 AND (address, user_agent) NOT IN \
                         (SELECT address, user_agent FROM key_sources WHERE key_id = $2 \
                          ORDER BY last_seen DESC, address, user_agent LIMIT $3)",
                    )
                    .bind(key)
                    .bind(key)
                    .bind(MAX_SOURCES_PER_KEY)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend_err)?;
                }
                tx.commit().await.map_err(backend_err)?;
                Ok(())
            }

            async fn key_sources(&self, key_id: &KeyId) -> Result<Vec<KeySource>> {
                let rows = sqlx::query(
                    "SELECT address, user_agent, first_seen, last_seen FROM key_sources WHERE key_id = $1 \
                     ORDER BY last_seen DESC, address, user_agent",
                )
                .bind(key_id.as_str())
                .fetch_all(&self.pool)
                .await
                .map_err(backend_err)?;
                rows.iter()
                    .map(|row| {
                        Ok(KeySource {
                            address: get(row, "address")?,
                            user_agent: get(row, "user_agent")?,
                            first_seen: get(row, "first_seen")?,
                            last_seen: get(row, "last_seen")?,
                        })
                    })
                    .collect()
            }

            // -------------------------------------------------------- invalidations

            fn on_invalidation(&self, hook: InvalidationHook) {
                self.hooks.add(hook);
            }

            async fn subscribe_invalidations(&self) -> Result<Option<Box<dyn crate::InvalidationFeed>>> {
                self.subscribe().await
            }

            async fn backup_to(&self, path: &std::path::Path) -> Result<()> {
                self.backup_into(path).await
            }

            async fn table_counts(&self) -> Result<Vec<(String, i64)>> {
                let mut counts = Vec::new();
                for table in crate::TABLES {
                    let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
                        .fetch_one(&self.pool)
                        .await
                        .map_err(backend_err)?;
                    counts.push(((*table).to_owned(), n));
                }
                Ok(counts)
            }

            // -------------------------------------------------------- audit

            async fn list_audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
                let mut qb = sqlx::QueryBuilder::<$db>::new(format!("SELECT {AUDIT_COLUMNS} FROM audit_log WHERE 1 = 1"));
                if let Some(org) = query.org {
                    qb.push(" AND org_id = ").push_bind(org.0);
                }
                if let Some(action) = &query.action {
                    qb.push(" AND action = ").push_bind(action.clone());
                }
                if let Some(actor) = &query.actor {
                    qb.push(" AND lower(actor_name) = lower(").push_bind(actor.clone()).push(")");
                }
                if let Some(target) = &query.target {
                    qb.push(" AND target = ").push_bind(target.clone());
                }
                if let Some(since) = query.since {
                    qb.push(" AND at >= ").push_bind(since);
                }
                if let Some(until) = query.until {
                    qb.push(" AND at < ").push_bind(until);
                }
                if let Some(before) = query.before_id {
                    qb.push(" AND id < ").push_bind(before);
                }
                qb.push(" ORDER BY id DESC LIMIT ").push_bind(i64::from(query.limit));
                let rows = qb.build().fetch_all(&self.pool).await.map_err(backend_err)?;
                rows.iter().map(audit_from_row).collect()
            }

            // -------------------------------------------------------- webhooks

            async fn create_webhook(&self, w: NewWebhook, audit: &[NewAuditEntry]) -> Result<Webhook> {
                let mut tx = self.begin().await?;
                let row = sqlx::query(&format!(
                    "INSERT INTO webhook_endpoints (org_id, uid, url, events, description, created_at, created_by) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {WEBHOOK_COLUMNS}"
                ))
                .bind(w.org.0)
                .bind(&w.uid)
                .bind(&w.url)
                .bind(w.events.join(","))
                .bind(&w.description)
                .bind(w.created_at)
                .bind(w.created_by.map(|u| u.0))
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| StoreError::from_sqlx(e, "a webhook with this ID"))?;
                append_audit(&mut tx, audit).await?;
                tx.commit().await.map_err(backend_err)?;
                webhook_from_row(&row)
            }

            async fn list_webhooks(&self, org: OrgId) -> Result<Vec<Webhook>> {
                let rows = sqlx::query(&format!(
                    "SELECT {WEBHOOK_COLUMNS} FROM webhook_endpoints WHERE org_id = $1 ORDER BY id"
                ))
                .bind(org.0)
                .fetch_all(&self.pool)
                .await
                .map_err(backend_err)?;
                rows.iter().map(webhook_from_row).collect()
            }

            async fn get_webhook(&self, id: i64) -> Result<Option<Webhook>> {
                let row = sqlx::query(&format!("SELECT {WEBHOOK_COLUMNS} FROM webhook_endpoints WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(backend_err)?;
                row.as_ref().map(webhook_from_row).transpose()
            }

            async fn delete_webhook(&self, id: i64, audit: &[NewAuditEntry]) -> Result<bool> {
                let mut tx = self.begin().await?;
                let done = sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend_err)?;
                if done.rows_affected() == 0 {
                    return Ok(false);
                }
                append_audit(&mut tx, audit).await?;
                tx.commit().await.map_err(backend_err)?;
                Ok(true)
            }

            async fn rotate_webhook_secret(&self, id: i64, at: i64, audit: &[NewAuditEntry]) -> Result<Option<Webhook>> {
                let mut tx = self.begin().await?;
                let row = sqlx::query(&format!(
                    "UPDATE webhook_endpoints SET previous_secret_version = secret_version, \
                     secret_version = secret_version + 1, secret_rotated_at = $1 WHERE id = $2 \
                     RETURNING {WEBHOOK_COLUMNS}"
                ))
                .bind(at)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend_err)?;
                let Some(row) = row else {
                    return Ok(None);
                };
                append_audit(&mut tx, audit).await?;
                tx.commit().await.map_err(backend_err)?;
                webhook_from_row(&row).map(Some)
            }

            async fn outbox_batch(&self, now: i64, limit: u32) -> Result<(i64, Vec<AuditEntry>)> {
                let cursor: i64 = sqlx::query_scalar("SELECT last_audit_id FROM webhook_outbox WHERE id = 1")
                    .fetch_one(&self.pool)
                    .await
                    .map_err(backend_err)?;
                let (_, entries) = self.audit_after(cursor, now, limit).await?;
                Ok((cursor, entries))
            }

            async fn audit_after(&self, after: i64, now: i64, limit: u32) -> Result<(i64, Vec<AuditEntry>)> {
                let sql = format!("SELECT {AUDIT_COLUMNS} FROM audit_log WHERE id > $1 ORDER BY id LIMIT $2");
                let rows = sqlx::query(&sql)
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(backend_err)?;
                let entries: Vec<AuditEntry> = rows.iter().map(audit_from_row).collect::<Result<_>>()?;
                let entries = crate::sql_store::without_gaps(after, entries, now);
                Ok((entries.last().map_or(after, |e| e.id), entries))
            }

            async fn audit_cursor_at(&self, at: i64) -> Result<i64> {
                sqlx::query_scalar(
                    "SELECT COALESCE((SELECT MIN(id) FROM audit_log WHERE at >= $1) - 1, \
                     (SELECT COALESCE(MAX(id), 0) FROM audit_log))",
                )
                .bind(at)
                .fetch_one(&self.pool)
                .await
                .map_err(backend_err)
            }

            async fn audit_chain_head(&self) -> Result<(i64, String)> {
                let row = sqlx::query("SELECT last_id, last_hash FROM audit_chain WHERE id = 1")
                    .fetch_one(&self.pool)
                    .await
                    .map_err(backend_err)?;
                Ok((get(&row, "last_id")?, get(&row, "last_hash")?))
            }

            async fn seal_audit(&self, from: i64, hashes: &[(i64, String)]) -> Result<bool> {
                let Some((to, head)) = hashes.last() else {
                    return Ok(true);
                };
                let mut tx = self.begin().await?;
                let moved = sqlx::query("UPDATE audit_chain SET last_id = $1, last_hash = $2 WHERE id = 1 AND last_id = $3")
                    .bind(to)
                    .bind(head)
                    .bind(from)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend_err)?;
                if moved.rows_affected() == 0 {
                    return Ok(false);
                }
                for (id, hash) in hashes {
                    sqlx::query("UPDATE audit_log SET chain_hash = $1 WHERE id = $2 AND chain_hash IS NULL")
                        .bind(hash)
                        .bind(id)
                        .execute(&mut *tx)
                        .await
                        .map_err(backend_err)?;
                }
                tx.commit().await.map_err(backend_err)?;
                Ok(true)
            }

            async fn commit_outbox(&self, from: i64, to: i64, deliveries: &[NewDelivery]) -> Result<bool> {
                let mut tx = self.begin().await?;
                let moved = sqlx::query("UPDATE webhook_outbox SET last_audit_id = $1 WHERE id = 1 AND last_audit_id = $2")
                    .bind(to)
                    .bind(from)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend_err)?;
                if moved.rows_affected() == 0 {
                    return Ok(false);
                }
                for d in deliveries {
                    sqlx::query(
                        "INSERT INTO webhook_deliveries (endpoint_id, message_id, event_type, payload, status, \
                         next_attempt_at, created_at) SELECT $1, $2, $3, $4, 'pending', $5, $6 \
                         WHERE EXISTS (SELECT 1 FROM webhook_endpoints WHERE id = $7)",
                    )
                    .bind(d.endpoint_id)
                    .bind(&d.message_id)
                    .bind(&d.event_type)
                    .bind(&d.payload)
                    .bind(d.created_at)
                    .bind(d.created_at)
                    .bind(d.endpoint_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend_err)?;
                }
                tx.commit().await.map_err(backend_err)?;
                Ok(true)
            }

            async fn claim_deliveries(&self, now: i64, lease_until: i64, limit: u32) -> Result<Vec<(Delivery, Webhook)>> {
                let ids: Vec<i64> = sqlx::query_scalar(
                    "SELECT id FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= $1 \
                     AND locked_until <= $2 ORDER BY next_attempt_at, id LIMIT $3",
                )
                .bind(now)
                .bind(now)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(backend_err)?;
                let mut out = Vec::new();
                for id in ids {
                    // Claimed only if no other replica claimed it since the read.
                    let claimed = sqlx::query(
                        "UPDATE webhook_deliveries SET locked_until = $1 \
                         WHERE id = $2 AND status = 'pending' AND locked_until <= $3",
                    )
                    .bind(lease_until)
                    .bind(id)
                    .bind(now)
                    .execute(&self.pool)
                    .await
                    .map_err(backend_err)?;
                    if claimed.rows_affected() == 0 {
                        continue;
                    }
                    let row = sqlx::query(&format!(
                        "SELECT {DELIVERY_COLUMNS}, {WEBHOOK_COLUMNS_W} FROM webhook_deliveries d \
                         JOIN webhook_endpoints w ON w.id = d.endpoint_id WHERE d.id = $1"
                    ))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(backend_err)?;
                    if let Some(row) = row {
                        out.push((delivery_from_row(&row)?, webhook_from_row(&row)?));
                    }
                }
                Ok(out)
            }

            async fn finish_attempt(&self, delivery: i64, r: &AttemptResult) -> Result<()> {
                sqlx::query(
                    "UPDATE webhook_deliveries SET status = $1, attempts = attempts + 1, last_status = $2, \
                     last_error = $3, next_attempt_at = $4, locked_until = 0, \
                     delivered_at = CASE WHEN $5 = 'delivered' THEN $6 ELSE delivered_at END WHERE id = $7",
                )
                .bind(r.status.as_str())
                .bind(r.http_status)
                .bind(r.error.as_deref())
                .bind(r.next_attempt_at)
                .bind(r.status.as_str())
                .bind(r.at)
                .bind(delivery)
                .execute(&self.pool)
                .await
                .map_err(backend_err)?;
                Ok(())
            }

            async fn list_deliveries(&self, endpoint: i64, limit: u32) -> Result<Vec<Delivery>> {
                let rows = sqlx::query(&format!(
                    "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d WHERE d.endpoint_id = $1 \
                     ORDER BY d.id DESC LIMIT $2"
                ))
                .bind(endpoint)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(backend_err)?;
                rows.iter().map(delivery_from_row).collect()
            }

            async fn create_jwt_issuer(&self, i: NewJwtIssuer, audit: &[NewAuditEntry]) -> Result<JwtIssuer> {
                let mut tx = self.begin().await?;
                let row = sqlx::query(&format!(
                    "INSERT INTO jwt_issuers (org_id, issuer, audience, created_at, created_by) \
                     VALUES ($1, $2, $3, $4, $5) RETURNING {ISSUER_COLUMNS}"
                ))
                .bind(i.org.0)
                .bind(&i.issuer)
                .bind(&i.audience)
                .bind(i.created_at)
                .bind(i.created_by.map(|u| u.0))
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| StoreError::from_sqlx(e, "this issuer"))?;
                append_audit(&mut tx, audit).await?;
                tx.commit().await.map_err(backend_err)?;
                issuer_from_row(&row)
            }

            async fn list_jwt_issuers(&self, org: OrgId) -> Result<Vec<JwtIssuer>> {
                let rows = sqlx::query(&format!("SELECT {ISSUER_COLUMNS} FROM jwt_issuers WHERE org_id = $1 ORDER BY id"))
                    .bind(org.0)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(backend_err)?;
                rows.iter().map(issuer_from_row).collect()
            }

            async fn jwt_issuers_named(&self, iss: &str) -> Result<Vec<JwtIssuer>> {
                let rows = sqlx::query(&format!("SELECT {ISSUER_COLUMNS} FROM jwt_issuers WHERE issuer = $1 ORDER BY id"))
                    .bind(iss)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(backend_err)?;
                rows.iter().map(issuer_from_row).collect()
            }

            async fn delete_jwt_issuer(&self, org: OrgId, id: i64, audit: &[NewAuditEntry]) -> Result<Option<JwtIssuer>> {
                let mut tx = self.begin().await?;
                let row = sqlx::query(&format!(
                    "DELETE FROM jwt_issuers WHERE org_id = $1 AND id = $2 RETURNING {ISSUER_COLUMNS}"
                ))
                .bind(org.0)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend_err)?;
                let Some(row) = row else { return Ok(None) };
                append_audit(&mut tx, audit).await?;
                tx.commit().await.map_err(backend_err)?;
                issuer_from_row(&row).map(Some)
            }

            async fn find_federated_identity(&self, org: OrgId, subject: &str) -> Result<Option<User>> {
                // An external service account's subject is matched exactly; a user's
                // email as emails are compared everywhere else, without case.
                let row = sqlx::query(&format!(
                    "SELECT {USER_COLUMNS} FROM users WHERE id IN ( \
                       SELECT s.user_id FROM service_accounts s WHERE s.org_id = $1 AND s.external_subject = $2) \
                     UNION ALL \
                     SELECT {USER_COLUMNS} FROM users WHERE kind = 'user' AND lower(email) = lower($3) \
                       AND id IN (SELECT m.user_id FROM org_members m WHERE m.org_id = $4) \
                     LIMIT 1"
                ))
                .bind(org.0)
                .bind(subject)
                .bind(subject)
                .bind(org.0)
                .fetch_optional(&self.pool)
                .await
                .map_err(backend_err)?;
                row.as_ref().map(user_from_row).transpose()
            }

            async fn create_sso_provider(&self, p: NewSsoProvider, audit: &[NewAuditEntry]) -> Result<SsoProvider> {
                let mut tx = self.begin().await?;
                let row = sqlx::query(&format!(
                    "INSERT INTO sso_providers (org_id, name, issuer, client_id, client_secret_file, scopes, \
                     groups_claim, jit, group_rules, created_at, created_by, email_claim) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING {SSO_COLUMNS}"
                ))
                .bind(p.org.0)
                .bind(&p.name)
                .bind(&p.issuer)
                .bind(&p.client_id)
                .bind(&p.client_secret_file)
                .bind(&p.scopes)
                .bind(&p.groups_claim)
                .bind(p.jit)
                .bind(&p.group_rules)
                .bind(p.created_at)
                .bind(p.created_by.map(|u| u.0))
                .bind(&p.email_claim)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| StoreError::from_sqlx(e, "a single sign-on provider with this name"))?;
                append_audit(&mut tx, audit).await?;
                tx.commit().await.map_err(backend_err)?;
                sso_from_row(&row)
            }

            async fn list_sso_providers(&self, org: Option<OrgId>) -> Result<Vec<SsoProvider>> {
                let rows = sqlx::query(&format!(
                    "SELECT {SSO_COLUMNS} FROM sso_providers WHERE $1 IS NULL OR org_id = $2 ORDER BY id"
                ))
                .bind(org.map(|o| o.0))
                .bind(org.map(|o| o.0))
                .fetch_all(&self.pool)
                .await
                .map_err(backend_err)?;
                rows.iter().map(sso_from_row).collect()
            }

            async fn get_sso_provider(&self, id: i64) -> Result<Option<SsoProvider>> {
                let row = sqlx::query(&format!("SELECT {SSO_COLUMNS} FROM sso_providers WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(backend_err)?;
                row.as_ref().map(sso_from_row).transpose()
            }

            async fn delete_sso_provider(&self, org: OrgId, id: i64, audit: &[NewAuditEntry]) -> Result<Option<SsoProvider>> {
                let mut tx = self.begin().await?;
                let row = sqlx::query(&format!(
                    "DELETE FROM sso_providers WHERE org_id = $1 AND id = $2 RETURNING {SSO_COLUMNS}"
                ))
                .bind(org.0)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend_err)?;
                let Some(row) = row else { return Ok(None) };
                append_audit(&mut tx, audit).await?;
                tx.commit().await.map_err(backend_err)?;
                sso_from_row(&row).map(Some)
            }

            async fn scim_user_records(&self, org: OrgId) -> Result<Vec<(UserId, ScimRecord)>> {
                let rows = sqlx::query(
                    "SELECT user_id AS id, scim, scim_updated_at FROM org_members WHERE org_id = $1 AND scim IS NOT NULL",
                )
                .bind(org.0)
                .fetch_all(&self.pool)
                .await
                .map_err(backend_err)?;
                rows.iter().map(|row| Ok((UserId(get(row, "id")?), scim_record_from_row(row)?))).collect()
            }

            async fn set_scim_user(
                &self,
                org: OrgId,
                user: UserId,
                record: &ScimRecord,
                email: Option<Option<&str>>,
                audit: &[NewAuditEntry],
            ) -> Result<bool> {
                let mut tx = self.begin().await?;
                let done = sqlx::query("UPDATE org_members SET scim = $1, scim_updated_at = $2 WHERE org_id = $3 AND user_id = $4")
                    .bind(&record.attributes)
                    .bind(record.updated_at)
                    .bind(org.0)
                    .bind(user.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend_err)?;
                if done.rows_affected() == 0 {
                    return Ok(false);
                }
                let changed_email = match email {
                    Some(email) => {
                        sqlx::query("UPDATE users SET email = $1 WHERE id = $2 AND email IS DISTINCT FROM $3")
                            .bind(email)
                            .bind(user.0)
                            .bind(email)
                            .execute(&mut *tx)
                            .await
                            .map_err(|e| StoreError::from_sqlx(e, "a principal with this email"))?
                            .rows_affected()
                            > 0
                    }
                    None => false,
                };
                append_audit(&mut tx, audit).await?;
                // The email is part of who the user is to the caller cache.
                let inv = Invalidation::Owner(user);
                if changed_email {
                    invalidate(&mut tx, &inv).await?;
                }
                tx.commit().await.map_err(backend_err)?;
                if changed_email {
                    self.hooks.fire(&inv);
                }
                Ok(true)
            }

            async fn scim_team_records(&self, org: OrgId) -> Result<Vec<(TeamId, ScimRecord)>> {
                let rows = sqlx::query("SELECT id, scim, scim_updated_at FROM teams WHERE org_id = $1 AND scim IS NOT NULL")
                    .bind(org.0)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(backend_err)?;
                rows.iter().map(|row| Ok((TeamId(get(row, "id")?), scim_record_from_row(row)?))).collect()
            }

            async fn set_scim_team(&self, team: TeamId, record: &ScimRecord, audit: &[NewAuditEntry]) -> Result<bool> {
                let mut tx = self.begin().await?;
                let done = sqlx::query("UPDATE teams SET scim = $1, scim_updated_at = $2 WHERE id = $3")
                    .bind(&record.attributes)
                    .bind(record.updated_at)
                    .bind(team.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend_err)?;
                if done.rows_affected() == 0 {
                    return Ok(false);
                }
                append_audit(&mut tx, audit).await?;
                tx.commit().await.map_err(backend_err)?;
                Ok(true)
            }

            async fn delete_team(&self, team: TeamId, audit: &[NewAuditEntry]) -> Result<bool> {
                let mut tx = self.begin().await?;
                let members: Vec<i64> = sqlx::query_scalar("SELECT user_id FROM team_members WHERE team_id = $1")
                    .bind(team.0)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(backend_err)?;
                let done = sqlx::query(
                    "DELETE FROM teams WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM service_accounts WHERE team_id = $2)",
                )
                .bind(team.0)
                .bind(team.0)
                .execute(&mut *tx)
                .await
                .map_err(backend_err)?;
                if done.rows_affected() == 0 {
                    return Ok(false);
                }
                append_audit(&mut tx, audit).await?;
                // A team role is part of who each member is to every cache of callers.
                let invalidations: Vec<Invalidation> = members.into_iter().map(|u| Invalidation::Owner(UserId(u))).collect();
                for inv in &invalidations {
                    invalidate(&mut tx, inv).await?;
                }
                tx.commit().await.map_err(backend_err)?;
                for inv in &invalidations {
                    self.hooks.fire(inv);
                }
                Ok(true)
            }
        }

        const SSO_COLUMNS: &str = "id, org_id, name, issuer, client_id, client_secret_file, scopes, groups_claim, jit, \
             group_rules, created_at, email_claim";

        fn sso_from_row(row: &DbRow) -> Result<SsoProvider> {
            Ok(SsoProvider {
                id: get(row, "id")?,
                org: OrgId(get(row, "org_id")?),
                name: get(row, "name")?,
                issuer: get(row, "issuer")?,
                client_id: get(row, "client_id")?,
                client_secret_file: get(row, "client_secret_file")?,
                scopes: get(row, "scopes")?,
                groups_claim: get(row, "groups_claim")?,
                email_claim: get(row, "email_claim")?,
                jit: get(row, "jit")?,
                group_rules: get(row, "group_rules")?,
                created_at: get(row, "created_at")?,
            })
        }

        fn scim_record_from_row(row: &DbRow) -> Result<ScimRecord> {
            Ok(ScimRecord {
                attributes: get(row, "scim")?,
                updated_at: get::<Option<i64>>(row, "scim_updated_at")?.unwrap_or(0),
            })
        }

        const ISSUER_COLUMNS: &str = "id, org_id, issuer, audience, created_at";

        fn issuer_from_row(row: &DbRow) -> Result<JwtIssuer> {
            Ok(JwtIssuer {
                id: get(row, "id")?,
                org: OrgId(get(row, "org_id")?),
                issuer: get(row, "issuer")?,
                audience: get(row, "audience")?,
                created_at: get(row, "created_at")?,
            })
        }

        const WEBHOOK_COLUMNS: &str = "id AS w_id, org_id AS w_org_id, uid AS w_uid, url AS w_url, events AS w_events, \
             description AS w_description, secret_version AS w_secret_version, \
             previous_secret_version AS w_previous_secret_version, secret_rotated_at AS w_secret_rotated_at, \
             created_at AS w_created_at";
        const WEBHOOK_COLUMNS_W: &str = "w.id AS w_id, w.org_id AS w_org_id, w.uid AS w_uid, w.url AS w_url, \
             w.events AS w_events, w.description AS w_description, w.secret_version AS w_secret_version, \
             w.previous_secret_version AS w_previous_secret_version, w.secret_rotated_at AS w_secret_rotated_at, \
             w.created_at AS w_created_at";
        const EMAIL_COLUMNS: &str = "id, to_address, subject, body, status, attempts, next_attempt_at, last_error, \
             created_at, sent_at";

        fn email_from_row(row: &DbRow) -> Result<Email> {
            Ok(Email {
                id: get(row, "id")?,
                to: get(row, "to_address")?,
                subject: get(row, "subject")?,
                body: get(row, "body")?,
                status: EmailStatus::parse(&get::<String>(row, "status")?).ok_or_else(|| corrupt("email status"))?,
                attempts: get(row, "attempts")?,
                next_attempt_at: get(row, "next_attempt_at")?,
                last_error: get(row, "last_error")?,
                created_at: get(row, "created_at")?,
                sent_at: get(row, "sent_at")?,
            })
        }

        const DELIVERY_COLUMNS: &str = "d.id, d.endpoint_id, d.message_id, d.event_type, d.payload, d.status, \
             d.attempts, d.next_attempt_at, d.last_status, d.last_error, d.created_at, d.delivered_at";

        fn webhook_from_row(row: &DbRow) -> Result<Webhook> {
            let events: String = get(row, "w_events")?;
            Ok(Webhook {
                id: get(row, "w_id")?,
                org: OrgId(get(row, "w_org_id")?),
                uid: get(row, "w_uid")?,
                url: get(row, "w_url")?,
                events: events.split(',').filter(|e| !e.is_empty()).map(str::to_owned).collect(),
                description: get(row, "w_description")?,
                secret_version: get(row, "w_secret_version")?,
                previous_secret_version: get(row, "w_previous_secret_version")?,
                secret_rotated_at: get(row, "w_secret_rotated_at")?,
                created_at: get(row, "w_created_at")?,
            })
        }

        fn delivery_from_row(row: &DbRow) -> Result<Delivery> {
            Ok(Delivery {
                id: get(row, "id")?,
                endpoint_id: get(row, "endpoint_id")?,
                message_id: get(row, "message_id")?,
                event_type: get(row, "event_type")?,
                payload: get(row, "payload")?,
                status: DeliveryStatus::parse(&get::<String>(row, "status")?)
                    .ok_or_else(|| corrupt("delivery status"))?,
                attempts: get(row, "attempts")?,
                next_attempt_at: get(row, "next_attempt_at")?,
                last_status: get(row, "last_status")?,
                last_error: get(row, "last_error")?,
                created_at: get(row, "created_at")?,
                delivered_at: get(row, "delivered_at")?,
            })
        }

        async fn insert_key_row(tx: &mut Tx<'_>, key: &NewKey) -> Result<()> {
            sqlx::query(
                "INSERT INTO api_keys (key_id, digest, format, display, name, owner_user_id, \
                 created_by_user_id, created_at, expires_at, rotated_from, federated_issuer, scope, \
                 allowed_networks, requests_per_minute) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            )
            .bind(key.key_id.as_str())
            .bind(key.digest.as_bytes().as_slice())
            .bind(key.format.as_str())
            .bind(&key.display)
            .bind(&key.name)
            .bind(key.owner.0)
            .bind(key.created_by.map(|u| u.0))
            .bind(key.created_at)
            .bind(key.expires_at)
            .bind(key.rotated_from.as_ref().map(|k| k.as_str().to_owned()))
            .bind(&key.federated_issuer)
            .bind(key.scope.as_str())
            .bind(&key.allowed_networks)
            .bind(key.requests_per_minute.map(i64::from))
            .execute(&mut **tx)
            .await
            .map_err(|e| StoreError::from_sqlx(e, "a key with this ID or digest"))?;
            Ok(())
        }

        async fn insert_org(tx: &mut Tx<'_>, name: &str, now: i64) -> Result<Org> {
            let row = sqlx::query(
                &format!("INSERT INTO orgs (name, created_at) VALUES ($1, $2) {ORG_RETURNING}"),
            )
            .bind(name)
            .bind(now)
            .fetch_one(&mut **tx)
            .await
            .map_err(|e| StoreError::from_sqlx(e, "an organization with this name"))?;
            org_from_row(&row)
        }
    };
}

pub(crate) use sql_store;
