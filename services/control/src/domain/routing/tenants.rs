//! Routing per tenant: a shared default that a tenant may override, and
//! the connectors a tenant may use. A tenant that inherits the shared
//! routes gets them without the targets it may not use, so restricting a
//! tenant never needs a copy of every route.

use std::collections::BTreeMap;

use super::{DefaultConnectors, RouteConfig};

/// One value for each tenant that has its own, and a shared one for every
/// other tenant (the escalation policy's shape).
#[derive(Debug, Clone)]
pub struct PerTenant<T> {
    shared: T,
    tenants: BTreeMap<String, T>,
}

impl<T> PerTenant<T> {
    /// Every tenant uses `shared`.
    pub fn shared(shared: T) -> Self {
        Self {
            shared,
            tenants: BTreeMap::new(),
        }
    }

    /// `tenant` uses `value` instead of the shared one.
    pub fn with_tenant(mut self, tenant: impl Into<String>, value: T) -> Self {
        self.tenants.insert(tenant.into(), value);
        self
    }

    /// The tenant's own value, else the shared one.
    pub fn for_tenant(&self, tenant: &str) -> &T {
        self.tenants.get(tenant).unwrap_or(&self.shared)
    }
}

/// The shared routes and default connectors as a tenant that may use only
/// `allowed` connectors inherits them: targets on other connectors are
/// left out, a route left without targets is left out (its name is then
/// unknown to the tenant), and a default connector the tenant may not use
/// is no default for it.
pub fn inherited_by(
    routes: &[RouteConfig],
    defaults: &DefaultConnectors,
    allowed: &[String],
) -> (Vec<RouteConfig>, DefaultConnectors) {
    let may_use = |name: &String| allowed.contains(name);
    let routes = routes
        .iter()
        .filter_map(|route| {
            let targets: Vec<_> = route
                .targets
                .iter()
                .filter(|target| may_use(&target.connector))
                .cloned()
                .collect();
            (!targets.is_empty()).then(|| RouteConfig {
                targets,
                ..route.clone()
            })
        })
        .collect();
    let keep = |name: &Option<String>| name.clone().filter(may_use);
    let defaults = DefaultConnectors {
        queue: keep(&defaults.queue),
        phone_number: keep(&defaults.phone_number),
        sip_uri: keep(&defaults.sip_uri),
    };
    (routes, defaults)
}
