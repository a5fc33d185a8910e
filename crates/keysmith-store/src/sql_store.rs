//! The [`Store`](crate::Store) implementation shared by SQLite and PostgreSQL.
//!
//! The SQL is written once in the dialect both accept (`$N` placeholders in order,
//! `RETURNING`, `lower()` indexes), and the macro instantiates it for each backend's
//! concrete sqlx types, which keeps the queries typed without a tower of generic
//! bounds.

/// Columns of a key as shown to users, joined with its owner.
pub(crate) const KEY_COLUMNS: &str = "k.key_id, k.format, k.display, k.name, k.created_by_user_id, \
     k.created_at, k.last_used_at, u.id AS owner_id, u.kind AS owner_kind, u.username AS owner_username";

pub(crate) const USER_COLUMNS: &str = "id, kind, username, email, active, created_at";

macro_rules! sql_store {
    ($store:ident, $db:ty, $backend:expr) => {
        use crate::model::*;
        use crate::sql_store::{KEY_COLUMNS, USER_COLUMNS};
        use crate::{Backend, Result, Store, StoreError};
        use keysmith_core::role::{OrgRole, PrincipalKind};
        use keysmith_core::{KeyDigest, KeyId};
        use sqlx::Row;

        type DbRow = <$db as sqlx::Database>::Row;

        fn backend_err(err: sqlx::Error) -> StoreError {
            StoreError::Backend(err.to_string())
        }

        fn corrupt(what: &str) -> StoreError {
            StoreError::Corrupt(what.to_owned())
        }

        fn user_from_row(row: &DbRow) -> Result<User> {
            let kind: String = row.try_get("kind").map_err(backend_err)?;
            Ok(User {
                id: UserId(row.try_get("id").map_err(backend_err)?),
                kind: PrincipalKind::parse(&kind).ok_or_else(|| corrupt("principal kind"))?,
                username: row.try_get("username").map_err(backend_err)?,
                email: row.try_get("email").map_err(backend_err)?,
                active: row.try_get("active").map_err(backend_err)?,
                created_at: row.try_get("created_at").map_err(backend_err)?,
            })
        }

        fn owner_from_row(row: &DbRow) -> Result<UserRef> {
            let kind: String = row.try_get("owner_kind").map_err(backend_err)?;
            Ok(UserRef {
                id: UserId(row.try_get("owner_id").map_err(backend_err)?),
                kind: PrincipalKind::parse(&kind).ok_or_else(|| corrupt("principal kind"))?,
                username: row.try_get("owner_username").map_err(backend_err)?,
            })
        }

        fn key_id_from_row(row: &DbRow) -> Result<KeyId> {
            let key_id: String = row.try_get("key_id").map_err(backend_err)?;
            KeyId::parse(&key_id).map_err(|_| corrupt("key id"))
        }

        fn key_from_row(row: &DbRow) -> Result<StoredKey> {
            let format: String = row.try_get("format").map_err(backend_err)?;
            let created_by: Option<i64> = row.try_get("created_by_user_id").map_err(backend_err)?;
            Ok(StoredKey {
                key_id: key_id_from_row(row)?,
                format: KeyFormat::parse(&format).ok_or_else(|| corrupt("key format"))?,
                display: row.try_get("display").map_err(backend_err)?,
                name: row.try_get("name").map_err(backend_err)?,
                owner: owner_from_row(row)?,
                created_by: created_by.map(UserId),
                created_at: row.try_get("created_at").map_err(backend_err)?,
                last_used_at: row.try_get("last_used_at").map_err(backend_err)?,
            })
        }

        fn auth_from_row(row: &DbRow) -> Result<AuthRecord> {
            let digest: Vec<u8> = row.try_get("digest").map_err(backend_err)?;
            Ok(AuthRecord {
                key_id: key_id_from_row(row)?,
                digest: KeyDigest::from_bytes(&digest).ok_or_else(|| corrupt("key digest"))?,
                owner: owner_from_row(row)?,
                owner_active: row.try_get("owner_active").map_err(backend_err)?,
            })
        }

        fn org_from_row(row: &DbRow) -> Result<Org> {
            Ok(Org {
                id: OrgId(row.try_get("org_id").map_err(backend_err)?),
                name: row.try_get("org_name").map_err(backend_err)?,
                created_at: row.try_get("org_created_at").map_err(backend_err)?,
            })
        }

        const AUTH_SELECT: &str = "SELECT k.key_id, k.digest, u.id AS owner_id, u.kind AS owner_kind, \
             u.username AS owner_username, u.active AS owner_active \
             FROM api_keys k JOIN users u ON u.id = k.owner_user_id";

        async fn insert_user<'e, E>(executor: E, user: &NewUser, now: i64) -> Result<User>
        where
            E: sqlx::Executor<'e, Database = $db>,
        {
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
                .fetch_one(executor)
                .await
                .map_err(|e| StoreError::from_sqlx(e, "a user with this username or email"))?;
            user_from_row(&row)
        }

        async fn insert_member<'e, E>(executor: E, org: OrgId, user: UserId, role: OrgRole, now: i64) -> Result<()>
        where
            E: sqlx::Executor<'e, Database = $db>,
        {
            sqlx::query("INSERT INTO org_members (org_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)")
                .bind(org.0)
                .bind(user.0)
                .bind(role.as_str())
                .bind(now)
                .execute(executor)
                .await
                .map_err(|e| StoreError::from_sqlx(e, "this membership"))?;
            Ok(())
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

            async fn bootstrap(&self, org_name: &str, admin: NewUser, now: i64) -> Result<Option<(Org, User)>> {
                let mut tx = self.pool.begin().await.map_err(backend_err)?;
                let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(backend_err)?;
                if users > 0 {
                    return Ok(None);
                }
                let row = sqlx::query(
                    "INSERT INTO orgs (name, created_at) VALUES ($1, $2) \
                     RETURNING id AS org_id, name AS org_name, created_at AS org_created_at",
                )
                .bind(org_name)
                .bind(now)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| StoreError::from_sqlx(e, "an organization with this name"))?;
                let org = org_from_row(&row)?;
                let user = insert_user(&mut *tx, &admin, now).await?;
                insert_member(&mut *tx, org.id, user.id, OrgRole::Admin, now).await?;
                tx.commit().await.map_err(backend_err)?;
                Ok(Some((org, user)))
            }

            async fn create_user(&self, user: NewUser, now: i64) -> Result<User> {
                insert_user(&self.pool, &user, now).await
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
                    Some(row) => {
                        let hash: Option<String> = row.try_get("password_hash").map_err(backend_err)?;
                        Ok(Some((user_from_row(&row)?, hash)))
                    }
                }
            }

            async fn find_user_by_username(&self, username: &str) -> Result<Option<User>> {
                let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE lower(username) = lower($1)");
                let row = sqlx::query(&sql).bind(username).fetch_optional(&self.pool).await.map_err(backend_err)?;
                row.as_ref().map(user_from_row).transpose()
            }

            async fn add_org_member(&self, org: OrgId, user: UserId, role: OrgRole, now: i64) -> Result<()> {
                insert_member(&self.pool, org, user, role, now).await
            }

            async fn memberships(&self, user: UserId) -> Result<Vec<Membership>> {
                let rows = sqlx::query(
                    "SELECT o.id AS org_id, o.name AS org_name, o.created_at AS org_created_at, m.role \
                     FROM org_members m JOIN orgs o ON o.id = m.org_id WHERE m.user_id = $1 ORDER BY o.id",
                )
                .bind(user.0)
                .fetch_all(&self.pool)
                .await
                .map_err(backend_err)?;
                rows.iter()
                    .map(|row| {
                        let role: String = row.try_get("role").map_err(backend_err)?;
                        Ok(Membership {
                            org: org_from_row(row)?,
                            role: OrgRole::parse(&role).ok_or_else(|| corrupt("org role"))?,
                        })
                    })
                    .collect()
            }

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
                        user_id: UserId(row.try_get("user_id").map_err(backend_err)?),
                        created_at: row.try_get("created_at").map_err(backend_err)?,
                        expires_at: row.try_get("expires_at").map_err(backend_err)?,
                    })
                })
                .transpose()
            }

            async fn delete_session(&self, token_digest: &KeyDigest) -> Result<()> {
                sqlx::query("DELETE FROM sessions WHERE token_digest = $1")
                    .bind(token_digest.as_bytes().as_slice())
                    .execute(&self.pool)
                    .await
                    .map_err(backend_err)?;
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

            async fn insert_key(&self, key: NewKey) -> Result<StoredKey> {
                sqlx::query(
                    "INSERT INTO api_keys (key_id, digest, format, display, name, owner_user_id, \
                     created_by_user_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(key.key_id.as_str())
                .bind(key.digest.as_bytes().as_slice())
                .bind(key.format.as_str())
                .bind(&key.display)
                .bind(&key.name)
                .bind(key.owner.0)
                .bind(key.created_by.map(|u| u.0))
                .bind(key.created_at)
                .execute(&self.pool)
                .await
                .map_err(|e| StoreError::from_sqlx(e, "a key with this ID or digest"))?;
                self.get_key(&key.key_id).await?.ok_or_else(|| corrupt("key vanished after insert"))
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
                let sql = format!(
                    "SELECT {KEY_COLUMNS} FROM api_keys k JOIN users u ON u.id = k.owner_user_id WHERE k.key_id = $1"
                );
                let row = sqlx::query(&sql)
                    .bind(key_id.as_str())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(backend_err)?;
                row.as_ref().map(key_from_row).transpose()
            }

            async fn list_keys(&self, query: &KeyListQuery) -> Result<Vec<StoredKey>> {
                let sql = format!(
                    "SELECT {KEY_COLUMNS} FROM api_keys k JOIN users u ON u.id = k.owner_user_id \
                     WHERE k.owner_user_id = $1 AND (k.created_at < $2 OR (k.created_at = $3 AND k.key_id < $4)) \
                     ORDER BY k.created_at DESC, k.key_id DESC LIMIT $5"
                );
                let (created_at, key_id) = match &query.after {
                    Some(c) => (c.created_at, c.key_id.as_str()),
                    None => (i64::MAX, ""),
                };
                let rows = sqlx::query(&sql)
                    .bind(query.owner.0)
                    .bind(created_at)
                    .bind(created_at)
                    .bind(key_id)
                    .bind(i64::from(query.limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(backend_err)?;
                rows.iter().map(key_from_row).collect()
            }

            async fn rename_key(&self, key_id: &KeyId, name: &str) -> Result<Option<StoredKey>> {
                let done = sqlx::query("UPDATE api_keys SET name = $1 WHERE key_id = $2")
                    .bind(name)
                    .bind(key_id.as_str())
                    .execute(&self.pool)
                    .await
                    .map_err(backend_err)?;
                if done.rows_affected() == 0 {
                    return Ok(None);
                }
                self.get_key(key_id).await
            }

            async fn delete_key(&self, key_id: &KeyId) -> Result<bool> {
                let done = sqlx::query("DELETE FROM api_keys WHERE key_id = $1")
                    .bind(key_id.as_str())
                    .execute(&self.pool)
                    .await
                    .map_err(backend_err)?;
                Ok(done.rows_affected() > 0)
            }

            async fn record_key_use(&self, uses: &[(KeyId, i64)]) -> Result<()> {
                if uses.is_empty() {
                    return Ok(());
                }
                let mut tx = self.pool.begin().await.map_err(backend_err)?;
                for (key_id, at) in uses {
                    sqlx::query(
                        "UPDATE api_keys SET last_used_at = $1 \
                         WHERE key_id = $2 AND (last_used_at IS NULL OR last_used_at < $3)",
                    )
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
    };
}

pub(crate) use sql_store;
