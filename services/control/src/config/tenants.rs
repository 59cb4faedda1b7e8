//! `[tenants.<id>]`: what one tenant configures apart from the shared
//! default. A tenant not listed here, and every key a listed tenant leaves
//! out, uses the shared `routes`, `default_connectors` and `messages`. The
//! escalation policy stays under `[policy.tenants.<id>]`.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{ControlConfig, MessagesConfig};
use crate::disclosure::{DataPolicy, DataPolicyConfig};
use crate::domain::hours::BusinessHours;
use crate::domain::message::{CustomerMessages, MessageTemplates};
use crate::domain::routing::{DefaultConnectors, PerTenant, RouteConfig, Router, inherited_by};

/// One tenant's own routing and messages.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TenantConfig {
    /// The connectors this tenant's handoffs may reach; every configured
    /// connector when absent. Inherited routes lose the targets on other
    /// connectors; the tenant's own routes may not name them.
    pub connectors: Option<Vec<String>>,
    /// The tenant's routes, replacing the shared `[[routes]]` as a whole.
    pub routes: Option<Vec<RouteConfig>>,
    /// The tenant's default connectors, replacing `[default_connectors]`.
    pub default_connectors: Option<DefaultConnectors>,
    /// The tenant's customer messages, over the shared `[messages]`.
    pub messages: TenantMessagesConfig,
    /// The tenant's data policy, over the shared `[data_policy]`.
    pub data_policy: DataPolicyConfig,
}

/// A tenant's customer messages: its translations are added to (or
/// replace) the shared ones, language by language.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TenantMessagesConfig {
    /// The shared `messages.default_language` when unset.
    pub default_language: Option<String>,
    /// Messages by BCP 47 tag.
    pub translations: BTreeMap<String, String>,
    /// The tenant's wording of the wait and hours phrases, over the shared
    /// `[messages.templates]`, phrase by phrase.
    pub templates: BTreeMap<String, MessageTemplates>,
}

/// Routing and customer messages, resolved for each tenant.
#[derive(Debug, Clone)]
pub struct TenantScopes {
    pub routers: PerTenant<Router>,
    pub messages: PerTenant<CustomerMessages>,
}

impl ControlConfig {
    /// Checks the shared and every tenant's routes and messages against the
    /// configured connectors; the error names the key.
    pub fn tenant_scopes(&self) -> Result<TenantScopes, String> {
        let configured: Vec<&str> = self.connectors.keys().map(String::as_str).collect();
        let hours = self.business_hours()?;
        let router = Router::new(
            self.routes.clone(),
            self.default_connectors.clone(),
            &configured,
            &hours,
        )?;
        let messages =
            customer_messages(&self.messages, &TenantMessagesConfig::default(), "messages")?;
        let mut scopes = TenantScopes {
            routers: PerTenant::shared(router),
            messages: PerTenant::shared(messages),
        };
        for (id, tenant) in &self.tenants {
            if !baton_auth::principal::is_valid_tenant(id) {
                return Err(format!(
                    "tenants.{id:?}: a tenant id is 1 to 128 bytes without control characters"
                ));
            }
            let in_tenant = |error: String| format!("tenants.{id}.{error}");
            let router = self.tenant_router(id, tenant, &hours).map_err(in_tenant)?;
            let messages = customer_messages(&self.messages, &tenant.messages, "messages")
                .map_err(in_tenant)?;
            scopes.routers = scopes.routers.with_tenant(id, router);
            scopes.messages = scopes.messages.with_tenant(id, messages);
        }
        Ok(scopes)
    }

    /// Every route name any tenant may use (for bounded metric labels).
    pub fn all_routes(&self) -> Vec<RouteConfig> {
        let own = self.tenants.values().filter_map(|t| t.routes.as_ref());
        std::iter::once(&self.routes)
            .chain(own)
            .flatten()
            .cloned()
            .collect()
    }

