//! The `keysmith` command: runs the server and administers its database, and is the
//! client that manages keys, teams and users on a server and finds exposed keys.

use anyhow::{Context, Result, bail};
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use keysmith_server::config::LogFormat;
use keysmith_server::{Config, ConfigOverrides};
use std::net::SocketAddr;
use std::path::PathBuf;
use tracing_subscriber::EnvFilter;

mod credentials;
mod doctor;
mod import;
mod operator;
mod organization;
mod remote;
mod scan;

/// What Keysmith is, in one line: the first line of the top-level help.
const ABOUT: &str = "Keysmith: self-hosted API keys in W&B's key system; the unmodified wandb SDK logs in with them.";

#[derive(Parser)]
#[command(name = "keysmith", version, about = ABOUT, long_about = None, after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The top-level help lists the commands by what they are for, not alphabetically in
/// one block. Every command appears in exactly one group (a test checks).
const COMMAND_GROUPS: [(&str, &[(&str, &str)]); 5] = [
    (
        "Server (run where its database is):",
        &[
            ("serve", "Run the server"),
            (
                "admin",
                "Administer the database directly: import legacy keys, create organizations",
            ),
        ],
    ),
    (
        "Your keys:",
        &[
            ("login", "Store a key for this machine (never from an argument)"),
            ("logout", "Forget the stored key on this machine"),
            (
                "status",
                "Show the server, where the key comes from, and whether it works",
            ),
            ("whoami", "Show who the configured key belongs to"),
            ("keys", "List, create, show, rotate, rename and delete API keys"),
        ],
    ),
    (
        "Organization:",
        &[
            ("teams", "Teams and their members"),
            ("users", "The organization's users: invite, change role, deactivate"),
            ("service-accounts", "Accounts without a password for CI and automation"),
            (
                "jwt-issuers",
                "JWT issuers trusted for identity federation (WANDB_IDENTITY_TOKEN_FILE)",
            ),
            ("audit", "The organization's audit log"),
        ],
    ),
    (
        "Safety:",
        &[
            ("scan", "Find API keys in files, staged changes or git history"),
            (
                "doctor",
                "Check this machine for exposed keys, an old SDK, a server that does not answer",
            ),
        ],
    ),
    (
        "Shell:",
        &[
            ("completions", "Print a shell completion script"),
            ("help", "Print this help, or a command's: keysmith help keys create"),
        ],
    ),
];

/// The command line definition with the grouped top-level help.
fn cli_command() -> clap::Command {
    let mut groups = String::new();
    for (heading, commands) in COMMAND_GROUPS {
        groups.push_str(heading);
        groups.push('\n');
        for (name, summary) in commands {
            groups.push_str(&format!("  {name:<18}{summary}\n"));
        }
        groups.push('\n');
    }
    Cli::command().help_template(format!(
        "{{about-with-newline}}\n{{usage-heading}} {{usage}}\n\n{groups}Options:\n{{options}}{{after-help}}"
    ))
}

const EXAMPLES: &str = "\
Examples:
  keysmith serve                                   SQLite in ./data, http://127.0.0.1:8080
  read -rs KEYSMITH_API_KEY && export KEYSMITH_API_KEY KEYSMITH_HOST=https://keys.example.com
  keysmith whoami
  keysmith keys create --name ci > ci-key          the key alone on stdout
  keysmith keys list --output json
  keysmith serve --listen 0.0.0.0:443 --database-url postgres://keysmith@db/keysmith
  keysmith admin import-legacy-keys --user alice --file old-keys.txt
  keysmith scan --install-hook                     refuse commits that add a key
  keysmith doctor                                  keys in plain files, an old SDK, the server

Run `keysmith <COMMAND> --help` for a command's options and examples.

Configuration is layered: defaults, then --config FILE (TOML), then KEYSMITH_* environment
variables (e.g. KEYSMITH_LISTEN, KEYSMITH_ADMIN_PASSWORD_FILE), then flags.

Client commands read the server from --host, KEYSMITH_HOST or WANDB_BASE_URL, and the key
from KEYSMITH_API_KEY or WANDB_API_KEY: never from an argument, which `ps` would show.

Exit status: 0 success; 1 failure; 2 usage error (including a key given as an argument);
3 no API key configured, a key that cannot be sent (a stray character), or the server refused it.";

