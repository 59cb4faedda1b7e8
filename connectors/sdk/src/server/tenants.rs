//! Which tenants a connector serves: shared by every tenant (the default)
//! or dedicated to some (`[server] tenants`). Checked before the connector
//! sees a request, so no connector can forget it.

use baton_service_kit::status::{FieldViolation, invalid_argument};
use tonic::Status;

/// The tenants whose transfers this connector takes; empty for all.
#[derive(Debug, Clone, Default)]
pub(crate) struct TenantScope {
    dedicated_to: Vec<String>,
}

impl TenantScope {
    pub(crate) fn new(dedicated_to: Vec<String>) -> Self {
        Self { dedicated_to }
    }

    /// Admits a request's tenant: INVALID_ARGUMENT naming `tenant` when it
    /// is empty or one this connector is not dedicated to.
    pub(crate) fn admit(&self, tenant: &str) -> Result<(), Status> {
        let refused = |description: String| {
            Err(invalid_argument(&[FieldViolation::new(
                "tenant",
                description,
            )]))
        };
        if tenant.is_empty() {
            return refused("is required: the tenant whose customer this is".into());
        }
        if !self.dedicated_to.is_empty() && !self.dedicated_to.iter().any(|t| t == tenant) {
            return refused(format!(
                "this connector serves tenants {:?} only, not {tenant:?}",
                self.dedicated_to
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;

    #[test]
    fn a_shared_connector_admits_every_tenant_but_none() {
        let shared = TenantScope::default();
        assert!(shared.admit("acme").is_ok());
        assert!(shared.admit("globex").is_ok());
        let refused = shared.admit("").expect_err("no tenant");
        assert_eq!(refused.code(), Code::InvalidArgument);
        assert!(refused.message().starts_with("tenant: "), "{refused:?}");
    }

    #[test]
    fn a_dedicated_connector_admits_its_tenants_only() {
        let dedicated = TenantScope::new(vec!["acme".into(), "initech".into()]);
        assert!(dedicated.admit("acme").is_ok());
        assert!(dedicated.admit("initech").is_ok());
        let refused = dedicated.admit("globex").expect_err("another tenant");
        assert_eq!(refused.code(), Code::InvalidArgument);
        assert!(refused.message().starts_with("tenant: "), "{refused:?}");
        assert!(refused.message().contains("\"globex\""), "{refused:?}");
        assert_eq!(
            dedicated.admit("").expect_err("no tenant").code(),
            Code::InvalidArgument
        );
    }
}
