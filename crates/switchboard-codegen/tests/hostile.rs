//! Valid but hostile interfaces: every generator's output and time stay proportional to the
//! interface, however its structs nest (issue 15, defects 3, 12 and 13).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use switchboard_codegen::Lang;
use switchboard_idl::{Interface, NoLoader, Type, parse};

/// Structs `S0…S{count-1}`; each after the first holds `members` members of the one before.
/// A method returns, and a signal carries, the last one.
fn nested(count: usize, members: usize) -> String {
    let mut text = String::from(
        "stingeripc: {version: 0.1.1}\ninterface: {name: Nested, version: 1.0.0}\nstructures:\n  \
         S0:\n    members:\n      - {name: v, type: integer}\n",
    );
    for i in 1..count {
        let _ = writeln!(text, "  S{i}:\n    members:");
        for j in 0..members {
            let _ = writeln!(text, "      - {{name: m{j}, type: struct, structName: S{}}}", i - 1);
        }
    }
    let last = count - 1;
    let _ = write!(
        text,
        "methods:\n  get:\n    arguments: []\n    returnValues:\n      \
         - {{name: s, type: struct, structName: S{last}}}\n\
         signals:\n  changed:\n    payload:\n      - {{name: s, type: struct, structName: S{last}}}\n"
    );
    text
}

/// A chain of `count` structs, each holding the one before, built in memory: `check` refuses
/// chains deeper than 32 in a file, but a program may build an [`Interface`] itself, and the
/// generators must stay fast and bounded for it.
fn chain(count: usize) -> Interface {
    let mut iface = interface(&nested(2, 1));
    let link = iface.structs[1].clone();
    for i in 2..count {
        let mut next = link.clone();
        next.name = format!("S{i}");
        next.fields[0].ty = Type::Struct { name: format!("S{}", i - 1) };
        iface.structs.push(next);
    }
    let last = Type::Struct { name: format!("S{}", count - 1) };
    iface.methods[0].returns[0].ty = last.clone();
    iface.signals[0].fields[0].ty = last;
    iface
}

fn interface(text: &str) -> Interface {
    let parsed = parse("nested.yaml", text, &mut NoLoader);
    let Some(iface) = parsed.interface.clone() else {
        panic!("the interface is valid:\n{}", parsed.render());
    };
    iface
}

/// The bytes `lang` generates for `iface`, and how long it took.
fn generated(iface: &Interface, lang: Lang) -> (usize, Duration) {
    let start = Instant::now();
    let files = switchboard_codegen::generate_files(iface, "nested.yaml", lang)
        .expect("generation succeeds");
    (files.iter().map(|f| f.contents.len()).sum(), start.elapsed())
}

/// 30 structs that each hold two of the one before (3.6 KB of YAML) made examples of 2^30
/// values: gigabytes of AsyncAPI and Markdown, then an allocation failure.
#[test]
fn doubling_structs_give_bounded_documents() {
    let text = nested(30, 2);
    let iface = interface(&text);
    for lang in [Lang::AsyncApi, Lang::Markdown] {
        let (bytes, _) = generated(&iface, lang);
        assert!(bytes < 200 * 1024, "{lang:?} gave {bytes} bytes for {} of YAML", text.len());
    }
}

/// A plain chain of structs made one example per struct as deep as the chain: O(n³) Markdown.
#[test]
fn a_chain_of_structs_gives_documents_proportional_to_it() {
    let text = nested(2_000, 1);
    let iface = chain(2_000);
    for lang in [Lang::AsyncApi, Lang::Markdown] {
        let (bytes, _) = generated(&iface, lang);
        assert!(bytes < 40 * text.len(), "{lang:?} gave {bytes} bytes for {} of YAML", text.len());
    }
}

/// An example too large to show is left out with a note; the reply example of the method says
/// so in Markdown, and the AsyncAPI document has no example payload for it.
#[test]
fn a_left_out_example_says_so() {
    let iface = interface(&nested(20, 2));
    let files = switchboard_codegen::generate_files(&iface, "nested.yaml", Lang::Markdown)
        .expect("generation succeeds");
    assert!(files[0].contents.contains("(example left out: it would take more than the 16 KiB"));
    let files = switchboard_codegen::generate_files(&iface, "nested.yaml", Lang::AsyncApi)
        .expect("generation succeeds");
    let document: serde_json::Value = serde_json::from_str(&files[0].contents).expect("JSON");
    let message = &document["channels"]["signal.changed"]["messages"]["signal"];
    assert_eq!(message["examples"], serde_json::Value::Null, "{message:#}");
}

