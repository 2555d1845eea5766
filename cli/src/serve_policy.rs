//! The server's policy file (`keel serve --policy FILE`): tenant caps and fair-share
//! weights, and the token buckets that pace grants. A restarted server whose file
//! differs from the log's configuration applies its own as a logged input, so a change
//! takes effect by editing the file and restarting (or failing over to a standby).
//!
//! ```toml
//! [tenants]
//! default_cap = 100            # tasks any tenant holds at once; default uncapped
//! caps = { acme = 8 }
//! weights = { acme = 2 }       # fair share when workers are scarce; default 1
//!
//! [rates.keys."api.example"]   # tasks naming rate_key = "api.example"
//! rate = 10                    # grants per `per`
//! per = "1s"                   # default 1s
//! burst = 20                   # in a row after a quiet spell; default `rate`
//!
//! [rates.tenants.acme]         # and [rates.lanes.NAME]
//! rate = 100
//! per = "1m"
//!
//! [budgets.acme.daily]         # every task of tenant acme counts against it
//! reset = "1d"                 # starts again from zero every day (UTC midnight)
//! on_hard = "finish"           # or "revoke"
//! tokens = { soft = 800000, hard = 1000000 }
//! attempts = { hard = 5000 }
//! ```

use crate::duration::parse_duration;
use keel_engine::{Config, Rate, RatePolicy, TenantBudgets, TenantPolicy};
use keel_jobs::BudgetTable;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    tenants: TenantsFile,
    #[serde(default)]
    rates: RatesFile,
    /// Tenant budgets: `[budgets.TENANT.NAME]`.
    #[serde(default)]
    budgets: BTreeMap<String, BTreeMap<String, BudgetTable>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantsFile {
    default_cap: Option<u32>,
    #[serde(default)]
    caps: BTreeMap<String, u32>,
    #[serde(default)]
    weights: BTreeMap<String, u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RatesFile {
    #[serde(default)]
    tenants: BTreeMap<String, RateFile>,
    #[serde(default)]
    lanes: BTreeMap<String, RateFile>,
    #[serde(default)]
    keys: BTreeMap<String, RateFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RateFile {
    rate: u32,
    per: Option<String>,
    burst: Option<u32>,
}

/// Reads the policy at `path` into `config`'s tenant and rate policy; the error names
/// the file and the key (with its line for a syntax error).
pub fn apply(path: &Path, config: &mut Config) -> Result<(), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("--policy {}: cannot read it: {e}", path.display()))?;
    let file: PolicyFile = toml::from_str(&text)
        .map_err(|e| format!("--policy {}: {}", path.display(), e.to_string().trim_end()))?;
    let rates = rate_policy(file.rates).map_err(|e| format!("--policy {}: {e}", path.display()))?;
    let budgets =
        tenant_budgets(file.budgets).map_err(|e| format!("--policy {}: {e}", path.display()))?;
    config.tenants = TenantPolicy {
        default_cap: file.tenants.default_cap,
        caps: file.tenants.caps,
        weights: file.tenants.weights,
    };
    config.rates = rates;
    config.budgets = budgets;
    Ok(())
}

/// Every tenant budget, checked as the engine will check it, so a mistake names its
/// key: `budgets.acme.daily.tokens: ...`.
fn tenant_budgets(
    file: BTreeMap<String, BTreeMap<String, BudgetTable>>,
) -> Result<TenantBudgets, String> {
    let mut out = TenantBudgets::new();
    for (tenant, set) in file {
        for (name, table) in set {
            let at = format!("budgets.{tenant}.{name}");
            let mut spec = table
                .to_spec(&name)
                .map_err(|(_, e)| format!("{at}.on_hard: {e}"))?;
            if let Some(reset) = &table.reset {
                let text = reset.get_ref();
                let ms = parse_duration(text).map_err(|e| format!("{at}.reset: {e}"))?;
                spec.reset_every_ms = Some(u64::try_from(ms.as_millis()).unwrap_or(u64::MAX));
            }
            spec.check(&name, true).map_err(|e| {
                let key = spec
                    .limits
                    .keys()
                    .find(|d| e.contains(&format!("dimension {d:?}")))
                    .map(|d| format!(".{d}"))
                    .unwrap_or_default();
                let e = e.replace("reset_every_ms", "reset (ms)");
                format!("{at}{key}: {e}")
            })?;
            out.entry(tenant.clone()).or_default().insert(name, spec);
        }
    }
    Ok(out)
}

fn rate_policy(file: RatesFile) -> Result<RatePolicy, String> {
    let scope = |name: &str, buckets: BTreeMap<String, RateFile>| {
        buckets
            .into_iter()
            .map(|(key, r)| Ok((key.clone(), rate(&format!("rates.{name}.{key:?}"), r)?)))
            .collect::<Result<BTreeMap<_, _>, String>>()
    };
    Ok(RatePolicy {
        tenants: scope("tenants", file.tenants)?,
        lanes: scope("lanes", file.lanes)?,
        keys: scope("keys", file.keys)?,
    })
}

/// One bucket; `per` is a duration from 1 ms to `u32::MAX` ms (about 49 days).
fn rate(at: &str, r: RateFile) -> Result<Rate, String> {
    let per_ms = match &r.per {
        None => 1_000,
        Some(text) => {
            let ms = parse_duration(text).map_err(|e| format!("{at}.per: {e}"))?;
            u32::try_from(ms.as_millis())
                .ok()
                .filter(|ms| *ms >= 1)
                .ok_or_else(|| format!("{at}.per must be from 1ms to 49d, not {text:?}"))?
        }
    };
    Ok(Rate {
        rate: r.rate,
        per_ms,
        burst: r.burst.unwrap_or(r.rate),
    })
}

