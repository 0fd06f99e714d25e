//! Generates code and documents from switchboard interface files: Rust, Python, C++, AsyncAPI 3.0,
//! OpenAPI 3.1 and Markdown.
//!
//! There are two ways in. A build script uses [`Builder`], which reads interface files, writes
//! `<snake_name>.rs` into `$OUT_DIR/switchboard` and tells Cargo which files to watch; the crate
//! then pulls the file in with `switchboard::include_interface!("<snake_name>")`, where
//! `<snake_name>` is the interface's `name` in snake case. The `switchboard generate` command uses
//! [`generate_files`] to write files meant to be committed (or only read: `--lang rust` shows
//! the generated API, `--lang markdown` a reference with examples). Both produce the same bytes.
//!
//! ```no_run
//! // build.rs
//! fn main() -> Result<(), switchboard_codegen::Error> {
//!     switchboard_codegen::Builder::new().compile(&["thermostat.yaml"])
//! }
//! ```

pub mod asyncapi;
mod builder;
pub mod cpp;
pub mod markdown;
mod names;
pub mod openapi;
pub mod python;
pub mod rust;

use std::path::{Path, PathBuf};

use switchboard_idl::{Interface, Loader, Parsed};

pub use builder::Builder;
pub use names::NameError;

/// A target language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Lang {
    /// Rust, against the `switchboard` runtime.
    Rust,
    /// Python: an installable package against the `switchboard` Python runtime.
    Python,
    /// An AsyncAPI 3.0 document (JSON) describing the interface's MQTT mapping.
    AsyncApi,
    /// A Markdown reference for people.
    Markdown,
    /// C++20: a header-only CMake library against the `switchboard` C++ runtime (`cpp/`).
    Cpp,
    /// An OpenAPI 3.1 document (JSON) of the HTTP/JSON gateway `switchboard web` serves.
    OpenApi,
}

/// One generated file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFile {
    /// The file's path relative to the output directory.
    pub path: PathBuf,
    /// The file's contents.
    pub contents: String,
}

/// Why code could not be generated from a valid interface.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GenerateError {
    /// A name from the interface file has no usable spelling, or two would collide.
    #[error(transparent)]
    Name(#[from] NameError),
    /// The generator produced code that does not parse; this is a bug in the generator.
    #[error("internal error: the generated code does not parse ({0}); please report this")]
    Syntax(String),
}

/// Everything that can go wrong reading interface files and writing generated code.
///
/// Its `Debug` is its message, so a build script that calls `.unwrap()` or returns the error
/// from `main` prints what `switchboard check` would: the diagnostics with their source lines and
/// carets, not an escaped one-line string.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An interface file could not be read.
    #[error("cannot read `{}`: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A generated file or its directory could not be written.
    #[error("cannot write `{}`: {source}", path.display())]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The interface file has errors; the message is the rendered diagnostics.
    #[error("{rendered}")]
    Interface {
        /// The interface file.
        path: PathBuf,
        /// Every diagnostic, rendered for people.
        rendered: String,
    },
    /// The interface is valid but code cannot be generated from it.
    #[error("cannot generate code from `{}`: {source}", path.display())]
    Generate {
        /// The interface file.
        path: PathBuf,
        /// What went wrong.
        source: GenerateError,
    },
    /// Two interface files generate a file of the same name, which would overwrite each other.
    #[error(
        "`{}` and `{}` both generate `{}`; rename one of the interfaces",
        first.display(),
        second.display(),
        file.display()
    )]
    SameName {
        /// The file compiled first.
        first: PathBuf,
        /// The file compiled second.
        second: PathBuf,
        /// The generated file both would write.
        file: PathBuf,
    },
    /// No output directory was given and `OUT_DIR` is not set.
    #[error("OUT_DIR is not set: call `Builder::out_dir` or run from a build script")]
    NoOutDir,
}

impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// An interface file read from disk and parsed, with every file that was read.
#[derive(Debug, Clone)]
pub struct LoadedFile {
    /// The parse result, with diagnostics.
    pub parsed: Parsed,
    /// The interface file first, then every file read through `$ref`.
    pub files_read: Vec<PathBuf>,
}

/// A [`Loader`] that reads `$ref`'d files from disk and remembers which ones it read.
#[derive(Debug, Clone, Default)]
pub struct FsLoader {
    files_read: Vec<PathBuf>,
}

