//! Who is calling: a tenant, a subject within it, the credential used, and
//! the roles that credential grants.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// What a caller may do. Each gRPC method names the roles allowed to call
/// it (see [`crate::Permissions`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// An AI agent runtime: creates handoffs and follows them.
    AiRuntime,
    /// An agent desktop: reads and follows the handoffs it is shown.
    AgentDesktop,
    /// A contact-center supervisor: lists, reads, follows and cancels.
    Supervisor,
    /// An operator of the Baton installation: everything.
    Admin,
}

impl Role {
    /// Every role, in declaration order.
    pub const ALL: [Role; 4] = [
        Role::AiRuntime,
        Role::AgentDesktop,
        Role::Supervisor,
        Role::Admin,
    ];

    /// The name used in key files, JWT claims and configuration.
    pub fn name(self) -> &'static str {
        match self {
            Role::AiRuntime => "ai_runtime",
            Role::AgentDesktop => "agent_desktop",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
        }
    }

    /// The role called `name`, if any.
    pub fn from_name(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.name() == name)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// An authenticated caller. The auth layer puts one into every request's
/// extensions; handlers read it with [`Principal::of`] and scope every query
/// to [`Principal::tenant`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The tenant whose handoffs the caller may see. Never empty.
    pub tenant: String,
    /// Who the caller is within the tenant: a JWT's `sub`, or an API key's
    /// name (its id when it has none). For audit records.
    pub subject: String,
    /// Which credential authenticated the call, without its secret:
    /// `key:<id>` for an API key, `jwt:<kid>` (or `jwt:hs256`) for a JWT.
    pub credential_id: String,
    /// What the caller may do.
    pub roles: BTreeSet<Role>,
}

/// Longest tenant name accepted from a credential, in bytes.
pub const MAX_TENANT_BYTES: usize = 128;

impl Principal {
    /// The principal of a request, as inserted by the auth layer.
    #[cfg(feature = "grpc")]
    pub fn of<T>(request: &tonic::Request<T>) -> Option<&Principal> {
        request.extensions().get::<Principal>()
    }

    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

/// Whether `tenant` is acceptable as a tenant name: non-empty, short, and
/// without control characters (it reaches logs and SQL parameters).
pub fn is_valid_tenant(tenant: &str) -> bool {
    !tenant.is_empty() && tenant.len() <= MAX_TENANT_BYTES && !tenant.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_round_trip_through_serde_and_from_name() {
        for role in Role::ALL {
            let json = serde_json::to_string(&role).expect("serialises");
            assert_eq!(json, format!("\"{}\"", role.name()));
            assert_eq!(Role::from_name(role.name()), Some(role));
        }
        assert_eq!(Role::from_name("root"), None);
    }

    #[test]
    fn tenants_with_control_characters_or_too_long_are_refused() {
        assert!(is_valid_tenant("acme"));
        assert!(!is_valid_tenant(""));
        assert!(!is_valid_tenant("acme\r\nx-injected: 1"));
        assert!(!is_valid_tenant(&"a".repeat(MAX_TENANT_BYTES + 1)));
    }
}