/// Whatever name `check` accepts, every generator accepts too: names the character set allows
/// (`9`, `--`, `__`) passed `check` and then every generator refused them (defect 15).
#[test]
fn every_name_check_accepts_generates_in_every_language() {
    let names = [
        "9", "_9", "-9", "--", "__", "_", "-", "9a", "a", "_a", "-a", "a-", "a--b", "x9", "A_",
        "a_9",
    ];
    for name in names {
        for (place, text) in [
            ("method", format!("methods:\n  \"{name}\":\n    arguments: []\n")),
            (
                "argument",
                format!(
                    "methods:\n  m:\n    arguments:\n      - {{name: \"{name}\", type: integer}}\n"
                ),
            ),
            ("struct", format!("structures:\n  \"{name}\":\n    members: []\n")),
            ("enum value", format!("enums:\n  E:\n    values:\n      - {{name: \"{name}\"}}\n")),
        ] {
            let text = format!(
                "stingeripc: {{version: 0.1.1}}\ninterface: {{name: N, version: 1.0.0}}\n{text}"
            );
            let parsed = parse("names.yaml", &text, &mut NoLoader);
            let Some(iface) = parsed.interface else { continue };
            for lang in [Lang::Rust, Lang::Python, Lang::Cpp, Lang::AsyncApi, Lang::Markdown] {
                if let Err(e) = switchboard_codegen::generate_files(&iface, "names.yaml", lang) {
                    panic!("{place} `{name}` passes check, but {lang:?} refuses it: {e}");
                }
            }
        }
    }
}

/// Runs `work` on its own thread and fails when it takes longer than `limit`, rather than
/// waiting for a cubic algorithm to finish.
fn within(limit: Duration, what: &str, work: impl FnOnce() + Send + 'static) {
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        work();
        let _ = done.send(());
    });
    match finished.recv_timeout(limit) {
        Ok(()) => {}
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("{what} took over {limit:?}"),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => panic!("{what} panicked"),
    }
}

/// Rust generation searched every struct a field leads to with `Vec::contains`: cubic on a
/// chain of structs (10,000 took over a minute). It must stay near-linear, in every language.
#[test]
fn a_long_chain_of_structs_generates_quickly() {
    let iface = chain(5_000);
    for lang in [Lang::Rust, Lang::Markdown, Lang::AsyncApi, Lang::Python, Lang::Cpp] {
        let iface = iface.clone();
        within(
            Duration::from_secs(60),
            &format!("{lang:?} for 5,000 chained structs"),
            move || {
                let (bytes, _) = generated(&iface, lang);
                assert!(bytes > 0);
            },
        );
    }
}

/// Structs that contain each other inline, through optionals, are boxed where the cycle
/// closes, whatever the order they are declared in; structs that only lead into a cycle are
/// not.
#[test]
fn only_structs_of_one_cycle_box_each_other() {
    let text = "stingeripc: {version: 0.1.1}\ninterface: {name: Cycles, version: 1.0.0}\n\
        structures:\n  \
          Entry:\n    members:\n      - {name: a, type: struct, structName: A}\n  \
          A:\n    members:\n      - {name: b, type: struct, structName: B, optional: true}\n  \
          B:\n    members:\n      - {name: c, type: struct, structName: C}\n  \
          C:\n    members:\n      - {name: a, type: struct, structName: A, optional: true}\n      \
            - {name: me, type: struct, structName: C, optional: true}\n";
    let iface = interface(text);
    let files = switchboard_codegen::generate_files(&iface, "cycles.yaml", Lang::Rust)
        .expect("generation succeeds");
    let code: String = files[0].contents.split_whitespace().collect::<Vec<_>>().join(" ");
    for boxed in [
        "pub b: Option<Box<B>>",
        "pub c: Box<C>",
        "pub a: Option<Box<A>>",
        "pub me: Option<Box<C>>",
    ] {
        assert!(code.contains(boxed), "missing `{boxed}` in:\n{}", files[0].contents);
    }
    assert!(code.contains("pub a: A,"), "Entry's `a` is not in a cycle:\n{}", files[0].contents);
}

/// A chain of 200 structs passed `check`, and then the generated Rust did not compile
/// ("reached the recursion limit finding the struct tail"; 64 optional levels already fail).
/// `check` refuses more than 32 levels, naming the chain; 32 pass.
#[test]
fn check_refuses_structs_nested_deeper_than_rust_compiles() {
    let parsed = parse("nested.yaml", &nested(200, 1), &mut NoLoader);
    assert!(parsed.interface.is_none());
    let rendered = parsed.render();
    assert!(
        rendered.contains(
            "error[too-deep]: structure `S199` nests structures 200 deep \
             (S199 -> S198 -> S197 -> ... -> S1 -> S0); the limit is 32"
        ),
        "{rendered}"
    );
    assert!(parse("nested.yaml", &nested(33, 1), &mut NoLoader).interface.is_none());
    let iface = interface(&nested(32, 1));
    switchboard_codegen::generate_files(&iface, "nested.yaml", Lang::Rust).expect("generates");
}

/// Structs that hold each other in a ring are boxed by the generator, so the ring counts as one
/// level: a ring of 40 passes `check`.
#[test]
fn a_ring_of_structs_is_one_level() {
    let mut text = String::from(
        "stingeripc: {version: 0.1.1}\ninterface: {name: Ring, version: 1.0.0}\nstructures:\n",
    );
    for i in 0..40 {
        let next = (i + 1) % 40;
        let _ = writeln!(
            text,
            "  R{i}:\n    members:\n      - {{name: next, type: struct, structName: R{next}, optional: true}}"
        );
    }
    let iface = interface(&text);
    switchboard_codegen::generate_files(&iface, "ring.yaml", Lang::Rust).expect("generates");
}
