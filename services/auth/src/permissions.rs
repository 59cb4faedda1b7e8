//! Which roles may call which gRPC method.

use std::collections::{BTreeSet, HashMap};

use crate::principal::{Principal, Role};

/// The `HandoffService` methods, by full gRPC path.
pub mod handoff_v1 {
    pub const CREATE_HANDOFF: &str = "/baton.handoff.v1.HandoffService/CreateHandoff";
    pub const GET_HANDOFF: &str = "/baton.handoff.v1.HandoffService/GetHandoff";
    pub const LIST_HANDOFFS: &str = "/baton.handoff.v1.HandoffService/ListHandoffs";
    pub const CANCEL_HANDOFF: &str = "/baton.handoff.v1.HandoffService/CancelHandoff";
    pub const WATCH_HANDOFF: &str = "/baton.handoff.v1.HandoffService/WatchHandoff";
    pub const EVALUATE_ESCALATION: &str = "/baton.handoff.v1.HandoffService/EvaluateEscalation";
    pub const REVEAL_ENTITY: &str = "/baton.handoff.v1.HandoffService/RevealEntity";
    pub const REVOKE_CONTEXT_TOKENS: &str = "/baton.handoff.v1.HandoffService/RevokeContextTokens";
    pub const LIST_AUDIT_RECORDS: &str = "/baton.handoff.v1.HandoffService/ListAuditRecords";
    pub const CONVERSE_HANDOFF: &str = "/baton.handoff.v1.HandoffService/ConverseHandoff";
    pub const UPDATE_HANDOFF: &str = "/baton.handoff.v1.HandoffService/UpdateHandoff";
    pub const CHECK_AVAILABILITY: &str = "/baton.handoff.v1.HandoffService/CheckAvailability";
    pub const RECORD_OUTCOME: &str = "/baton.handoff.v1.HandoffService/RecordOutcome";
    pub const GET_OUTCOME_METRICS: &str = "/baton.handoff.v1.HandoffService/GetOutcomeMetrics";
}

/// Services anyone may call without a credential: health checks (load
/// balancers and orchestrators carry none) and reflection (it describes the
/// API, not any tenant's data).
pub const OPEN_SERVICES: [&str; 3] = [
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1.ServerReflection/",
    "/grpc.reflection.v1alpha.ServerReflection/",
];

/// The permission table: for each method, the roles allowed to call it.
/// [`Role::Admin`] may call every method, listed or not; any other role may
/// call only what is listed for it, so that a method added to a service
/// later is closed until someone decides who may call it.
#[derive(Debug, Clone)]
pub struct Permissions {
    methods: HashMap<String, BTreeSet<Role>>,
    open_prefixes: Vec<String>,
}

impl Default for Permissions {
    fn default() -> Self {
        Self::handoff_v1()
    }
}

