//! Decides every Python identifier the generator emits: PEP 8 spelling and keyword escapes.
//!
//! Functions, attributes and parameters are `snake_case`, classes `CapWords`, enum members and
//! constants `UPPER_CASE`. A name that is a Python keyword gets a trailing underscore (PEP 8's
//! advice, `class_`). Collisions are caught with the shared [`NameTable`](crate::names::NameTable).

use heck::{ToShoutySnakeCase, ToSnakeCase, ToUpperCamelCase};

use crate::names::NameError;

/// Python's keywords (`keyword.kwlist`); soft keywords (`match`, `case`, `type`, `_`) are valid
/// identifiers and stay as they are.
pub(crate) const KEYWORDS: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue",
    "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import",
    "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while",
    "with", "yield",
];

/// Top-level modules a generated package must not be named like: the standard library's
/// (`sys.stdlib_module_names` of CPython 3.11, without private ones), the `switchboard` runtime
/// and its optional `paho` dependency. A package named `typing` or `switchboard` imports itself
/// instead ("partially initialized module"); one named `json` shadows the standard library for
/// the whole process.
pub(crate) const RESERVED_MODULES: &[&str] = &[
    "abc",
    "aifc",
    "antigravity",
    "argparse",
    "array",
    "ast",
    "asynchat",
    "asyncio",
    "asyncore",
    "atexit",
    "audioop",
    "base64",
    "bdb",
    "binascii",
    "bisect",
    "builtins",
    "bz2",
    "cProfile",
    "calendar",
    "cgi",
    "cgitb",
    "chunk",
    "cmath",
    "cmd",
    "code",
    "codecs",
    "codeop",
    "collections",
    "colorsys",
    "compileall",
    "concurrent",
    "configparser",
    "contextlib",
    "contextvars",
    "copy",
    "copyreg",
    "crypt",
    "csv",
    "ctypes",
    "curses",
    "dataclasses",
    "datetime",
    "dbm",
    "decimal",
    "difflib",
    "dis",
    "distutils",
    "doctest",
    "email",
    "encodings",
    "ensurepip",
    "enum",
    "errno",
    "faulthandler",
    "fcntl",
    "filecmp",
    "fileinput",
    "fnmatch",
    "fractions",
    "ftplib",
    "functools",
    "gc",
    "genericpath",
    "getopt",
    "getpass",
    "gettext",
    "glob",
    "graphlib",
    "grp",
    "gzip",
    "hashlib",
    "heapq",
    "hmac",
    "html",
    "http",
    "idlelib",
    "imaplib",
    "imghdr",
    "imp",
    "importlib",
    "inspect",
    "io",
    "ipaddress",
    "itertools",
    "json",
    "keyword",
    "lib2to3",
    "linecache",
    "locale",
    "logging",
    "lzma",
    "mailbox",
    "mailcap",
    "marshal",
    "math",
    "mimetypes",
    "mmap",
    "modulefinder",
    "msilib",
    "msvcrt",
    "multiprocessing",
    "netrc",
    "nis",
    "nntplib",
    "nt",
    "ntpath",
    "nturl2path",
    "numbers",
    "opcode",
    "operator",
    "optparse",
    "os",
    "ossaudiodev",
    "paho",
    "pathlib",
    "pdb",
    "pickle",
    "pickletools",
    "pipes",
    "pkgutil",
    "platform",
    "plistlib",
    "poplib",
    "posix",
    "posixpath",
    "pprint",
    "profile",
    "pstats",
    "pty",
    "pwd",
    "py_compile",
    "pyclbr",
    "pydoc",
    "pydoc_data",
    "pyexpat",
    "queue",
    "quopri",
    "random",
    "re",
    "readline",
    "reprlib",
    "resource",
    "rlcompleter",
    "runpy",
    "sched",
    "secrets",
    "select",
    "selectors",
    "shelve",
    "shlex",
    "shutil",
    "signal",
    "site",
    "smtpd",
    "smtplib",
    "sndhdr",
    "socket",
    "socketserver",
    "spwd",
    "sqlite3",
    "sre_compile",
    "sre_constants",
    "sre_parse",
    "ssl",
    "stat",
    "statistics",
    "string",
    "stringprep",
    "struct",
    "subprocess",
    "sunau",
    "switchboard",
    "symtable",
    "sys",
    "sysconfig",
    "syslog",
    "tabnanny",
    "tarfile",
    "telnetlib",
    "tempfile",
    "termios",
    "textwrap",
    "this",
    "threading",
    "time",
    "timeit",
    "tkinter",
    "token",
    "tokenize",
    "tomllib",
    "trace",
    "traceback",
    "tracemalloc",
    "tty",
    "turtle",
    "turtledemo",
    "types",
    "typing",
    "unicodedata",
    "unittest",
    "urllib",
    "uu",
    "uuid",
    "venv",
    "warnings",
    "wave",
    "weakref",
    "webbrowser",
    "winreg",
    "winsound",
    "wsgiref",
    "xdrlib",
    "xml",
    "xmlrpc",
    "zipapp",
    "zipfile",
    "zipimport",
    "zlib",
    "zoneinfo",
];

