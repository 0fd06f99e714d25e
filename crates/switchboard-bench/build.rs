//! Generates the benchmark interface's (and the thermostat's) Rust through the same `Builder`
//! users call, and the benchmark interface's C++ (into `OUT_DIR/cpp`) for row 20's C++ peer.

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=bench.yaml");
    println!("cargo:rerun-if-changed=../../examples/thermostat/thermostat.yaml");
    let files = ["bench.yaml", "../../examples/thermostat/thermostat.yaml"];
    if let Err(error) = switchboard_codegen::Builder::new().compile(&files) {
        panic!("code generation failed:\n{error}");
    }
    let loaded = switchboard_codegen::load_file(Path::new("bench.yaml")).expect("read bench.yaml");
    let Some(iface) = loaded.parsed.interface.as_ref() else {
        panic!("bench.yaml has errors:\n{}", loaded.parsed.render());
    };
    let name = switchboard_codegen::source_name(Path::new("bench.yaml"));
    let cpp = switchboard_codegen::generate_files(iface, &name, switchboard_codegen::Lang::Cpp)
        .expect("the C++ of bench.yaml");
    let out = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("cpp");
    for file in cpp {
        let path = out.join(&file.path);
        std::fs::create_dir_all(path.parent().expect("a parent"))
            .expect("create the C++ directory");
        std::fs::write(&path, file.contents).expect("write the C++ of bench.yaml");
    }
}
