//! A new configuration, applied as a logged input: the timeouts, caps, weights and
//! limits in force from now on. What already exists keeps what it was given (a lease
//! its deadline, a stored output its place); what comes next meets the new values. A
//! tenant over a lowered cap keeps its running tasks and gets no grant until it is
//! under the cap.

use crate::config::Config;
use crate::output::Accepted;
use crate::reject::Rejection;
use crate::state::State;

pub(crate) fn configure(state: &mut State, config: Config) -> Result<Accepted, Rejection> {
    config.validate().map_err(|e| Rejection::InvalidConfig {
        field: e.field.clone(),
        problem: e.to_string(),
    })?;
    for (tenant, set) in &config.budgets {
        for (name, b) in set {
            b.check(name, true)
                .map_err(|problem| Rejection::InvalidConfig {
                    field: format!("budgets.{tenant}.{name}"),
                    problem,
                })?;
        }
    }
    state.config = config;
    for (i, load) in state.tenants.iter_mut().enumerate() {
        let id = i as u32;
        if state.names.tenants.refs(id) == 0 {
            continue;
        }
        let name = state.names.tenants.name(id);
        let policy = &state.config.tenants;
        load.cap = policy.cap(name);
        load.weight = policy.weight(name);
        load.over_cap = match load.cap {
            Some(cap) => load.active.saturating_sub(cap),
            None => 0,
        };
    }
    crate::rate::reconfigured(state);
    crate::budgets::reconfigured(state);
    state.dispatch_dirty = true;
    Ok(Accepted::Ok)
}