#[derive(Subcommand)]
enum Command {
    /// Run the server. On first start it creates an organization and the user `admin`.
    #[command(after_help = "\
The first admin's password comes from KEYSMITH_ADMIN_PASSWORD or KEYSMITH_ADMIN_PASSWORD_FILE;
without either, a password is generated and printed once to the terminal.

Examples:
  keysmith serve
  KEYSMITH_ADMIN_PASSWORD_FILE=/run/secrets/admin keysmith serve --data-dir /var/lib/keysmith")]
    Serve(ServerArgs),
    /// Administer the database directly (run where the server's database is reachable).
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Store a key for this machine: read from stdin, the environment or a hidden
    /// prompt (never an argument), checked against the server, kept in the OS credential
    /// store (or, if you choose, a file only you can read).
    #[command(after_help = "\
Examples:
  keysmith login --host https://keys.example.com              asks for the key, input hidden
  vault kv get -field=key secret/keysmith | keysmith login --with-key-stdin
  keysmith login --with-key-stdin --store file < /dev/stdin   headless machine without a keyring

Where no credential store exists (a server without a desktop session), the key is kept only
if you choose --store file: ~/.config/keysmith/credentials.json, mode 0600.")]
    Login {
        #[command(flatten)]
        remote: RemoteArgs,
        /// Read the key from standard input
        #[arg(long)]
        with_key_stdin: bool,
        /// Where to keep the key
        #[arg(long, value_enum, default_value = "keyring")]
        store: credentials::Storage,
    },
    /// Forget the stored key on this machine (it keeps working on the server).
    Logout,
    /// Show the server, where the key comes from, and whether the server takes it.
    Status(RemoteArgs),
    /// Show who the configured key belongs to.
    Whoami(RemoteArgs),
    /// List, create, rename and delete API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Service accounts: principals without a password that use only their keys.
    #[command(subcommand, name = "service-accounts")]
    ServiceAccounts(ServiceAccountsCommand),
    /// JWT issuers the organization trusts: their JWTs are exchanged for access tokens
    /// (identity federation, docs/FEDERATION.md).
    #[command(subcommand, name = "jwt-issuers")]
    JwtIssuers(JwtIssuersCommand),
    /// Teams and their members.
    #[command(subcommand)]
    Teams(TeamsCommand),
    /// The users of an organization (org admins).
    #[command(subcommand)]
    Users(UsersCommand),
    /// The organization's audit log, newest first (org admins).
    #[command(after_help = "\
Examples:
  keysmith audit
  keysmith audit --action api_key.deleted --since 2026-11-01T00:00:00Z
  keysmith audit --actor alice --output json")]
    Audit {
        #[command(flatten)]
        org: OrgArgs,
        #[arg(long)]
        action: Option<String>,
        #[arg(long)]
        actor: Option<String>,
        #[arg(long)]
        target: Option<String>,
        /// RFC 3339 time
        #[arg(long)]
        since: Option<String>,
        /// RFC 3339 time
        #[arg(long)]
        until: Option<String>,
        #[arg(long)]
        limit: Option<u32>,
        /// From a previous page's hint
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Find API keys in files, staged changes or git history (exit status 1 if any).
    #[command(after_help = "\
New-format keys are confirmed by their checksum, so look-alikes are not reported; 40-character
legacy keys only on a line that mentions W&B or Keysmith. Git commit hashes are not keys: 40 hex
characters after `@` (git+https://…@<hash>), /commit/ or /tree/ in a URL, in rev/ref/sha/commit
fields, and in lock files (Cargo.lock, poetry.lock, package-lock.json, go.sum, …) are skipped.
Findings show the key ID, never the key.

Examples:
  keysmith scan                      this directory, recursively
  keysmith scan ~/.netrc notebooks/
  keysmith scan --staged             what `git commit` would add
  keysmith scan --git-history        every commit of every branch
  keysmith scan --install-hook       refuse commits that add a key (pre-commit hook)")]
    Scan {
        /// Files or directories [default: .]
        paths: Vec<PathBuf>,
        /// Scan the changes staged for commit
        #[arg(long, conflicts_with_all = ["git_history", "paths"])]
        staged: bool,
        /// Scan every commit reachable from any branch or tag
        #[arg(long, conflicts_with = "paths")]
        git_history: bool,
        /// Install a git pre-commit hook that runs `keysmith scan --staged`
        #[arg(long)]
        install_hook: bool,
        /// With --install-hook: replace an existing pre-commit hook
        #[arg(long, requires = "install_hook")]
        force: bool,
        /// `text` for people, `json` for programs
        #[arg(long, value_enum, default_value = "text")]
        output: remote::Output,
    },
    /// Check this machine for keys in plain-text files, files others can read, an SDK
    /// that rejects the keys in use, and a server that does not answer.
    #[command(after_help = "\
Checks ~/.netrc, wandb settings files, .env files of the current repository, shell start-up
files, the installed wandb SDK's version and the configured server. Exit status 1 if a check
fails. Findings show key IDs, never keys.

Example:
  keysmith doctor")]
    Doctor(RemoteArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(
        after_help = "Example:\n  keysmith completions bash > ~/.local/share/bash-completion/completions/keysmith"
    )]
    Completions { shell: clap_complete::Shell },
}

#[derive(Args)]
struct RemoteArgs {
    /// Server URL [default: $KEYSMITH_HOST, then $WANDB_BASE_URL]
    #[arg(long, value_name = "URL", global = true)]
    host: Option<String>,
    /// `text` for people, `json` for programs
    #[arg(long, value_enum, default_value = "text", global = true)]
    output: remote::Output,
}

#[derive(Args)]
struct OrgArgs {
    #[command(flatten)]
    remote: RemoteArgs,
    /// The organization [default: the only one you belong to]
    #[arg(long, global = true)]
    org: Option<String>,
}

#[derive(Subcommand)]
enum JwtIssuersCommand {
    /// The issuers the organization trusts (org admins).
    List {
        #[command(flatten)]
        org: OrgArgs,
    },
    /// Trust an issuer: its discovery document and keys are read at once.
    #[command(
        after_help = "Examples:\n  keysmith jwt-issuers add https://token.actions.githubusercontent.com\n  keysmith jwt-issuers add https://oidc.eks.example.com --audience keysmith\n  keysmith service-accounts create ci-train --team vision --external-subject repo:acme/train:ref:refs/heads/main"
    )]
    Add {
        #[command(flatten)]
        org: OrgArgs,
        /// The issuer URL, exactly as its JWTs name it in `iss`
        issuer: String,
        /// The `aud` its JWTs carry [default: the organization's name]
        #[arg(long)]
        audience: Option<String>,
    },
    /// Stop trusting an issuer (by the ID `list` shows).
    Remove {
        #[command(flatten)]
        org: OrgArgs,
        id: i64,
    },
}

