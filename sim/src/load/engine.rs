//! The engine's own configuration floors in a scenario's `[engine]` table.

use super::Ctx;
use crate::scenario::Scenario;
use crate::ScenarioError;

/// The engine's own configuration floors (a zero liveness timeout livelocks a run),
/// reported at the `[engine]` key that set the value.
pub(super) fn check(ctx: &Ctx, s: &Scenario) -> Result<(), ScenarioError> {
    let Err(e) = crate::setup::engine_config(s, 0).validate() else {
        return Ok(());
    };
    let key = match e.field.as_str() {
        "blacklist.threshold" => "blacklist_threshold".to_string(),
        "blacklist.window_ms" => "blacklist_window_ms".to_string(),
        "blacklist.cooldown_ms" => "blacklist_cooldown_ms".to_string(),
        field => match field.strip_prefix("tenants.caps.") {
            Some(_) => "tenant_caps".to_string(),
            None => field.to_string(),
        },
    };
    let header = ctx.header("[engine]", 0);
    let at = header.clone().and_then(|h| {
        let from = h.end;
        let i = ctx.src[from..].find(&format!("\n{key}"))? + from + 1;
        Some(i..i + key.len())
    });
    let name = match e.field.strip_prefix("tenants.caps.") {
        Some(tenant) => format!("engine.tenant_caps.{tenant}"),
        None => format!("engine.{key}"),
    };
    Err(ctx.err(at.or(header), e.message_for(&name)))
}
