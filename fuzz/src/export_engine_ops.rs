//! Writes every input of `corpus/engine_ops/` as JSON into
//! `engine/tests/fuzz_corpus/engine_ops/<name>.json`, decoded exactly as the fuzz target
//! decodes it, so keel-engine's tests replay the corpus without depending on `arbitrary`.
//! Stale exports (whose input is gone) are removed.

#[path = "../../engine/tests/fuzz_ops/mod.rs"]
mod fuzz_ops;

use arbitrary::{Arbitrary, Unstructured};
use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let corpus = root.join("corpus/engine_ops");
    let out = root.join("../engine/tests/fuzz_corpus/engine_ops");
    std::fs::create_dir_all(&out)?;
    for old in std::fs::read_dir(&out)? {
        std::fs::remove_file(old?.path())?;
    }
    let mut count = 0;
    for entry in std::fs::read_dir(&corpus)? {
        let path = entry?.path();
        let bytes = std::fs::read(&path)?;
        // What libfuzzer-sys does with a typed fuzz_target! input; an input that does
        // not decode is skipped there too, so it has nothing to replay.
        let Ok(case) = fuzz_ops::Case::arbitrary_take_rest(Unstructured::new(&bytes)) else {
            eprintln!(
                "{} does not decode; remove it from the corpus",
                path.display()
            );
            continue;
        };
        let name = path.file_name().ok_or("corpus entry without a name")?;
        let target = out.join(format!("{}.json", name.to_string_lossy()));
        std::fs::write(target, serde_json::to_string_pretty(&case)? + "\n")?;
        count += 1;
    }
    println!("exported {count} inputs to {}", out.display());
    Ok(())
}
