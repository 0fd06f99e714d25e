//! The build-script front end: reads interface files, writes generated Rust into a directory of
//! its own under `OUT_DIR`, indexes it for `switchboard::include_interface!`, and removes what
//! earlier builds generated and this one did not.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    path::{Path, PathBuf},
    sync::{Mutex, PoisonError},
};

use crate::{Error, Lang, generate_files, load_file, source_name};

/// The directory under `OUT_DIR` that the builder owns and `include_interface!` reads.
const OUT_SUBDIR: &str = "switchboard";

/// The index `include_interface!` includes: one macro arm per generated interface.
const INDEX: &str = "index.rs";

/// How the index lists each generated file, so that the next build knows what to remove.
const FILE_LINE: &str = "// file: ";

/// Configures and runs Rust generation from a build script, in the style of `tonic-build`.
///
/// ```no_run
/// // build.rs
/// fn main() -> Result<(), switchboard_codegen::Error> {
///     switchboard_codegen::Builder::new().compile(&["thermostat.yaml"])
/// }
/// ```
///
/// Each interface becomes `$OUT_DIR/switchboard/<name>.rs`, where `<name>` is the interface's
/// `name` in snake case (`GreenHouse` → `green_house.rs`, whatever the YAML file is called), the
/// same name `switchboard generate --lang rust` gives the file. Include it with
/// `switchboard::include_interface!("<name>")`.
///
/// Errors print readably both ways a build script shows them (`.unwrap()` and returning the
/// error from `main`): an interface with errors shows the same diagnostics `switchboard check`
/// prints.
#[derive(Debug, Clone)]
pub struct Builder {
    out_dir: Option<PathBuf>,
    emit_cargo_directives: bool,
}

impl Default for Builder {
    fn default() -> Self {
        Self { out_dir: None, emit_cargo_directives: true }
    }
}

/// One generated interface, as the index lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Generated {
    /// The interface file it came from.
    source: PathBuf,
    /// The interface's name as written.
    interface: String,
}

/// What this build script has generated so far, by output directory, then by module name.
///
/// A build script is one process, so what this process generated is exactly what the current
/// build wants; anything else an index lists comes from an earlier build.
static GENERATED: Mutex<BTreeMap<PathBuf, BTreeMap<String, Generated>>> =
    Mutex::new(BTreeMap::new());

impl Builder {
    /// Creates a builder that writes into `$OUT_DIR/switchboard` and prints Cargo directives.
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes generated files into `dir` instead of `$OUT_DIR/switchboard`.
    ///
    /// `include_interface!` reads only `$OUT_DIR/switchboard`; code written elsewhere is included
    /// by path, with `include!`.
    pub fn out_dir(&mut self, dir: impl Into<PathBuf>) -> &mut Self {
        self.out_dir = Some(dir.into());
        self
    }

    /// Turns printing of `cargo:rerun-if-changed` and `cargo:warning` lines on or off (default on).
    pub fn emit_cargo_directives(&mut self, enabled: bool) -> &mut Self {
        self.emit_cargo_directives = enabled;
        self
    }

