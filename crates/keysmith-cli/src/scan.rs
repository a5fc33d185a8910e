//! `keysmith scan`: keys in files, in staged changes, in git history; and the
//! pre-commit hook that blocks a commit with a key. Findings show a key's public ID
//! (or a legacy key's first characters), never the key.

use anyhow::{Context, Result, bail};
use keysmith_core::scan::{Finding, find_keys_in_file};
use serde::Serialize;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::remote::{Exit, Output};

/// Directories that hold dependencies or build output, not code someone wrote.
const SKIPPED_DIRS: [&str; 7] = [".git", "target", "node_modules", ".venv", "venv", "__pycache__", ".tox"];
const MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;
const HOOK_MARKER: &str = "# installed by keysmith scan --install-hook";

#[derive(Debug, Serialize)]
struct Reported {
    path: String,
    line: usize,
    column: usize,
    /// `v1` or `legacy`.
    kind: &'static str,
    /// The key ID, or a legacy key's first characters: never the key.
    shown: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    commit: Option<String>,
}

impl Reported {
    fn new(path: &str, f: Finding, commit: Option<&str>) -> Self {
        Self {
            path: path.to_owned(),
            line: f.line,
            column: f.column,
            kind: f.kind.as_str(),
            shown: f.shown,
            commit: commit.map(str::to_owned),
        }
    }
}

pub struct ScanArgs {
    pub paths: Vec<PathBuf>,
    pub staged: bool,
    pub git_history: bool,
    pub install_hook: bool,
    pub force: bool,
    pub output: Output,
}

pub fn run(args: ScanArgs) -> Result<()> {
    if args.install_hook {
        return install_hook(args.force);
    }
    let mut reported = Vec::new();
    if args.staged {
        let diff = git(&["diff", "--cached", "--no-color", "-U0", "--no-ext-diff"])?;
        scan_patch(&diff, None, &mut reported);
    } else if args.git_history {
        let log = git(&[
            "log",
            "-p",
            "--all",
            "--no-color",
            "-U0",
            "--no-ext-diff",
            "--format=commit %H",
        ])?;
        scan_patch(&log, Some(()), &mut reported);
    } else {
        let paths = if args.paths.is_empty() {
            vec![PathBuf::from(".")]
        } else {
            args.paths
        };
        let mut progress = Progress::new();
        for path in &paths {
            scan_path(path, &mut reported, &mut progress)?;
        }
        progress.finish();
    }
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&reported)?),
        Output::Text => {
            for r in &reported {
                let at = r
                    .commit
                    .as_ref()
                    .map(|c| format!(" (commit {})", &c[..c.len().min(12)]))
                    .unwrap_or_default();
                println!("{}:{}:{}: {} key {}{at}", r.path, r.line, r.column, r.kind, r.shown);
            }
        }
    }
    if reported.is_empty() {
        if args.output == Output::Text {
            eprintln!("no keys found");
        }
        Ok(())
    } else {
        Err(Exit {
            code: 1,
            message: format!(
                "{} key(s) found. Remove them from the files (and from history if committed), then delete each key \
                 on the server and create a new one: a key that was written down should be treated as exposed.",
                reported.len()
            ),
        }
        .into())
    }
}

/// A counter on stderr for long scans, only when a person is watching.
struct Progress {
    files: usize,
    shown: bool,
}

impl Progress {
    fn new() -> Self {
        Self {
            files: 0,
            shown: std::io::stderr().is_terminal(),
        }
    }

    fn tick(&mut self) {
        self.files += 1;
        if self.shown && self.files.is_multiple_of(500) {
            eprint!("\rscanned {} files…", self.files);
        }
    }

    fn finish(&self) {
        if self.shown && self.files >= 500 {
            eprintln!("\rscanned {} files.   ", self.files);
        }
    }
}