impl FsLoader {
    /// Creates a loader that has read nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The files read so far, in order.
    pub fn files_read(&self) -> &[PathBuf] {
        &self.files_read
    }
}

impl Loader for FsLoader {
    fn load(&mut self, path: &str) -> Result<String, String> {
        self.files_read.push(PathBuf::from(path));
        read_interface_text(Path::new(path)).map_err(|e| e.to_string())
    }
}

/// Reads an interface file: a regular file only (a FIFO would block forever and a device such
/// as `/dev/zero` never ends), and at most one byte past [`switchboard_idl::MAX_FILE_BYTES`],
/// so a huge file costs no more memory than the limit; the parser then refuses it as
/// `too-large`. Invalid UTF-8 is refused as such, except in a file past the limit.
///
/// # Errors
///
/// Fails when the file cannot be opened or read, is not a regular file, or is not UTF-8.
pub fn read_interface_text(path: &Path) -> std::io::Result<String> {
    use std::io::Read as _;
    let not_regular = || {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file (a FIFO, device or directory); an interface file must be a \
             regular file",
        )
    };
    // Checked before opening: opening a FIFO waits for a writer.
    if !std::fs::metadata(path)?.is_file() {
        return Err(not_regular());
    }
    let file = std::fs::File::open(path)?;
    if !file.metadata()?.is_file() {
        return Err(not_regular());
    }
    let limit = switchboard_idl::MAX_FILE_BYTES;
    let mut bytes = Vec::new();
    file.take(limit as u64 + 1).read_to_end(&mut bytes)?;
    if bytes.len() > limit {
        // Cut mid-character perhaps; the parser only needs the length to refuse it.
        return Ok(String::from_utf8_lossy(&bytes).into_owned());
    }
    String::from_utf8(bytes).map_err(|e| {
        std::io::Error::new(std::io::ErrorKind::InvalidData, format!("not UTF-8: {e}"))
    })
}

/// Reads and parses the interface file at `path`, following `$ref`s on disk.
///
/// # Errors
///
/// Fails only when `path` itself cannot be read; problems inside the file are diagnostics.
pub fn load_file(path: &Path) -> Result<LoadedFile, Error> {
    let text = read_interface_text(path)
        .map_err(|source| Error::Read { path: path.to_path_buf(), source })?;
    let mut loader = FsLoader::new();
    let parsed = switchboard_idl::parse(&path.to_string_lossy(), &text, &mut loader);
    let mut files_read = vec![path.to_path_buf()];
    files_read.extend(loader.files_read);
    Ok(LoadedFile { parsed, files_read })
}

/// Generates every file `lang` produces for `iface`; `source_name` names the interface file.
///
/// Pass only the file's name (not a full path) as `source_name` so the output does not depend on
/// where the file lives; [`Builder`] and the CLI both do this.
///
/// # Errors
///
/// See [`GenerateError`].
pub fn generate_files(
    iface: &Interface,
    source_name: &str,
    lang: Lang,
) -> Result<Vec<GeneratedFile>, GenerateError> {
    match lang {
        Lang::Rust => {
            let contents = rust::generate(iface, source_name)?;
            Ok(vec![GeneratedFile { path: rust::file_name(iface)?.into(), contents }])
        }
        Lang::Python => python::generate(iface, source_name),
        Lang::Cpp => cpp::generate(iface, source_name),
        Lang::AsyncApi => {
            let contents = asyncapi::generate(iface, source_name)?;
            Ok(vec![GeneratedFile { path: asyncapi::file_name(iface)?.into(), contents }])
        }
        Lang::OpenApi => {
            let contents = openapi::generate(iface, source_name)?;
            Ok(vec![GeneratedFile { path: openapi::file_name(iface)?.into(), contents }])
        }
        Lang::Markdown => {
            let contents = markdown::generate(iface, source_name)?;
            Ok(vec![GeneratedFile { path: markdown::file_name(iface)?.into(), contents }])
        }
    }
}

/// The name that goes into generated headers for the file at `path`: its final component.
pub fn source_name(path: &Path) -> String {
    path.file_name().unwrap_or(path.as_os_str()).to_string_lossy().into_owned()
}