impl Permissions {
    /// A table with only the open services and nothing else allowed (but
    /// to admins).
    pub fn empty() -> Self {
        Self {
            methods: HashMap::new(),
            open_prefixes: OPEN_SERVICES.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// The table for `baton.handoff.v1.HandoffService`:
    ///
    /// | method | ai_runtime | agent_desktop | supervisor |
    /// |---|---|---|---|
    /// | CreateHandoff | ✓ | | |
    /// | GetHandoff | ✓ | ✓ | ✓ |
    /// | ListHandoffs | | | ✓ |
    /// | CancelHandoff | ✓ | | ✓ |
    /// | WatchHandoff | ✓ | ✓ | ✓ |
    /// | EvaluateEscalation | ✓ | | |
    /// | RevealEntity | | ✓ | ✓ |
    /// | RevokeContextTokens | ✓ | | ✓ |
    /// | ListAuditRecords | | | ✓ |
    /// | ConverseHandoff | ✓ | | |
    /// | UpdateHandoff | ✓ | | |
    /// | CheckAvailability | ✓ | | ✓ |
    /// | RecordOutcome | ✓ | | ✓ |
    /// | GetOutcomeMetrics | | | ✓ |
    ///
    /// Admins may call all of them.
    pub fn handoff_v1() -> Self {
        use Role::*;
        use handoff_v1::*;
        Self::empty()
            .allow(CREATE_HANDOFF, &[AiRuntime])
            .allow(GET_HANDOFF, &[AiRuntime, AgentDesktop, Supervisor])
            .allow(LIST_HANDOFFS, &[Supervisor])
            .allow(CANCEL_HANDOFF, &[AiRuntime, Supervisor])
            .allow(WATCH_HANDOFF, &[AiRuntime, AgentDesktop, Supervisor])
            .allow(EVALUATE_ESCALATION, &[AiRuntime])
            .allow(REVEAL_ENTITY, &[AgentDesktop, Supervisor])
            .allow(REVOKE_CONTEXT_TOKENS, &[AiRuntime, Supervisor])
            .allow(LIST_AUDIT_RECORDS, &[Supervisor])
            .allow(CONVERSE_HANDOFF, &[AiRuntime])
            .allow(UPDATE_HANDOFF, &[AiRuntime])
            .allow(CHECK_AVAILABILITY, &[AiRuntime, Supervisor])
            .allow(RECORD_OUTCOME, &[AiRuntime, Supervisor])
            .allow(GET_OUTCOME_METRICS, &[Supervisor])
    }

    /// Also lets `roles` call `method` (a full path, `/package.Service/Method`).
    pub fn allow(mut self, method: &str, roles: &[Role]) -> Self {
        self.methods
            .entry(method.to_string())
            .or_default()
            .extend(roles.iter().copied());
        self
    }

    /// Lets anyone call every method whose path starts with `prefix`,
    /// without a credential.
    pub fn open(mut self, prefix: &str) -> Self {
        self.open_prefixes.push(prefix.to_string());
        self
    }

    /// Whether `path` may be called without a credential.
    pub fn is_open(&self, path: &str) -> bool {
        self.open_prefixes
            .iter()
            .any(|prefix| path.starts_with(prefix.as_str()))
    }

    /// Whether `principal` may call `path`.
    pub fn permits(&self, principal: &Principal, path: &str) -> bool {
        if principal.has_role(Role::Admin) {
            return true;
        }
        self.methods
            .get(path)
            .is_some_and(|allowed| principal.roles.iter().any(|role| allowed.contains(role)))
    }
}

#[cfg(test)]
mod tests {
    use super::handoff_v1::*;
    use super::*;

    fn principal(roles: &[Role]) -> Principal {
        Principal {
            tenant: "acme".into(),
            subject: "test".into(),
            credential_id: "key:test".into(),
            roles: roles.iter().copied().collect(),
        }
    }

    #[test]
    fn handoff_table_grants_each_role_its_methods_only() {
        let table = Permissions::handoff_v1();
        let all = [
            CREATE_HANDOFF,
            GET_HANDOFF,
            LIST_HANDOFFS,
            CANCEL_HANDOFF,
            WATCH_HANDOFF,
            EVALUATE_ESCALATION,
            REVEAL_ENTITY,
            REVOKE_CONTEXT_TOKENS,
            LIST_AUDIT_RECORDS,
            CONVERSE_HANDOFF,
            UPDATE_HANDOFF,
            CHECK_AVAILABILITY,
        ];
        let allowed = |roles: &[Role]| -> Vec<&str> {
            let principal = principal(roles);
            all.into_iter()
                .filter(|method| table.permits(&principal, method))
                .collect()
        };
        assert_eq!(
            allowed(&[Role::AiRuntime]),
            [
                CREATE_HANDOFF,
                GET_HANDOFF,
                CANCEL_HANDOFF,
                WATCH_HANDOFF,
                EVALUATE_ESCALATION,
                REVOKE_CONTEXT_TOKENS,
                CONVERSE_HANDOFF,
                UPDATE_HANDOFF,
                CHECK_AVAILABILITY
            ]
        );
        assert_eq!(
            allowed(&[Role::AgentDesktop]),
            [GET_HANDOFF, WATCH_HANDOFF, REVEAL_ENTITY]
        );
        assert_eq!(
            allowed(&[Role::Supervisor]),
            [
                GET_HANDOFF,
                LIST_HANDOFFS,
                CANCEL_HANDOFF,
                WATCH_HANDOFF,
                REVEAL_ENTITY,
                REVOKE_CONTEXT_TOKENS,
                LIST_AUDIT_RECORDS,
                CHECK_AVAILABILITY
            ]
        );
        assert_eq!(allowed(&[Role::Admin]), all);
        assert!(allowed(&[]).is_empty());
    }

    #[test]
    fn unknown_methods_are_closed_to_all_but_admins() {
        let table = Permissions::handoff_v1();
        let method = "/baton.handoff.v1.HandoffService/DeleteEverything";
        assert!(!table.permits(&principal(&[Role::AiRuntime, Role::Supervisor]), method));
        assert!(table.permits(&principal(&[Role::Admin]), method));
    }

    #[test]
    fn health_and_reflection_are_open_and_nothing_else() {
        let table = Permissions::handoff_v1();
        assert!(table.is_open("/grpc.health.v1.Health/Check"));
        assert!(table.is_open("/grpc.health.v1.Health/Watch"));
        assert!(table.is_open("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"));
        assert!(table.is_open("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"));
        assert!(!table.is_open(GET_HANDOFF));
        // A prefix match must not let a look-alike service through.
        assert!(!table.is_open("/grpc.health.v1.HealthX/Check"));
    }
}