    /// One tenant's router; errors name the key below `tenants.<id>.`.
    fn tenant_router(
        &self,
        id: &str,
        tenant: &TenantConfig,
        hours: &BTreeMap<String, BusinessHours>,
    ) -> Result<Router, String> {
        let allowed: Vec<String> = match &tenant.connectors {
            Some(allowed) => {
                if let Some((i, name)) = allowed
                    .iter()
                    .enumerate()
                    .find(|(_, name)| !self.connectors.contains_key(*name))
                {
                    return Err(format!(
                        "connectors[{i}]: no connector named {name:?} is configured"
                    ));
                }
                allowed.clone()
            }
            None => self.connectors.keys().cloned().collect(),
        };
        let (inherited_routes, inherited_defaults) =
            inherited_by(&self.routes, &self.default_connectors, &allowed);
        let routes = match &tenant.routes {
            Some(routes) => {
                for (i, route) in routes.iter().enumerate() {
                    for (j, target) in route.targets.iter().enumerate() {
                        let key = format!("routes[{i}].targets[{j}].connector");
                        self.may_use(id, &allowed, &key, &target.connector)?;
                    }
                }
                routes.clone()
            }
            None => inherited_routes,
        };
        let defaults = match &tenant.default_connectors {
            Some(defaults) => {
                for (kind, name) in [
                    ("queue", &defaults.queue),
                    ("phone_number", &defaults.phone_number),
                    ("sip_uri", &defaults.sip_uri),
                ] {
                    if let Some(name) = name {
                        let key = format!("default_connectors.{kind}");
                        self.may_use(id, &allowed, &key, name)?;
                    }
                }
                defaults.clone()
            }
            None => inherited_defaults,
        };
        let allowed: Vec<&str> = allowed.iter().map(String::as_str).collect();
        Router::new(routes, defaults, &allowed, hours)
    }

    /// The `[[hours]]` schedules by name, checked.
    fn business_hours(&self) -> Result<BTreeMap<String, BusinessHours>, String> {
        let mut by_name = BTreeMap::new();
        for (i, config) in self.hours.iter().enumerate() {
            let key = format!("hours[{i}]");
            let hours = BusinessHours::new(config, &key)?;
            if by_name.insert(config.name.clone(), hours).is_some() {
                return Err(format!(
                    "{key}.name: hours {:?} are defined twice",
                    config.name
                ));
            }
        }
        Ok(by_name)
    }

    /// Whether the tenant may use the connector `key` names.
    fn may_use(&self, id: &str, allowed: &[String], key: &str, name: &str) -> Result<(), String> {
        if !self.connectors.contains_key(name) {
            return Err(format!("{key}: unknown connector {name:?}"));
        }
        if !allowed.iter().any(|a| a == name) {
            return Err(format!(
                "{key}: tenant {id:?} may not use connector {name:?} (not in tenants.{id}.connectors)"
            ));
        }
        Ok(())
    }
}

/// The built-in messages, the shared translations, then the tenant's; the
/// shared templates with the tenant's over them. `key` names the tenant's
/// `messages` section in errors.
fn customer_messages(
    shared: &MessagesConfig,
    tenant: &TenantMessagesConfig,
    key: &str,
) -> Result<CustomerMessages, String> {
    let mut translations = shared.translations.clone();
    translations.extend(tenant.translations.clone());
    let default_language = tenant
        .default_language
        .as_deref()
        .unwrap_or(&shared.default_language);
    let mut templates = shared.templates.clone();
    for (language, phrases) in &tenant.templates {
        let merged = templates
            .get(language)
            .map_or_else(|| phrases.clone(), |shared| shared.overlaid(phrases));
        templates.insert(language.clone(), merged);
    }
    CustomerMessages::new(&translations, default_language)?
        .with_templates(&templates, &format!("{key}.templates"))
}

#[cfg(test)]
mod tests;

impl ControlConfig {
    /// The shared data policy and every tenant's, checked against the
    /// connectors and routes each may name; the error names the key.
    pub fn checked_data_policy(&self) -> Result<DataPolicy, String> {
        let connectors: Vec<&str> = self.connectors.keys().map(String::as_str).collect();
        let routes: Vec<&str> = self.routes.iter().map(|r| r.name.as_str()).collect();
        self.data_policy
            .check("data_policy", &connectors, &routes)?;
        let mut tenants = BTreeMap::new();
        for (id, tenant) in &self.tenants {
            let own_routes: Vec<&str> = match &tenant.routes {
                Some(own) => own.iter().map(|r| r.name.as_str()).collect(),
                None => routes.clone(),
            };
            tenant.data_policy.check(
                &format!("tenants.{id}.data_policy"),
                &connectors,
                &own_routes,
            )?;
            if tenant.data_policy != DataPolicyConfig::default() {
                tenants.insert(id.clone(), tenant.data_policy.clone());
            }
        }
        Ok(DataPolicy::new(
            self.data_policy.clone(),
            tenants,
            self.tenant_scopes()?.routers,
        ))
    }
}
