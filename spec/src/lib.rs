//! keel-spec