/// The import name of the package generated for the interface `name`: its `snake_case`
/// spelling, with `_interface` appended when that is a reserved module (`Json` gives
/// `json_interface`).
pub(crate) fn package(name: &str) -> Result<String, NameError> {
    let snake = snake(name, &format!("interface `{name}`"))?;
    if RESERVED_MODULES.contains(&snake.as_str()) {
        Ok(format!("{snake}_interface"))
    } else {
        Ok(snake)
    }
}

/// Converts `name` to `snake_case` and escapes keywords.
pub(crate) fn snake(name: &str, what: &str) -> Result<String, NameError> {
    escape(name.to_snake_case(), what)
}

/// `prefix_<snake name>`, e.g. `get_setpoint`.
pub(crate) fn prefixed_snake(prefix: &str, name: &str, what: &str) -> Result<String, NameError> {
    escape(format!("{prefix}_{}", name.to_snake_case()), what)
}

/// Converts `name` to `CapWords` and appends `suffix`.
pub(crate) fn camel(name: &str, suffix: &str, what: &str) -> Result<String, NameError> {
    escape(format!("{}{suffix}", name.to_upper_camel_case()), what)
}

/// Converts `name` to `UPPER_CASE`.
pub(crate) fn shouty(name: &str, what: &str) -> Result<String, NameError> {
    escape(name.to_shouty_snake_case(), what)
}

fn escape(ident: String, what: &str) -> Result<String, NameError> {
    let invalid =
        |reason| NameError::Invalid { what: what.to_string(), ident: ident.clone(), reason };
    let mut chars = ident.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() => {}
        Some(c) if c.is_ascii_digit() => return Err(invalid("starts with a digit")),
        Some('_') | None => {
            return Err(invalid(
                "is empty or starts with `_`, which Python keeps for private names",
            ));
        }
        _ => return Err(invalid("contains characters other than ASCII letters, digits and `_`")),
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(invalid("contains characters other than ASCII letters, digits and `_`"));
    }
    if KEYWORDS.contains(&ident.as_str()) { Ok(format!("{ident}_")) } else { Ok(ident) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pep8_names_and_escapes() {
        assert_eq!(snake("extraCelsius", "x").unwrap(), "extra_celsius");
        assert_eq!(snake("async", "x").unwrap(), "async_");
        assert_eq!(snake("None", "x").unwrap(), "none");
        assert_eq!(camel("None", "", "x").unwrap(), "None_");
        assert_eq!(camel("temperatureChanged", "", "x").unwrap(), "TemperatureChanged");
        assert_eq!(shouty("maxTemp", "x").unwrap(), "MAX_TEMP");
        assert_eq!(snake("type", "x").unwrap(), "type");
        assert_eq!(prefixed_snake("get", "setPoint", "x").unwrap(), "get_set_point");
        assert!(snake("2fast", "x").is_err());
    }

    #[test]
    fn refusals_do_not_talk_about_rust() {
        for name in ["9", "2fast", "--", "__"] {
            let message = snake(name, &format!("method `{name}`")).unwrap_err().to_string();
            assert!(!message.contains("Rust"), "{message}");
            assert!(
                message.starts_with(&format!("method `{name}` cannot become an identifier")),
                "{message}"
            );
        }
    }
}
