//! `[access]`: who may reach what behind `GET /auth` (compiled by
//! `sessiond_core::access`; this is only the configuration's shape).

use serde::{Deserialize, Serialize};
use sessiond_core::access::{PolicyKind, RuleError, RuleSpec, Rules};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccessConfig {
    /// What requests no rule matches need: `authenticated` (any session,
    /// the default), `public` or `deny`.
    pub default: PolicyKind,
    /// `[[access.rules]]`, first match wins.
    pub rules: Vec<RuleSpec>,
}

impl AccessConfig {
    /// The rules, compiled; an invalid one names its index, key and reason.
    pub fn compile(&self) -> Result<Rules, RuleError> {
        Rules::compile(&self.rules, self.default)
    }
}
