//! The build-script front end: reads interface files and writes generated Rust into `OUT_DIR`.

use std::path::{Path, PathBuf};

use crate::{Error, Lang, generate_files, load_file, source_name};

/// Configures and runs Rust generation from a build script, in the style of `tonic-build`.
///
/// ```no_run
/// // build.rs
/// fn main() -> Result<(), switchboard_codegen::Error> {
///     switchboard_codegen::Builder::new().compile(&["thermostat.yaml"])
/// }
/// ```
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

impl Builder {
    /// Creates a builder that writes into `$OUT_DIR` and prints Cargo directives.
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes generated files into `dir` instead of `$OUT_DIR`.
    pub fn out_dir(&mut self, dir: impl Into<PathBuf>) -> &mut Self {
        self.out_dir = Some(dir.into());
        self
    }

    /// Turns printing of `cargo:rerun-if-changed` and `cargo:warning` lines on or off (default on).
    pub fn emit_cargo_directives(&mut self, enabled: bool) -> &mut Self {
        self.emit_cargo_directives = enabled;
        self
    }

    /// Generates `<snake_name>.rs` for each interface file in `files`.
    ///
    /// Every file read, including those pulled in through `$ref`, is reported to Cargo with
    /// `cargo:rerun-if-changed`. A file is rewritten only when its contents change.
    ///
    /// # Errors
    ///
    /// Stops at the first file that cannot be read, has errors (the error's message is the
    /// rendered diagnostics), cannot be generated, or cannot be written.
    pub fn compile(&self, files: &[impl AsRef<Path>]) -> Result<(), Error> {
        let out_dir = match &self.out_dir {
            Some(dir) => dir.clone(),
            None => std::env::var_os("OUT_DIR").map(PathBuf::from).ok_or(Error::NoOutDir)?,
        };
        for file in files {
            self.compile_one(file.as_ref(), &out_dir)?;
        }
        Ok(())
    }

    /// Generates the files for one interface file.
    fn compile_one(&self, path: &Path, out_dir: &Path) -> Result<(), Error> {
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
        let generated = generate_files(iface, &source_name(path), Lang::Rust)
            .map_err(|source| Error::Generate { path: path.into(), source })?;
        std::fs::create_dir_all(out_dir)
            .map_err(|source| Error::Write { path: out_dir.into(), source })?;
        for file in generated {
            let target = out_dir.join(&file.path);
            if std::fs::read_to_string(&target).is_ok_and(|old| old == file.contents) {
                continue;
            }
            std::fs::write(&target, &file.contents)
                .map_err(|source| Error::Write { path: target, source })?;
        }
        Ok(())
    }
}
