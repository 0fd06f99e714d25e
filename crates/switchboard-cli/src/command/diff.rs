//! `switchboard diff`: compares two versions of an interface file, from files or git revisions,
//! and says which changes break old clients or old servers.

use std::{
    io::Read as _,
    path::Path,
    process::{Command, ExitCode, Stdio},
};

use serde_json::json;
use switchboard_idl::{
    Interface, Loader, MAX_FILE_BYTES,
    diff::{self, Bump, Change, Compat, Side, Version, VersionCheck},
    english::counted,
};

use crate::{
    cli::{DiffArgs, DiffFormat, DiffSide},
    exit::{BREAKING, Failure, VERSION_BUMP},
};

/// Compares, prints, and returns the exit code: 0, 7 when a change breaks the side `--for`
/// names, 8 when `--require-version-bump` finds the bump missing, 1 when a version cannot be read.
pub(crate) fn run(args: &DiffArgs) -> ExitCode {
    let (old, new) = match (load(&args.old), load(&args.new)) {
        (Ok(old), Ok(new)) => (old, new),
        (Err(failure), _) | (_, Err(failure)) => return failure.report(),
    };
    let side = match args.side {
        DiffSide::Clients => Side::Clients,
        DiffSide::Servers => Side::Servers,
        DiffSide::Both => Side::Both,
    };
    let changes = diff::compare(&old, &new);
    let breaking = changes.iter().filter(|c| c.breaks(side)).count();
    let version = diff::check_version(&old, &new, &changes);
    let declared = Version::parse(&old.version)
        .zip(Version::parse(&new.version))
        .and_then(|(o, n)| o.bump_to(n));
    match args.format {
        DiffFormat::Text => print!("{}", text(&old, &new, &changes)),
        DiffFormat::Json => {
            let report = json!({
                "old": { "name": old.name, "version": old.version },
                "new": { "name": new.name, "version": new.version },
                "for": side,
                "changes": changes,
                "breaking": breaking,
                "version": {
                    "required": diff::required_bump(&changes),
                    "declared": declared,
                    "ok": matches!(version, VersionCheck::Ok),
                },
            });
            println!("{report:#}");
        }
    }
    if let Some(warning) = version_warning(&old, &new, &version) {
        eprintln!("warning: {warning}");
    }
    if breaking > 0 {
        let verb = if breaking == 1 { "breaks" } else { "break" };
        eprintln!("error: {} {verb} {}", counted(breaking, "change"), breaks(side));
        return ExitCode::from(BREAKING);
    }
    if args.require_version_bump && !matches!(version, VersionCheck::Ok) {
        eprintln!("error: the version does not carry the bump the changes need");
        return ExitCode::from(VERSION_BUMP);
    }
    ExitCode::SUCCESS
}

fn breaks(side: Side) -> &'static str {
    match side {
        Side::Clients => "existing clients (--for clients)",
        Side::Servers => "existing servers (--for servers)",
        Side::Both => "existing clients or servers (--for both)",
    }
}

/// `Heater 1.0.0 -> 1.1.0: 2 changes`, a line per change, and the bump they need.
fn text(old: &Interface, new: &Interface, changes: &[Change]) -> String {
    let mut out = format!(
        "{} {} -> {} {}: {}\n",
        old.name,
        old.version,
        new.name,
        new.version,
        if changes.is_empty() { "no changes".to_owned() } else { counted(changes.len(), "change") }
    );
    for c in changes {
        let verdict = match (c.clients, c.servers) {
            (Compat::Safe, Compat::Safe) => "safe",
            (Compat::Breaking, Compat::Safe) => "breaks clients",
            (Compat::Safe, Compat::Breaking) => "breaks servers",
            (Compat::Breaking, Compat::Breaking) => "breaks both",
        };
        out.push_str(&format!(
            "  {verdict:<14}  {:<5}  {}: {}\n",
            c.bump.as_str(),
            c.path,
            c.message
        ));
    }
    if let Some(bump) = diff::required_bump(changes) {
        out.push_str(&format!("needs a {} version bump\n", bump.as_str()));
    }
    out
}

/// What to warn about the version, if anything.
fn version_warning(old: &Interface, new: &Interface, check: &VersionCheck) -> Option<String> {
    match check {
        VersionCheck::Ok => None,
        VersionCheck::Missing { required, declared } => Some(format!(
            "the changes need a {} version bump, but {}",
            required.as_str(),
            match declared {
                None if old.version == new.version => format!("the version stays {}", new.version),
                None => format!("the version goes from {} down to {}", old.version, new.version),
                Some(bump) => format!(
                    "{} -> {} is a {} bump",
                    old.version,
                    new.version,
                    match bump {
                        Bump::Patch => "patch",
                        Bump::Minor => "minor",
                        Bump::Major => "major",
                    }
                ),
            }
        )),
        VersionCheck::Unreadable { version } => {
            Some(format!("cannot check the version bump: `{version}` is not MAJOR.MINOR.PATCH"))
        }
    }
}

/// Reads one side: a file, else `REV:PATH` through git. A file with errors is refused with its
/// diagnostics on standard error.
fn load(spec: &str) -> Result<Interface, Failure> {
    let parsed = if Path::new(spec).exists() {
        switchboard_codegen::load_file(Path::new(spec))
            .map_err(|e| Failure::Local(e.to_string()))?
            .parsed
    } else if let Some((rev, path)) = spec.split_once(':') {
        let mut loader = GitLoader { rev: rev.to_owned() };
        let text = loader.show(path).map_err(Failure::Local)?;
        switchboard_idl::parse(path, &text, &mut loader)
    } else {
        return Err(Failure::Local(format!(
            "cannot read `{spec}`: no such file (for a git revision, write REV:PATH)"
        )));
    };
    match parsed.interface {
        Some(interface) => Ok(interface),
        None => {
            eprintln!("{}", parsed.render());
            Err(Failure::Local(format!("`{spec}` is not a valid interface file")))
        }
    }
}

/// Reads files at one git revision, `$ref`'d ones included, with `git show REV:PATH`.
struct GitLoader {
    rev: String,
}

impl GitLoader {
    /// The text of `path` at the revision, read no further than the size limit.
    fn show(&self, path: &str) -> Result<String, String> {
        let object = format!("{}:{path}", self.rev);
        let mut child = Command::new("git")
            .args(["show", "--no-textconv", &object])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                format!("cannot run git to read `{object}`: {e} (and no such file exists)")
            })?;
        let mut bytes = Vec::new();
        let read = child
            .stdout
            .take()
            .map(|out| out.take(MAX_FILE_BYTES as u64 + 1).read_to_end(&mut bytes));
        if bytes.len() > MAX_FILE_BYTES {
            // Enough read: the parser refuses the file; git need not write the rest.
            let _ = child.kill();
        }
        let output = child.wait_with_output().map_err(|e| format!("git failed: {e}"))?;
        if let Some(Err(e)) = read {
            return Err(format!("cannot read `{object}` from git: {e}"));
        }
        if !output.status.success() && bytes.len() <= MAX_FILE_BYTES {
            let message = String::from_utf8_lossy(&output.stderr);
            let message = message.lines().next().unwrap_or("").trim();
            return Err(format!("git cannot show `{object}`: {message}"));
        }
        String::from_utf8(bytes).map_err(|_| format!("`{object}` is not UTF-8"))
    }
}

impl Loader for GitLoader {
    fn load(&mut self, path: &str) -> Result<String, String> {
        self.show(path)
    }
}
