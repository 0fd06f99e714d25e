//! The fuzz targets' bodies: each takes the raw bytes of one input and must neither panic nor
//! hang on any of them.
//!
//! `cargo +nightly fuzz run NAME` drives these through `fuzz_targets/NAME.rs`; the workspace test
//! `fuzz_corpus` (in `tests/it/`) includes this file and replays every file of
//! `fuzz/corpus/NAME/` through the same function on stable. `docs/reliability.md` describes them.

use bytes::Bytes;
use switchboard_codegen::Lang;
use switchboard_core::{compat, compat::Hello};
use switchboard_idl::Loader;
use switchboard_transport_unix::frame;

/// A target's body: one input's bytes in, a panic out if it finds a defect.
pub type Target = fn(&[u8]);

/// Every target by name, as its corpus directory and its fuzz binary are called.
pub const TARGETS: &[(&str, Target)] = &[
    ("idl_check", idl_check),
    ("codegen", codegen),
    ("unix_frame", unix_frame),
    ("mqtt_publish", mqtt_publish),
    ("pipe_line", pipe_line),
    ("cli_args", cli_args),
];

/// The byte that separates the files of one input: the first is `main.yaml`, the n-th after it
/// is `n.yaml`, for `$ref` to name.
const FILE_SEPARATOR: char = '\0';

/// The largest frame the Unix target's decoder accepts, as a server accepts before HELLO.
const FRAME_LIMIT: usize = 64 * 1024;

/// Serves the extra files of one input to `$ref`.
struct InputFiles<'a> {
    extra: Vec<&'a str>,
}

impl Loader for InputFiles<'_> {
    fn load(&mut self, path: &str) -> Result<String, String> {
        let index = path
            .rsplit('/')
            .next()
            .and_then(|name| name.strip_suffix(".yaml"))
            .and_then(|stem| stem.parse::<usize>().ok())
            .filter(|n| *n >= 1);
        match index.and_then(|n| self.extra.get(n - 1)) {
            Some(text) => Ok((*text).to_owned()),
            None => Err(format!("`{path}` is not one of the input's files")),
        }
    }
}

/// Parses and checks the interface files in `data` (UTF-8, separated by NUL bytes).
fn parse(data: &[u8]) -> Option<switchboard_idl::Parsed> {
    let text = std::str::from_utf8(data).ok()?;
    let mut files = text.split(FILE_SEPARATOR);
    let main = files.next().unwrap_or_default();
    let mut loader = InputFiles { extra: files.collect() };
    Some(switchboard_idl::parse("main.yaml", main, &mut loader))
}

/// The interface loader and checker, and the rendering of their diagnostics as text and JSON.
pub fn idl_check(data: &[u8]) {
    let Some(parsed) = parse(data) else { return };
    assert_eq!(parsed.interface.is_some(), !parsed.has_errors(), "a model only without errors");
    let rendered = parsed.render();
    assert!(parsed.diagnostics.is_empty() || !rendered.is_empty(), "diagnostics render to text");
    let _ = parsed.to_json();
}

/// Every generator (Rust, Python, AsyncAPI, Markdown) on each interface that passes the checker.
pub fn codegen(data: &[u8]) {
    let Some(parsed) = parse(data) else { return };
    let Some(interface) = parsed.interface else { return };
    for lang in [Lang::Rust, Lang::Python, Lang::AsyncApi, Lang::Markdown] {
        // A refusal is an answer; only a panic, a hang or runaway memory is a defect.
        let _ = switchboard_codegen::generate_files(&interface, "main.yaml", lang);
    }
}

/// The Unix frame decoder on a byte stream, then the decoders of each frame's payload on both
/// sides (a server's reading of client frames, a client's of server frames, the HELLO document).
pub fn unix_frame(data: &[u8]) {
    let mut stream = data;
    while let Ok(Some((result, consumed))) = frame::decode(stream, FRAME_LIMIT) {
        assert!(consumed >= 4 && consumed <= stream.len(), "a frame lies within the stream");
        if let Ok(frame) = result {
            let encoded = frame.to_vec().expect("a decoded frame encodes");
            assert_eq!(encoded, stream[..consumed], "a decoded frame encodes to its own bytes");
            unix_payloads(frame);
        }
        stream = &stream[consumed..];
    }
}