/// The policy key a configuration field is read from, for refusals of
/// `Config::validate` (`rates.keys.api.per_ms` is the file's `rates.keys."api".per`).
pub fn file_key(field: &str) -> Option<String> {
    if !["tenants.", "rates.", "budgets."]
        .iter()
        .any(|p| field.starts_with(p))
    {
        return None;
    }
    Some(match field.strip_suffix(".per_ms") {
        Some(bucket) => format!("{bucket}.per"),
        None => field.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Config, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.toml");
        std::fs::write(&path, text).unwrap();
        let mut config = Config::default();
        apply(&path, &mut config).map(|()| config)
    }

    #[test]
    fn a_full_policy_reads_into_the_engine_configuration() {
        let config = load(
            "[tenants]\ndefault_cap = 100\ncaps = { acme = 8 }\nweights = { acme = 2 }\n\n\
             [rates.keys.\"api.example\"]\nrate = 10\nper = \"1s\"\nburst = 20\n\n\
             [rates.tenants.acme]\nrate = 100\nper = \"1m\"\n\n\
             [rates.lanes.batch]\nrate = 5\n",
        )
        .unwrap();
        assert_eq!(config.tenants.default_cap, Some(100));
        assert_eq!(config.tenants.cap("acme"), Some(8));
        assert_eq!(config.tenants.weight("acme"), 2);
        let key = config.rates.keys["api.example"];
        assert_eq!((key.rate, key.per_ms, key.burst), (10, 1_000, 20));
        let tenant = config.rates.tenants["acme"];
        assert_eq!(
            (tenant.rate, tenant.per_ms, tenant.burst),
            (100, 60_000, 100)
        );
        let lane = config.rates.lanes["batch"];
        assert_eq!((lane.rate, lane.per_ms, lane.burst), (5, 1_000, 5));
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn an_empty_file_is_no_policy() {
        let config = load("").unwrap();
        assert_eq!(config.tenants, TenantPolicy::default());
        assert!(config.rates.is_empty());
    }

    #[test]
    fn mistakes_are_refused_naming_the_key() {
        let cases = [
            (
                "[rates.keys.api]\nrate = 1\nburts = 2\n",
                "unknown field `burts`",
            ),
            ("[rates.keys.api]\nper = \"1s\"\n", "missing field `rate`"),
            ("[rates.keys.api]\nrate = -1\n", "line 2"),
            (
                "[rates.keys.api]\nrate = 1\nper = \"1\"\n",
                "rates.keys.\"api\".per",
            ),
            (
                "[rates.keys.api]\nrate = 1\nper = \"0s\"\n",
                "from 1ms to 49d",
            ),
            (
                "[rates.keys.api]\nrate = 1\nper = \"50d\"\n",
                "from 1ms to 49d",
            ),
            ("[tenant]\ncaps = {}\n", "unknown field `tenant`"),
        ];
        for (text, want) in cases {
            let err = load(text).unwrap_err();
            assert!(err.contains(want), "{text:?}: {err}");
            assert!(err.starts_with("--policy "), "{err}");
        }
    }

    #[test]
    fn tenant_budgets_read_with_their_reset_and_limits() {
        let config = load(
            "[budgets.acme.daily]\nreset = \"1d\"\non_hard = \"revoke\"\n\
             tokens = { soft = 800, hard = 1000 }\nattempts = { hard = 50 }\n",
        )
        .unwrap();
        let b = &config.budgets["acme"]["daily"];
        assert_eq!(b.reset_every_ms, Some(86_400_000));
        assert_eq!(b.on_hard, keel_engine::OnHard::Revoke);
        assert_eq!(b.limits["tokens"].soft, Some(800));
        assert_eq!(b.limits["attempts"].hard, Some(50));
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn budget_mistakes_are_refused_naming_the_file_and_key() {
        let cases = [
            (
                "[budgets.acme.daily]\ntokens = { soft = 9, hard = 5 }\n",
                "budgets.acme.daily.tokens: budget \"daily\" dimension \"tokens\": soft 9 is above hard 5",
            ),
            (
                "[budgets.acme.daily]\nreset = \"soon\"\ntokens = { hard = 5 }\n",
                "budgets.acme.daily.reset: ",
            ),
            (
                "[budgets.acme.daily]\nreset = \"10ms\"\ntokens = { hard = 5 }\n",
                "budgets.acme.daily: budget \"daily\": reset (ms) 10 is outside",
            ),
            (
                "[budgets.acme.daily]\non_hard = \"stop\"\ntokens = { hard = 5 }\n",
                "budgets.acme.daily.on_hard: budget \"daily\" on_hard must be",
            ),
            ("[budgets.acme.daily]\non_hard = \"finish\"\n", "limits no dimension"),
            ("[budgets.acme.daily]\ntokens = 5\n", "{ soft = 800, hard = 1000 }"),
        ];
        for (text, want) in cases {
            let err = load(text).unwrap_err();
            assert!(err.contains(want), "{text:?}: {err}");
            assert!(err.starts_with("--policy "), "{err}");
            assert!(err.contains("policy.toml"), "{err}");
        }
    }

    #[test]
    fn configuration_fields_map_to_file_keys() {
        assert_eq!(
            file_key("budgets.acme.daily").as_deref(),
            Some("budgets.acme.daily")
        );
        assert_eq!(
            file_key("rates.keys.api.per_ms").as_deref(),
            Some("rates.keys.api.per")
        );
        assert_eq!(
            file_key("tenants.caps.acme").as_deref(),
            Some("tenants.caps.acme")
        );
        assert_eq!(file_key("grant_ttl_ms"), None);
    }
}