#[derive(Subcommand)]
enum ServiceAccountsCommand {
    /// The service accounts you manage.
    List {
        #[command(flatten)]
        org: OrgArgs,
        #[arg(long)]
        team: Option<String>,
    },
    /// Create a service account for a team (team admins) or the organization (org admins).
    #[command(
        after_help = "Examples:\n  keysmith service-accounts create vision-ci --team vision --description \"nightly training\"\n  keysmith keys create --name github-actions --owner vision-ci"
    )]
    Create {
        #[command(flatten)]
        org: OrgArgs,
        name: String,
        /// Scope it to this team; without it, the whole organization
        #[arg(long)]
        team: Option<String>,
        #[arg(long, default_value = "")]
        description: String,
        /// Make it an external service account: a JWT from one of the organization's
        /// issuers with this `sub` signs in as it (identity federation)
        #[arg(long)]
        external_subject: Option<String>,
        /// An address or CIDR block its keys may be used from (repeat for several);
        /// used from anywhere else, every key of the account is refused
        #[arg(long = "allowed-network", value_name = "CIDR")]
        allowed_networks: Vec<String>,
    },
    /// Delete a service account and all its keys.
    Delete {
        #[command(flatten)]
        org: OrgArgs,
        name: String,
    },
}

#[derive(Subcommand)]
enum TeamsCommand {
    /// The organization's teams.
    List(OrgArgs),
    /// Create a team (org admins).
    Create {
        #[command(flatten)]
        org: OrgArgs,
        name: String,
    },
    /// A team's members and service accounts.
    Show {
        #[command(flatten)]
        org: OrgArgs,
        name: String,
    },
    /// Add a user to a team, or change their team role (org admins).
    AddMember {
        #[command(flatten)]
        org: OrgArgs,
        team: String,
        user: String,
        /// Make them an admin of the team
        #[arg(long)]
        admin: bool,
    },
    /// Remove a user from a team (org admins).
    RemoveMember {
        #[command(flatten)]
        org: OrgArgs,
        team: String,
        user: String,
    },
}

