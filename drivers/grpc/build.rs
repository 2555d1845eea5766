//! Generates the keel.v1 messages and services with the protoc shipped inside the
//! `protoc-bin-vendored` crate, so a machine with only cargo can build.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    std::env::set_var("PROTOC", protoc);
    println!("cargo:rerun-if-changed=proto/keel/v1/keel.proto");
    tonic_prost_build::configure().compile_protos(&["proto/keel/v1/keel.proto"], &["proto"])?;
    Ok(())
}