    /// Generates `<snake_name>.rs` for each interface file in `files`, and the index
    /// `include_interface!` reads.
    ///
    /// Every file read, including those pulled in through `$ref`, is reported to Cargo with
    /// `cargo:rerun-if-changed`. A file is rewritten only when its contents change. Calling
    /// `compile` several times in one build script adds up; files that earlier builds generated
    /// and this one has not are removed.
    ///
    /// # Errors
    ///
    /// Stops at the first file that cannot be read, has errors (the error's message is the
    /// rendered diagnostics), cannot be generated, generates the same name as another file, or
    /// cannot be written.
    pub fn compile(&self, files: &[impl AsRef<Path>]) -> Result<(), Error> {
        let out_dir = match &self.out_dir {
            Some(dir) => dir.clone(),
            None => std::env::var_os("OUT_DIR")
                .map(|dir| PathBuf::from(dir).join(OUT_SUBDIR))
                .ok_or(Error::NoOutDir)?,
        };
        std::fs::create_dir_all(&out_dir)
            .map_err(|source| Error::Write { path: out_dir.clone(), source })?;
        let mut all = GENERATED.lock().unwrap_or_else(PoisonError::into_inner);
        let generated = all.entry(out_dir.clone()).or_default();
        for file in files {
            self.compile_one(file.as_ref(), &out_dir, generated)?;
        }
        let index_path = out_dir.join(INDEX);
        let previous = std::fs::read_to_string(&index_path).unwrap_or_default();
        for stale in previous.lines().filter_map(listed_file) {
            if !generated.keys().any(|module| format!("{module}.rs") == stale) {
                let path = out_dir.join(stale);
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(source) => return Err(Error::Write { path, source }),
                }
            }
        }
        write_if_changed(&index_path, &index(&out_dir, generated))
    }

    /// Generates the file for one interface file and records it in `generated`.
    fn compile_one(
        &self,
        path: &Path,
        out_dir: &Path,
        generated: &mut BTreeMap<String, Generated>,
    ) -> Result<(), Error> {
        if self.emit_cargo_directives {
            println!("cargo:rerun-if-changed={}", path.display());
        }
        let loaded = load_file(path)?;
        if self.emit_cargo_directives {
            for read in loaded.files_read.iter().skip(1) {
                println!("cargo:rerun-if-changed={}", read.display());
            }
        }
        let parsed = loaded.parsed;
        let iface = match parsed.interface.as_ref() {
            Some(iface) if !parsed.has_errors() => iface,
            _ => return Err(Error::Interface { path: path.into(), rendered: parsed.render() }),
        };
        if self.emit_cargo_directives && !parsed.diagnostics.is_empty() {
            for line in parsed.render().lines() {
                println!("cargo:warning={line}");
            }
        }
        let files = generate_files(iface, &source_name(path), Lang::Rust)
            .map_err(|source| Error::Generate { path: path.into(), source })?;
        for file in files {
            let module = file.path.with_extension("").to_string_lossy().into_owned();
            let entry = Generated { source: path.into(), interface: iface.name.clone() };
            if let Some(other) = generated.get(&module).filter(|other| other.source != path) {
                return Err(Error::SameName {
                    first: other.source.clone(),
                    second: path.into(),
                    file: file.path,
                });
            }
            write_if_changed(&out_dir.join(&file.path), &file.contents)?;
            generated.insert(module, entry);
        }
        Ok(())
    }
}

/// The file an index line lists, if it is a `// file:` line.
fn listed_file(line: &str) -> Option<&str> {
    let rest = line.strip_prefix(FILE_LINE)?;
    rest.split_whitespace()
        .next()
        .filter(|name| name.ends_with(".rs") && *name != INDEX && !name.contains(['/', '\\']))
}

/// The index of `generated`: a `macro_rules!` that `include_interface!` invokes with the name it
/// was given, with one arm per file and a last arm that fails the build naming them all.
fn index(out_dir: &Path, generated: &BTreeMap<String, Generated>) -> String {
    let mut out = String::from(
        "// @generated by switchboard_codegen::Builder: the interfaces this build script \
         generated,\n// for `switchboard::include_interface!`. Do not edit by hand.\n",
    );
    let mut known = Vec::new();
    for (module, entry) in generated {
        let _ = writeln!(
            out,
            "{FILE_LINE}{module}.rs (interface `{}` in {})",
            entry.interface,
            source_name(&entry.source)
        );
        known.push(format!(
            "`{module}` (interface `{}` in {})",
            entry.interface,
            source_name(&entry.source)
        ));
    }
    out.push_str("macro_rules! __switchboard_include_interface {\n");
    for module in generated.keys() {
        let file = out_dir.join(format!("{module}.rs")).to_string_lossy().into_owned();
        let _ = writeln!(out, "    (\"{module}\") => {{\n        include!({file:?});\n    }};");
    }
    let known = if known.is_empty() { "nothing".to_string() } else { known.join(", ") };
    let message = format!(
        " names no generated interface; name one by its interface's snake_case name. \
         build.rs generated: {known}"
    );
    let _ = writeln!(
        out,
        "    ($other:tt) => {{\n        compile_error!(concat!(\"`include_interface!(\", \
         stringify!($other), \")`\", {message:?}));\n    }};"
    );
    out.push_str("}\n");
    out
}

/// Writes `contents` to `path` unless it already holds them, so Cargo sees no change.
fn write_if_changed(path: &Path, contents: &str) -> Result<(), Error> {
    if std::fs::read_to_string(path).is_ok_and(|old| old == contents) {
        return Ok(());
    }
    std::fs::write(path, contents).map_err(|source| Error::Write { path: path.into(), source })
}