#[derive(Subcommand)]
enum UsersCommand {
    /// The organization's users.
    List(OrgArgs),
    /// Invite a user: prints a one-time token (alone on stdout) for them to set a password.
    Invite {
        #[command(flatten)]
        org: OrgArgs,
        username: String,
        #[arg(long)]
        email: Option<String>,
        /// Make them an org admin
        #[arg(long)]
        admin: bool,
    },
    /// A fresh invitation for an existing user (a lost password).
    Reinvite {
        #[command(flatten)]
        org: OrgArgs,
        username: String,
    },
    /// Change a user's org role.
    SetRole {
        #[command(flatten)]
        org: OrgArgs,
        username: String,
        /// `admin` or `member`
        role: String,
    },
    /// Deactivate a user: their keys stop working at once.
    Deactivate {
        #[command(flatten)]
        org: OrgArgs,
        username: String,
    },
    /// Reactivate a user: their keys work again.
    Reactivate {
        #[command(flatten)]
        org: OrgArgs,
        username: String,
    },
    /// Delete a user and every key they own.
    Delete {
        #[command(flatten)]
        org: OrgArgs,
        username: String,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// List the keys you may see: yours; as a team admin, your teams' service accounts';
    /// as an org admin, the whole organization's.
    #[command(after_help = "\
Examples:
  keysmith keys list
  keysmith keys list --owner-kind service_account --team vision --sort last_used
  keysmith keys list --all --output json | jq '.[] | select(.last_used_at == null)'")]
    List {
        #[command(flatten)]
        remote: RemoteArgs,
        /// Only keys of this user or service account
        #[arg(long)]
        owner: Option<String>,
        /// `user` or `service_account`
        #[arg(long)]
        owner_kind: Option<String>,
        /// Only this organization's keys
        #[arg(long)]
        org: Option<String>,
        /// Only this team's keys (members and service accounts)
        #[arg(long)]
        team: Option<String>,
        /// Names containing this text
        #[arg(long)]
        name_contains: Option<String>,
        /// `created` (newest first) or `last_used`
        #[arg(long)]
        sort: Option<String>,
        /// Keys per page (1 to 200)
        #[arg(long)]
        limit: Option<u32>,
        /// Every page, not just the first
        #[arg(long)]
        all: bool,
        /// Only keys that expire within this many days
        #[arg(long, value_name = "DAYS")]
        expiring_within_days: Option<u32>,
    },
    /// The organization's key report (org admins): keys never used, idle, expiring
    /// soon, and write or admin keys that made only reads, to narrow or delete.
    #[command(after_help = "\
Examples:
  keysmith keys report
  keysmith keys report --org research --output json | jq '.over_privileged.items[].key_id'

Over-privileged: a write or admin key in use whose requests for 30 days were all reads
(GET or HEAD). GraphQL requests, and forward auth without X-Forwarded-Method, count as
writes, so such a key is never reported by mistake.")]
    Report {
        #[command(flatten)]
        org: OrgArgs,
    },
    /// Create a key and print it, alone, to standard output (shown only this once).
    #[command(after_help = "\
Examples:
  keysmith keys create --name laptop
  keysmith keys create --name ci > ci-key && chmod 600 ci-key
  keysmith keys create --name dashboard --scope read
  keysmith keys create --name cluster --allowed-network 10.20.0.0/16 --allowed-network 2001:db8::/32
  keysmith keys create --name nightly --owner vision-ci | vault kv put secret/ci key=-")]
    Create {
        #[command(flatten)]
        remote: RemoteArgs,
        /// A descriptive name: where the key is used
        #[arg(long)]
        name: String,
        /// A service account you administer, to own the key [default: you]
        #[arg(long)]
        owner: Option<String>,
        /// `v1` (default) or `legacy` (40 characters, for wandb SDKs older than 0.22.3)
        #[arg(long)]
        format: Option<String>,
        /// Stop working after this many days [default: never, or the organization's
        /// maximum lifetime]
        #[arg(long, value_name = "DAYS")]
        expires_in_days: Option<u32>,
        /// What the key may do at most: `read` (read only), `write` (also manage its
        /// owner's own keys) or `admin` (everything its owner may do) [default: the
        /// scope of the key you are signed in with]
        #[arg(long, value_parser = ["read", "write", "admin"])]
        scope: Option<String>,
        /// An address or CIDR block the key may be used from (repeat for several);
        /// used from anywhere else it is refused [default: anywhere, or the
        /// networks of the key you are signed in with]
        #[arg(long = "allowed-network", value_name = "CIDR")]
        allowed_networks: Vec<String>,
        /// At most this many requests a minute with the key (per server), 1 to 60000
        /// [default: no limit, or the limit of the key you are signed in with]
        #[arg(long, value_name = "N")]
        requests_per_minute: Option<u32>,
    },
    /// Show one key: expiry, rotation, last use and the recent places it was used
    /// from (address and user agent), so you can see when an old key has gone quiet.
    #[command(after_help = "Example:\n  keysmith keys show wandb_v1_…")]
    Show {
        #[command(flatten)]
        remote: RemoteArgs,
        /// The key ID (from `keys list`)
        key_id: String,
    },
    /// Revoke a key that leaked, yours or anyone's: the key is read from standard
    /// input (never the command line) and stops working at once. Needs no login.
    #[command(after_help = "\
Examples:
  keysmith keys revoke-exposed --host https://keys.example.com     paste the key, then Ctrl-D
  pbpaste | keysmith keys revoke-exposed

The server answers the same whether or not the key existed.")]
    RevokeExposed {
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Rename a key.
    Rename {
        #[command(flatten)]
        remote: RemoteArgs,
        /// The key ID (from `keys list`)
        key_id: String,
        /// The new name
        #[arg(long)]
        name: String,
    },
    /// Rotate a key: a new key with the same name and owner, printed alone on stdout;
    /// the old one keeps working for the grace period, then stops by itself.
    #[command(after_help = "\
Examples:
  keysmith keys rotate wandb_v1_… --grace 24h | vault kv put secret/ci key=-
  keysmith keys show wandb_v1_…        has the old key gone quiet? (last used, sources)
  keysmith keys delete wandb_v1_…      finish the rotation now")]
    Rotate {
        #[command(flatten)]
        remote: RemoteArgs,
        /// The key to replace
        key_id: String,
        /// How long the old key keeps working
        #[arg(long, default_value = "24h", value_parser = ["now", "1h", "24h", "7d", "until_deleted"])]
        grace: String,
    },
    /// Delete keys: scripts that use them stop working immediately.
    Delete {
        #[command(flatten)]
        remote: RemoteArgs,
        /// Key IDs (from `keys list`)
        #[arg(required = true)]
        key_ids: Vec<String>,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Import existing legacy keys (40 characters, or `<prefix>-<40>`), so that old
    /// clients keep working. Keys are read from a file or standard input, one a line,
    /// never from the command line, and are never printed.
    #[command(after_help = "\
Each line holds a plaintext legacy key, or with --digests the SHA-256 of one as 64 hex
characters. Blank lines and lines starting with # are skipped. Keys already present are
reported and left alone.

Examples:
  keysmith admin import-legacy-keys --user alice --file old-keys.txt
  vault kv get -field=keys secret/wandb | keysmith admin import-legacy-keys --user ci-bot
  keysmith admin import-legacy-keys --user alice --digests --file digests.txt")]
    ImportLegacyKeys(ImportArgs),
    /// Create another organization on this server, with an existing user as its admin.
    #[command(after_help = "\
Organizations are separate tenants: nothing of one is visible from another. The admin
then creates or invites the organization's users through the API.

Example:
  keysmith admin create-org research --admin alice")]
    CreateOrg(CreateOrgArgs),
    /// Set a user's password when they (or the only admin) cannot sign in: reads the new
    /// password from the terminal, hidden and asked twice, or from standard input;
    /// never from the command line. Ends the user's sessions and clears their sign-in
    /// throttle. Works while the server runs; audited as `user.password_reset`.
    #[command(after_help = "\
Run it where the server's database is reachable, as the user the server runs as, with the
same --data-dir/--database-url/--config. The password needs at least 12 characters.

Examples:
  keysmith admin reset-password admin
  vault kv get -field=password secret/keysmith-admin | keysmith admin reset-password admin --password-stdin")]
    ResetPassword(ResetPasswordArgs),
    /// Let a user whose sign-in is held back by failed attempts sign in again at once,
    /// on every server. Audited as `user.sign_in_unlocked`.
    #[command(after_help = "\
Failed sign-ins slow down the address they come from, not the account, so the owner at
another address is not held back; this clears what is left, e.g. when the owner shares an
address with whoever was guessing. Works while the server runs.

Example:
  keysmith admin unlock admin")]
    Unlock(UnlockArgs),
    /// Copy the whole database, consistent at one moment, into a new file, while the
    /// server runs (SQLite). Holds key digests, never keys; keep it like the database.
    #[command(after_help = "\
The copy is SQLite's VACUUM INTO: one read of every page, so it is the database of one
moment however much the server writes meanwhile. It never overwrites a file, and is
checked (SQLite's integrity check) before the command says it is done.

The server's secret (<data dir>/server-secret), from which webhook signing secrets are
derived, is not in the backup: keep a copy of it apart, like any secret.

PostgreSQL: use its own tools, e.g.
  pg_dump --format=custom --file=keysmith.dump \"$DATABASE_URL\"
  pg_restore --no-owner --dbname=\"$NEW_DATABASE_URL\" keysmith.dump

Example:
  keysmith admin backup /var/backups/keysmith-$(date +%F).db --data-dir /var/lib/keysmith")]
    Backup(BackupArgs),
    /// Restore a backup made by `admin backup` into a data directory without a
    /// database, then start `keysmith serve` on it.
    #[command(after_help = "\
The backup is checked first, copied beside its place, synced and renamed into place, so
an interrupted restore leaves no half database. A backup of an older version is brought
up to date when it is opened. Put the server's secret back too (server-secret), or
webhook endpoints' signing secrets change.

Example:
  keysmith admin restore /var/backups/keysmith-2026-12-07.db --data-dir /var/lib/keysmith")]
    Restore(RestoreArgs),
    /// Copy everything into a new, empty database: SQLite to PostgreSQL as an install
    /// grows, or back for a small install or a test copy. Stop the server first.
    #[command(after_help = "\
Every organization, user, team, service account, key digest, audit entry, webhook, notice
and setting is copied in one transaction on the target, which must be empty (its schema
is made if missing). Each table's rows are then counted and digested on both sides, and
the copy is committed only if they agree. Every key that worked before works against the
new database. Writes made to the source during the copy are not in it: stop the server
first, then point it at the new database (--database-url or KEYSMITH_DATABASE_URL).

Examples:
  keysmith admin migrate --to postgres://keysmith@db.internal/keysmith --data-dir /var/lib/keysmith
  keysmith admin migrate --database-url \"$DATABASE_URL\" --to sqlite:///tmp/copy/keysmith.db")]
    Migrate(MigrateArgs),
    /// The audit log for a SIEM (`audit export`), and its hash chain checked (`audit
    /// verify`).
    #[command(subcommand)]
    Audit(AuditCommand),
    /// The same as `admin audit export` (its earlier name).
    #[command(hide = true)]
    AuditExport(AuditExportArgs),
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Write the audit log as JSON lines, oldest first, for a SIEM: every entry after
    /// --after, then "resume with --after N" on standard error.
    #[command(after_help = "\
Each line is one entry with its stable id, organization, time, actor, action, target,
source address, detail and hash in the audit chain (`chain`), as
GET /api/v1/orgs/{org}/audit/export gives it. Resuming with --after never repeats or skips
an entry: an entry whose transaction has not yet committed holds the export back rather
than being passed.

Examples:
  keysmith admin audit export --data-dir /var/lib/keysmith > audit.jsonl
  keysmith admin audit export --since 2026-12-01T00:00:00Z > december.jsonl
  keysmith admin audit export --after 48213 --org research >> audit.jsonl")]
    Export(AuditExportArgs),
    /// Check the audit log's hash chain from its first entry: exit status 0 and the
    /// chain's head when every entry is as it was sealed; 1, naming the first entry that
    /// does not check, when an entry was changed, removed or added afterwards.
    #[command(after_help = "\
Every entry is sealed within a second or so of being written: its hash covers the hash
of the entry before it and every field of its own, so that changing, removing or
inserting an entry breaks every hash after it. Entries not sealed yet are counted, not
checked. Works while the server runs.

Someone who can write the database could recompute the whole chain; to catch that, keep
the head this command prints (or the `chain` of the newest exported line) somewhere they
cannot write, and compare it later: the same entry must still have the same hash.

Example:
  keysmith admin audit verify --data-dir /var/lib/keysmith")]
    Verify(AuditVerifyArgs),
}

#[derive(Args)]
struct AuditVerifyArgs {
    #[command(flatten)]
    database: DatabaseArgs,
}

#[derive(Args)]
struct AuditExportArgs {
    /// Only entries after this ID (the one the last export said to resume with)
    #[arg(long, default_value_t = 0)]
    after: i64,
    /// Start at the first entry written at or after this time (RFC 3339, e.g.
    /// 2026-12-01T00:00:00Z) instead of after an ID
    #[arg(long, value_name = "TIME", conflicts_with = "after", value_parser = parse_time)]
    since: Option<i64>,
    /// Only this organization's entries [default: every organization's]
    #[arg(long)]
    org: Option<String>,
    #[command(flatten)]
    database: DatabaseArgs,
}

/// An RFC 3339 time as Unix milliseconds.
fn parse_time(text: &str) -> Result<i64, String> {
    keysmith_server::parse_rfc3339(text).ok_or_else(|| "not an RFC 3339 time such as 2026-12-01T00:00:00Z".to_owned())
}

#[derive(Args)]
struct MigrateArgs {
    /// The new database: postgres://… or sqlite://<path> (better from KEYSMITH_MIGRATE_TO,
    /// since a URL may hold a password)
    #[arg(long, value_name = "URL", env = "KEYSMITH_MIGRATE_TO", hide_env_values = true)]
    to: String,
    #[command(flatten)]
    database: DatabaseArgs,
}

#[derive(Args)]
struct BackupArgs {
    /// The file to write (it must not exist)
    file: PathBuf,
    #[command(flatten)]
    database: DatabaseArgs,
}

#[derive(Args)]
struct RestoreArgs {
    /// The backup to restore
    file: PathBuf,
    #[command(flatten)]
    database: DatabaseArgs,
}

#[derive(Args)]
struct ResetPasswordArgs {
    /// The user whose password to set
    username: String,
    /// Read the password from standard input (one line) instead of the terminal
    #[arg(long)]
    password_stdin: bool,
    #[command(flatten)]
    database: DatabaseArgs,
}

#[derive(Args)]
struct UnlockArgs {
    /// The user to let sign in again
    username: String,
    #[command(flatten)]
    database: DatabaseArgs,
}

#[derive(Args)]
struct CreateOrgArgs {
    /// Name of the new organization (letters, digits, `.`, `_`, `-`)
    name: String,
    /// An existing user who becomes the organization's first admin
    #[arg(long, value_name = "USERNAME")]
    admin: String,
    #[command(flatten)]
    database: DatabaseArgs,
}

#[derive(Args)]
struct ServerArgs {
    /// Address to listen on: IP:port or host:port (`localhost:8080`) [default: 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR", value_parser = keysmith_server::config::parse_listen)]
    listen: Option<SocketAddr>,
    #[command(flatten)]
    database: DatabaseArgs,
}

#[derive(Args)]
struct DatabaseArgs {
    /// Directory of the embedded SQLite database [default: ./data]
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// postgres://… or sqlite://… instead of the embedded default
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// TOML configuration file
    #[arg(long, value_name = "FILE", env = "KEYSMITH_CONFIG")]
    config: Option<PathBuf>,
}

#[derive(Args)]
struct ImportArgs {
    /// The user who will own the imported keys
    #[arg(long, value_name = "USERNAME")]
    user: String,
    /// Read keys from this file instead of standard input
    #[arg(long, value_name = "PATH")]
    file: Option<PathBuf>,
    /// Lines are SHA-256 digests (64 hex characters) of keys, not keys
    #[arg(long)]
    digests: bool,
    /// Name given to the imported keys
    #[arg(long, default_value = "imported legacy key")]
    name: String,
    #[command(flatten)]
    database: DatabaseArgs,
}

fn load_config(listen: Option<SocketAddr>, db: &DatabaseArgs) -> Result<Config> {
    let overrides = ConfigOverrides {
        listen,
        data_dir: db.data_dir.clone(),
        database_url: db.database_url.clone(),
    };
    Ok(Config::load(db.config.as_deref(), &overrides)?)
}

/// The store of an installation that has run `keysmith serve` at least once.
async fn open_existing_store(db: &DatabaseArgs) -> Result<std::sync::Arc<dyn keysmith_store::Store>> {
    let config = load_config(None, db)?;
    init_logging(&config);
    if config.database_url.is_none() && !config.data_dir.join("keysmith.db").exists() {
        bail!(
            "no database at {}; start `keysmith serve` once first, or pass --data-dir/--database-url",
            config.data_dir.join("keysmith.db").display()
        );
    }
    Ok(keysmith_store::open(&config.database_url()).await?)
}

async fn create_org(store: &dyn keysmith_store::Store, name: &str, admin: &str) -> Result<()> {
    let name = keysmith_core::EntityName::parse(name).map_err(|e| anyhow::anyhow!("organization name: {e}"))?;
    let user = store
        .find_user_by_username(admin)
        .await?
        .with_context(|| format!("no user named `{admin}`"))?;
    if user.kind != keysmith_core::role::PrincipalKind::User {
        bail!("`{admin}` is a service account; an organization's admin must be a user");
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let org = match store.create_org(name.as_str(), now).await {
        Ok(org) => org,
        Err(keysmith_store::StoreError::Conflict(_)) => bail!("an organization named `{name}` already exists"),
        Err(e) => return Err(e.into()),
    };
    let audit = [keysmith_store::NewAuditEntry {
        org: org.id,
        at: now,
        actor: None,
        action: "org.created".into(),
        target_kind: "org".into(),
        target: org.name.clone(),
        source_address: None,
        detail: Some(serde_json::json!({ "admin": user.username }).to_string()),
    }];
    store
        .add_org_member(org.id, user.id, keysmith_core::role::OrgRole::Admin, now, &audit)
        .await?;
    eprintln!("created organization `{}` with admin `{}`", org.name, user.username);
    Ok(())
}

fn init_logging(config: &Config) {
    let filter = EnvFilter::try_new(&config.log_level).unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only for a person at a terminal: a log file or journal gets plain text.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
}

/// Completes on SIGINT or SIGTERM. The handlers are installed when this is called,
/// not when the future is first polled, so a stop that arrives while the server is
/// still starting is not lost (the default action would kill the process before it
/// flushes).
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt()).ok();
        let mut terminate = signal(SignalKind::terminate()).ok();
        async move {
            let wait = |s: &mut Option<tokio::signal::unix::Signal>| {
                let s = s.take();
                async move {
                    match s {
                        Some(mut s) => {
                            s.recv().await;
                        }
                        None => std::future::pending::<()>().await,
                    }
                }
            };
            tokio::select! {
                () = wait(&mut interrupt) => {},
                () = wait(&mut terminate) => {},
            }
            tracing::info!("shutting down");
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
    }
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let outcome = remote::refuse_keys_in_arguments(&args).and_then(|()| {
        let cli = Cli::from_arg_matches(&cli_command().get_matches_from(&args)).unwrap_or_else(|e| e.exit());
        tokio::runtime::Runtime::new()
            .context("cannot start the async runtime")?
            .block_on(run(cli))
    });
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            let code = remote::exit_code(&err);
            eprintln!("error: {err:#}");
            std::process::ExitCode::from(u8::try_from(code).unwrap_or(1))
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Serve(args) => {
            let config = load_config(args.listen, &args.database)?;
            init_logging(&config);
            keysmith_server::run(config, shutdown_signal())
                .await
                .context("keysmith serve failed")?;
        }
        Command::Admin(AdminCommand::ImportLegacyKeys(args)) => {
            let store = open_existing_store(&args.database).await?;
            import::run(
                store.as_ref(),
                &args.user,
                args.file.as_deref(),
                args.digests,
                &args.name,
            )
            .await?;
        }
        Command::Admin(AdminCommand::ResetPassword(args)) => {
            let password = operator::read_new_password(args.password_stdin)?;
            let store = open_existing_store(&args.database).await?;
            operator::reset_password(store.as_ref(), &args.username, &password).await?;
        }
        Command::Admin(AdminCommand::Backup(args)) => {
            let store = open_existing_store(&args.database).await?;
            operator::backup(store.as_ref(), &args.file).await?;
        }
        Command::Admin(AdminCommand::Restore(args)) => {
            let config = load_config(None, &args.database)?;
            init_logging(&config);
            if config.database_url.is_some() {
                bail!("restore writes an embedded SQLite database; for PostgreSQL use pg_restore (see --help)");
            }
            operator::restore(&args.file, &config.data_dir).await?;
        }
        Command::Admin(AdminCommand::Migrate(args)) => {
            let config = load_config(None, &args.database)?;
            open_existing_store(&args.database).await?;
            operator::migrate(&config.database_url(), &args.to).await?;
        }
        Command::Admin(AdminCommand::AuditExport(args) | AdminCommand::Audit(AuditCommand::Export(args))) => {
            let store = open_existing_store(&args.database).await?;
            let start = match args.since {
                Some(at) => keysmith_server::audit_log::Start::Since(at),
                None => keysmith_server::audit_log::Start::After(args.after),
            };
            operator::audit_export(store, args.org.as_deref(), start).await?;
        }
        Command::Admin(AdminCommand::Audit(AuditCommand::Verify(args))) => {
            let store = open_existing_store(&args.database).await?;
            if !operator::audit_verify(store.as_ref()).await? {
                std::process::exit(1);
            }
        }
        Command::Admin(AdminCommand::Unlock(args)) => {
            let store = open_existing_store(&args.database).await?;
            operator::unlock(store.as_ref(), &args.username).await?;
        }
        Command::Admin(AdminCommand::CreateOrg(args)) => {
            let store = open_existing_store(&args.database).await?;
            create_org(store.as_ref(), &args.name, &args.admin).await?;
        }
        Command::Scan {
            paths,
            staged,
            git_history,
            install_hook,
            force,
            output,
        } => {
            scan::run(scan::ScanArgs {
                paths,
                staged,
                git_history,
                install_hook,
                force,
                output,
            })?;
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "keysmith", &mut std::io::stdout());
        }
        Command::Doctor(remote) => doctor::run(remote.host.as_deref(), remote.output).await?,
        Command::Login {
            remote,
            with_key_stdin,
            store,
        } => {
            remote::login(remote.host.as_deref(), with_key_stdin, store).await?;
        }
        Command::Logout => remote::logout()?,
        Command::Status(remote) => remote::status(remote.host.as_deref(), remote.output).await?,
        Command::ServiceAccounts(command) => {
            use organization::ServiceAccountAction as A;
            let (org, action) = match command {
                ServiceAccountsCommand::List { org, team } => (org, A::List { team }),
                ServiceAccountsCommand::Create {
                    org,
                    name,
                    team,
                    description,
                    external_subject,
                    allowed_networks,
                } => (
                    org,
                    A::Create {
                        name,
                        team,
                        description,
                        external_subject,
                        allowed_networks,
                    },
                ),
                ServiceAccountsCommand::Delete { org, name } => (org, A::Delete { name }),
            };
            organization::service_accounts(
                org.remote.host.as_deref(),
                org.org.as_deref(),
                action,
                org.remote.output,
            )
            .await?;
        }
        Command::JwtIssuers(command) => {
            use organization::JwtIssuerAction as A;
            let (org, action) = match command {
                JwtIssuersCommand::List { org } => (org, A::List),
                JwtIssuersCommand::Add { org, issuer, audience } => (org, A::Add { issuer, audience }),
                JwtIssuersCommand::Remove { org, id } => (org, A::Remove { id }),
            };
            organization::jwt_issuers(
                org.remote.host.as_deref(),
                org.org.as_deref(),
                action,
                org.remote.output,
            )
            .await?;
        }
        Command::Teams(command) => {
            use organization::TeamAction as A;
            let (org, action) = match command {
                TeamsCommand::List(org) => (org, A::List),
                TeamsCommand::Create { org, name } => (org, A::Create { name }),
                TeamsCommand::Show { org, name } => (org, A::Show { name }),
                TeamsCommand::AddMember { org, team, user, admin } => (org, A::AddMember { team, user, admin }),
                TeamsCommand::RemoveMember { org, team, user } => (org, A::RemoveMember { team, user }),
            };
            organization::teams(
                org.remote.host.as_deref(),
                org.org.as_deref(),
                action,
                org.remote.output,
            )
            .await?;
        }
        Command::Users(command) => {
            use organization::UserAction as A;
            let (org, action) = match command {
                UsersCommand::List(org) => (org, A::List),
                UsersCommand::Invite {
                    org,
                    username,
                    email,
                    admin,
                } => (org, A::Invite { username, email, admin }),
                UsersCommand::Reinvite { org, username } => (org, A::Reinvite { username }),
                UsersCommand::SetRole { org, username, role } => (org, A::SetRole { username, role }),
                UsersCommand::Deactivate { org, username } => (
                    org,
                    A::SetActive {
                        username,
                        active: false,
                    },
                ),
                UsersCommand::Reactivate { org, username } => (org, A::SetActive { username, active: true }),
                UsersCommand::Delete { org, username } => (org, A::Delete { username }),
            };
            organization::users(
                org.remote.host.as_deref(),
                org.org.as_deref(),
                action,
                org.remote.output,
            )
            .await?;
        }
        Command::Audit {
            org,
            action,
            actor,
            target,
            since,
            until,
            limit,
            cursor,
        } => {
            let query = keysmith_client::AuditQuery {
                action,
                actor,
                target,
                since,
                until,
                limit,
                cursor,
            };
            organization::audit(org.remote.host.as_deref(), org.org.as_deref(), query, org.remote.output).await?;
        }
        Command::Keys(KeysCommand::Rotate { remote, key_id, grace }) => {
            organization::rotate(remote.host.as_deref(), &key_id, &grace, remote.output).await?;
        }
        Command::Keys(KeysCommand::Report { org }) => {
            organization::key_report(org.remote.host.as_deref(), org.org.as_deref(), org.remote.output).await?;
        }
        Command::Keys(KeysCommand::Show { remote, key_id }) => {
            remote::show_key(remote.host.as_deref(), &key_id, remote.output).await?;
        }
        Command::Keys(KeysCommand::RevokeExposed { remote }) => {
            remote::revoke_exposed(remote.host.as_deref(), remote.output).await?;
        }
        Command::Whoami(remote) => remote::whoami(remote.host.as_deref(), remote.output).await?,
        Command::Keys(KeysCommand::List {
            remote,
            owner,
            owner_kind,
            org,
            team,
            name_contains,
            sort,
            limit,
            all,
            expiring_within_days,
        }) => {
            let query = keysmith_client::KeyQuery {
                limit,
                sort,
                owner,
                owner_kind,
                org,
                team,
                name_contains,
                expiring_within_days,
                ..Default::default()
            };
            remote::list_keys(remote.host.as_deref(), query, all, remote.output).await?;
        }
        Command::Keys(KeysCommand::Create {
            remote,
            name,
            owner,
            format,
            expires_in_days,
            scope,
            allowed_networks,
            requests_per_minute,
        }) => {
            let request = keysmith_client::CreateKey {
                name,
                owner,
                format,
                expires_in_days,
                scope,
                allowed_networks: (!allowed_networks.is_empty()).then_some(allowed_networks),
                requests_per_minute,
            };
            remote::create_key(remote.host.as_deref(), request, remote.output).await?;
        }
        Command::Keys(KeysCommand::Rename { remote, key_id, name }) => {
            remote::rename_key(remote.host.as_deref(), &key_id, &name, remote.output).await?;
        }
        Command::Keys(KeysCommand::Delete { remote, key_ids }) => {
            remote::delete_keys(remote.host.as_deref(), &key_ids, remote.output).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_definition_is_consistent() {
        super::cli_command().debug_assert();
    }

    #[test]
    fn the_top_level_help_groups_every_command_once() {
        let mut grouped: Vec<&str> = super::COMMAND_GROUPS
            .iter()
            .flat_map(|(_, commands)| commands.iter().map(|(name, _)| *name))
            .collect();
        grouped.sort_unstable();
        let mut defined: Vec<String> = super::cli_command()
            .get_subcommands()
            .filter(|c| !c.is_hide_set())
            .map(|c| c.get_name().to_owned())
            .chain(["help".to_owned()])
            .collect();
        defined.sort_unstable();
        assert_eq!(grouped, defined);
    }
}