fn unix_payloads(frame: frame::Frame) {
    if frame.kind == frame::Kind::Hello
        && let Ok(hello) = serde_json::from_slice::<Hello>(&frame.payload)
    {
        let _ = compat::check(&hello, &hello);
        let _ = hello.summary();
    }
    let _ = switchboard_transport_unix::__fuzz::frame_to_client(frame.clone());
    let _ = switchboard_transport_unix::__fuzz::frame_to_server(frame.clone());
    let payload = Bytes::clone(&frame.payload);
    let _ = switchboard_core::goal_payload::decode_state(&payload);
    let _ = switchboard_core::goal_payload::decode_event(Some(&frame.name), &payload);
}

/// The decoders MQTT clients and servers apply to an incoming publish. The input is seven
/// NUL-separated parts: a flags byte (bit 0 retained, 1 correlation data, 2 response topic,
/// 3 content type) followed by the topic, then a topic template, user properties (`key=value`
/// lines), correlation data, response topic, content type, and the payload (the rest).
pub fn mqtt_publish(data: &[u8]) {
    use switchboard_transport_mqtt::__fuzz::{IncomingPublish, decode};
    let mut parts = data.splitn(7, |b| *b == 0);
    let mut next = || parts.next().unwrap_or_default();
    let (head, template, properties) = (next(), next(), next());
    let (correlation, response_topic, content_type, payload) = (next(), next(), next(), next());
    let flags = head.first().copied().unwrap_or_default();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    let publish = IncomingPublish {
        topic: text(head.get(1..).unwrap_or_default()),
        retain: flags & 1 != 0,
        payload: Bytes::copy_from_slice(payload),
        user_properties: text(properties)
            .lines()
            .map(|line| match line.split_once('=') {
                Some((key, value)) => (key.to_owned(), value.to_owned()),
                None => (line.to_owned(), String::new()),
            })
            .collect(),
        correlation_data: (flags & 2 != 0).then(|| Bytes::copy_from_slice(correlation)),
        response_topic: (flags & 4 != 0).then(|| text(response_topic)),
        content_type: (flags & 8 != 0).then(|| text(content_type)),
    };
    decode(&publish, &text(template));
}

/// The pipe gateway's request intake: the bytes as they arrive on the request FIFO, cut into
/// reads at arbitrary points (the first byte chooses the read size), split into lines under a
/// small limit, and each line parsed as a request. Whatever the cuts, the lines must be the
/// same as from one read of the whole input.
pub fn pipe_line(data: &[u8]) {
    use switchboard_cli::__fuzz::{parse_pipe_request, split_pipe_lines};
    const LIMIT: usize = 256;
    let Some((&read_size, stream)) = data.split_first() else { return };
    let read_size = usize::from(read_size).max(1);
    let (mut line, mut skipping) = (Vec::new(), false);
    let mut in_reads = Vec::new();
    for chunk in stream.chunks(read_size) {
        in_reads.extend(split_pipe_lines(&mut line, &mut skipping, chunk, LIMIT));
    }
    let (mut whole_line, mut whole_skipping) = (Vec::new(), false);
    let at_once = split_pipe_lines(&mut whole_line, &mut whole_skipping, stream, LIMIT);
    assert_eq!(in_reads, at_once, "the lines do not depend on how the bytes were read");
    assert_eq!((line, skipping), (whole_line, whole_skipping), "nor does the unfinished tail");
    for result in in_reads {
        match result {
            Ok(bytes) => {
                assert!(bytes.len() <= LIMIT, "a line over the limit got through");
                let _ = parse_pipe_request(&String::from_utf8_lossy(&bytes));
            }
            Err(message) => assert!(message.contains("limit"), "an over-long line says so"),
        }
    }
}

/// The command-line grammar: the input's lines are the arguments after the program name.
pub fn cli_args(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let args: Vec<String> =
        std::iter::once("switchboard").chain(text.split('\n')).map(str::to_owned).collect();
    let _ = switchboard_cli::__fuzz::parse_args(&args);
}
