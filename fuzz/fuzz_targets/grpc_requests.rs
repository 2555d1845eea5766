//! gRPC request messages (protobuf bytes after a selector byte): decoding, the
//! service's conversion and checks, and the resulting engine inputs. The checks live in
//! keel-grpc's tests.
#![no_main]

#[path = "../../drivers/grpc/tests/fuzz_check/mod.rs"]
mod fuzz_check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_check::check(data));
