//! Generates the keel.v1 messages and services with the protoc shipped inside the
//! `protoc-bin-vendored` crate, so a machine with only cargo can build.
//! madsim-tonic-build writes the tonic code plus a simulated twin under `OUT_DIR/sim/`,
//! which `tonic::include_proto!` picks when built with `--cfg madsim`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    std::env::set_var("PROTOC", protoc);
    println!("cargo:rerun-if-changed=proto/keel/v1/keel.proto");
    madsim_tonic_build::configure().compile_protos(&["proto/keel/v1/keel.proto"], &["proto"])?;
    Ok(())
}
