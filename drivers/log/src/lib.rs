//! keel-log
