//! Node.js tools for tests (the AsyncAPI validators, the browser driver): npm packages pinned by
//! a committed lockfile, installed once per lockfile into a directory of the target directory,
//! and commands run with their output kept for the test's message.

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::Mutex,
};

/// Held while a package directory is installed: the tests of one binary run on threads, and
/// two `npm ci` in one directory at once break each other (`ENOTEMPTY`).
static INSTALLING: Mutex<()> = Mutex::new(());

/// Heads the stamp an install leaves, before the lockfile it installed. Installs made before
/// they were serialized could be broken yet stamped; their stamps lack this line, so those
/// directories are installed again.
const STAMP_HEAD: &str = "installed one at a time\n";

/// Runs `program args` in `dir`: whether it succeeded, and everything it printed.
///
/// # Errors
/// When the program cannot be started (it is not installed, for example).
pub fn run(program: &str, args: &[&str], dir: &Path) -> Result<(bool, String), String> {
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| format!("cannot run `{program}`: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok((output.status.success(), text))
}

/// Installs the packages of `source`'s `package.json` and `package-lock.json` into `into`
/// with `npm ci`, unless that lockfile is already installed there, and copies `scripts` (file
/// names in `source`) beside them; returns `into`.
///
/// # Errors
/// When a file cannot be read or written, or `npm ci` fails (with its output).
pub fn install(source: &Path, into: &Path, scripts: &[&str]) -> Result<PathBuf, String> {
    let _installing = INSTALLING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let lock = std::fs::read_to_string(source.join("package-lock.json"))
        .map_err(|e| format!("cannot read {}/package-lock.json: {e}", source.display()))?;
    let stamp = into.join("installed.stamp");
    let stamped = format!("{STAMP_HEAD}{lock}");
    if !std::fs::read_to_string(&stamp).is_ok_and(|installed| installed == stamped) {
        let _ = std::fs::remove_dir_all(into);
        std::fs::create_dir_all(into)
            .map_err(|e| format!("cannot create {}: {e}", into.display()))?;
        for file in ["package.json", "package-lock.json"] {
            std::fs::copy(source.join(file), into.join(file))
                .map_err(|e| format!("cannot copy {file}: {e}"))?;
        }
        let (ok, output) =
            run("npm", &["ci", "--no-audit", "--no-fund", "--ignore-scripts"], into)?;
        if !ok {
            return Err(format!("`npm ci` failed:\n{output}"));
        }
        std::fs::write(&stamp, stamped)
            .map_err(|e| format!("cannot write {}: {e}", stamp.display()))?;
    }
    for script in scripts {
        std::fs::copy(source.join(script), into.join(script))
            .map_err(|e| format!("cannot copy {script}: {e}"))?;
    }
    Ok(into.to_path_buf())
}
