//! Generates the benchmark interface's (and the thermostat's) Rust through the same `Builder`
//! users call.

fn main() {
    println!("cargo:rerun-if-changed=bench.yaml");
    println!("cargo:rerun-if-changed=../../examples/thermostat/thermostat.yaml");
    let files = ["bench.yaml", "../../examples/thermostat/thermostat.yaml"];
    if let Err(error) = switchboard_codegen::Builder::new().compile(&files) {
        panic!("code generation failed:\n{error}");
    }
}
