//! From a verified ID token's claims to the desk account it signs in: the
//! account id, the name shown, the role (through the configured map of the
//! issuer's groups), the tenants and an agent's skills. Anything missing
//! or out of bounds refuses the sign-in rather than guess.

use serde_json::Value;

use super::config::OidcConfig;
use super::verify::Claims;
use crate::accounts::{Account, Role, check_tenants};
use crate::config::valid_agent_id;

/// Why verified claims do not make a desk account.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityRefused {
    #[error("claim {claim}: {why}")]
    Claim { claim: String, why: String },
    #[error("none of the groups in claim {0} gives a desk role")]
    NoRole(String),
}

/// The account the claims stand for (no password: it signed in at the
/// issuer).
pub fn account_of(claims: &Claims, config: &OidcConfig) -> Result<Account, IdentityRefused> {
    let refused = |claim: &str, why: &str| IdentityRefused::Claim {
        claim: claim.to_owned(),
        why: why.to_owned(),
    };
    let name = claim(claims, &config.account_claim)
        .and_then(Value::as_str)
        .ok_or_else(|| refused(&config.account_claim, "missing"))?;
    if !valid_agent_id(name) {
        return Err(refused(
            &config.account_claim,
            "1 to 64 letters, digits, '.', '_', '-' or '@'",
        ));
    }
    let display_name = claim(claims, &config.name_claim)
        .and_then(Value::as_str)
        .map(|n| n.chars().take(128).collect::<String>())
        .filter(|n| !n.trim().is_empty());

    let role = strings(claim(claims, &config.roles_claim))
        .iter()
        .filter_map(|group| config.roles.get(group).copied())
        .max_by_key(|role| rank(*role))
        .ok_or_else(|| IdentityRefused::NoRole(config.roles_claim.clone()))?;

    let mut tenants = strings(claim(claims, &config.tenant_claim));
    if tenants.is_empty()
        && let Some(tenant) = &config.default_tenant
    {
        tenants.push(tenant.clone());
    }
    check_tenants(role, &tenants).map_err(|why| refused(&config.tenant_claim, &why))?;

    let skills = config
        .skills_claim
        .as_deref()
        .map(|c| strings(claim(claims, c)))
        .unwrap_or_default();
    Ok(Account {
        name: name.to_owned(),
        display_name,
        role,
        tenants,
        skills,
        contact: String::new(),
        password: String::new(),
    })
}

fn rank(role: Role) -> u8 {
    match role {
        Role::Agent => 0,
        Role::Supervisor => 1,
        Role::Admin => 2,
    }
}

/// The claim of `path`: a top-level claim of that exact name (claim names
/// may hold dots, as URLs do), else a dotted path into objects
/// (`realm_access.roles`).
fn claim<'a>(claims: &'a Claims, path: &str) -> Option<&'a Value> {
    if let Some(value) = claims.get(path) {
        return Some(value);
    }
    let mut parts = path.split('.');
    let first = claims.get(parts.next()?)?;
    parts.try_fold(first, |value, part| value.get(part))
}

/// A string claim as one value, an array's strings, else nothing.
fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(one)) => vec![one.clone()],
        Some(Value::Array(many)) => many
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> OidcConfig {
        toml::from_str(
            "issuer = \"https://idp.example.com\"\nclient_id = \"desk\"\n\
             redirect_url = \"https://desk.example.com/auth/oidc/callback\"\n\
             roles_claim = \"realm_access.roles\"\nskills_claim = \"skills\"\n\
             [roles]\ndesk-agents = \"agent\"\ndesk-supervisors = \"supervisor\"\n",
        )
        .expect("parses")
    }

    fn claims(value: Value) -> Claims {
        match value {
            Value::Object(map) => map,
            _ => unreachable!("an object"),
        }
    }

    #[test]
    fn groups_map_to_the_highest_role_and_the_tenant_claim_scopes_it() {
        let account = account_of(
            &claims(serde_json::json!({
                "preferred_username": "sue",
                "name": "Sue Supervisor",
                "realm_access": {"roles": ["desk-agents", "desk-supervisors", "other"]},
                "tenant": ["acme", "globex"],
            })),
            &config(),
        )
        .expect("an account");
        assert_eq!(account.role, Role::Supervisor);
        assert_eq!(account.tenants, ["acme", "globex"]);
        assert_eq!(account.display_name.as_deref(), Some("Sue Supervisor"));
        assert!(account.password.is_empty());

        let agent = account_of(
            &claims(serde_json::json!({
                "preferred_username": "ann",
                "realm_access": {"roles": "desk-agents"},
                "tenant": "acme",
                "skills": ["support", "billing"],
            })),
            &config(),
        )
        .expect("an account");
        assert_eq!(agent.role, Role::Agent);
        assert_eq!(agent.skills, ["support", "billing"]);
        assert_eq!(agent.display_name, None);
    }

    #[test]
    fn no_role_a_bad_account_or_a_wrong_tenant_is_refused() {
        let refused = |value: Value| account_of(&claims(value), &config()).expect_err("refused");
        assert!(matches!(
            refused(
                serde_json::json!({"preferred_username": "eve", "realm_access": {"roles": ["other"]}, "tenant": "acme"})
            ),
            IdentityRefused::NoRole(_)
        ));
        assert!(matches!(
            refused(
                serde_json::json!({"preferred_username": "<b>", "realm_access": {"roles": ["desk-agents"]}, "tenant": "acme"})
            ),
            IdentityRefused::Claim { .. }
        ));
        // An agent belongs to exactly one tenant; without one, no default.
        for tenant in [serde_json::json!(["acme", "globex"]), Value::Null] {
            assert!(matches!(
                refused(
                    serde_json::json!({"preferred_username": "ann", "realm_access": {"roles": ["desk-agents"]}, "tenant": tenant})
                ),
                IdentityRefused::Claim { .. }
            ));
        }
        let mut single = config();
        single.default_tenant = Some("acme".into());
        let account = account_of(
            &claims(serde_json::json!({"preferred_username": "ann", "realm_access": {"roles": ["desk-agents"]}})),
            &single,
        )
        .expect("the default tenant");
        assert_eq!(account.tenants, ["acme"]);
        // "*" is an admin's only.
        assert!(matches!(
            refused(
                serde_json::json!({"preferred_username": "sue", "realm_access": {"roles": ["desk-supervisors"]}, "tenant": "*"})
            ),
            IdentityRefused::Claim { .. }
        ));
    }
}