fn scan_path(path: &Path, out: &mut Vec<Reported>, progress: &mut Progress) -> Result<()> {
    let meta = std::fs::symlink_metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if meta.is_dir() {
        let mut entries: Vec<_> = std::fs::read_dir(path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .filter_map(|e| e.ok())
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = entry.file_name();
            if entry.path().is_dir() && SKIPPED_DIRS.iter().any(|s| name == *s) {
                continue;
            }
            scan_path(&entry.path(), out, progress)?;
        }
    } else if meta.is_file() && meta.len() <= MAX_FILE_BYTES {
        progress.tick();
        let Ok(bytes) = std::fs::read(path) else { return Ok(()) };
        if bytes.iter().take(8192).any(|&b| b == 0) {
            return Ok(()); // binary
        }
        let text = String::from_utf8_lossy(&bytes);
        let shown = path.display().to_string();
        let shown = shown.strip_prefix("./").unwrap_or(&shown);
        out.extend(
            find_keys_in_file(shown, &text)
                .into_iter()
                .map(|f| Reported::new(shown, f, None)),
        );
    }
    Ok(())
}

/// Scans the added lines of a patch (`git diff` or `git log -p`), with their file and
/// new line numbers (and commit, for history).
fn scan_patch(patch: &str, history: Option<()>, out: &mut Vec<Reported>) {
    let mut commit: Option<String> = None;
    let mut file = String::new();
    let mut line_no = 0usize;
    let mut previous_added = String::new();
    for line in patch.lines() {
        if let Some(hash) = line.strip_prefix("commit ").filter(|_| history.is_some()) {
            commit = Some(hash.trim().to_owned());
        } else if let Some(path) = line.strip_prefix("+++ ") {
            file = path.strip_prefix("b/").unwrap_or(path).to_owned();
        } else if line.starts_with("@@") {
            // @@ -a,b +c,d @@: the new side starts at line c.
            line_no = line
                .split(' ')
                .find_map(|part| part.strip_prefix('+'))
                .and_then(|n| n.split(',').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(1);
            previous_added.clear();
        } else if let Some(added) = line.strip_prefix('+') {
            let context = format!("{previous_added}\n{added}");
            for mut f in find_keys_in_file(&file, &context).into_iter().filter(|f| f.line == 2) {
                f.line = line_no;
                out.push(Reported::new(&file, f, commit.as_deref()));
            }
            previous_added = added.to_owned();
            line_no += 1;
        }
    }
}

fn git(args: &[&str]) -> Result<String> {
    let out = Command::new("git")
        .args(args)
        .output()
        .context("cannot run git; is it installed?")?;
    if !out.status.success() {
        bail!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn install_hook(force: bool) -> Result<()> {
    let hooks = PathBuf::from(git(&["rev-parse", "--git-path", "hooks"])?.trim());
    std::fs::create_dir_all(&hooks).with_context(|| format!("cannot create {}", hooks.display()))?;
    let hook = hooks.join("pre-commit");
    if let Ok(existing) = std::fs::read_to_string(&hook)
        && !existing.contains(HOOK_MARKER)
        && !force
    {
        bail!(
            "{} exists and is not keysmith's; add `keysmith scan --staged` to it, or pass --force",
            hook.display()
        );
    }
    let exe = std::env::current_exe().context("cannot find the keysmith executable")?;
    let script = format!(
        "#!/bin/sh\n{HOOK_MARKER}\n# Blocks commits that add an API key. Bypass once (at your risk): git commit --no-verify\nexec '{}' scan --staged\n",
        exe.display().to_string().replace('\'', "'\\''")
    );
    std::fs::write(&hook, script).with_context(|| format!("cannot write {}", hook.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755))?;
    }
    eprintln!("installed {}: commits that add an API key are refused", hook.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches_report_added_lines_with_their_new_line_numbers() {
        let key = keysmith_core::generate_v1(&keysmith_core::KeyPrefix::default()).unwrap();
        let patch = format!(
            "commit abc123\ndiff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1,0 +10,2 @@\n+hello\n+KEY={}\n-removed {}\n",
            key.plaintext.expose(),
            key.plaintext.expose()
        );
        let mut out = Vec::new();
        scan_patch(&patch, Some(()), &mut out);
        assert_eq!(out.len(), 1, "removed lines do not count");
        assert_eq!((out[0].path.as_str(), out[0].line), ("x", 11));
        assert_eq!(out[0].commit.as_deref(), Some("abc123"));
    }
}
