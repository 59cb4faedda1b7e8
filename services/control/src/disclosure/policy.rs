//! `[data_policy]`: per context field, per connector and per route, and
//! per tenant over the shared one, the form in which a handoff's context
//! goes to a connector. Plain Rust: resolving a policy needs no context.
//!
//! Layers, each setting only the keys it names, later ones winning: the
//! built-in [`Rules::BUILT_IN`], then `[data_policy.default]`,
//! `[data_policy.connectors.<connector>]`,
//! `[data_policy.routes.<route>.default]`,
//! `[data_policy.routes.<route>.connectors.<connector>]`, then the same
//! four under `[tenants.<id>.data_policy]` for the handoff's tenant.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::convert::context::{context as decode_context, conversation as decode_conversation};
use crate::domain::Handoff;
use crate::domain::routing::{PerTenant, Router};

/// How a field goes to a connector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Form {
    /// As the AI runtime sent it.
    Clear,
    /// With card numbers, national ids, e-mail addresses, phone numbers,
    /// IBANs and dates of birth masked (`baton-redaction`); a sensitive
    /// entity's whole value when nothing in it is recognised.
    Redacted,
    /// Left out: the human reads it through the signed context URL.
    Reference,
    /// Left out, and served nowhere: for the caller's number, which no
    /// page shows.
    Withheld,
}

impl Form {
    pub fn name(self) -> &'static str {
        match self {
            Form::Clear => "clear",
            Form::Redacted => "redacted",
            Form::Reference => "reference",
            Form::Withheld => "withheld",
        }
    }
}

/// The forms one layer of the policy sets; unset keys fall through to the
/// layer below.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FieldForms {
    pub summary: Option<Form>,
    pub transcript: Option<Form>,
    pub agent_notes: Option<Form>,
    /// What the AI tried, and the escalation reason's detail.
    pub attempts: Option<Form>,
    /// Entities not marked sensitive.
    pub entities: Option<Form>,
    /// Entities marked sensitive.
    pub sensitive_entities: Option<Form>,
    /// By entity type (`Entity.type`, e.g. "account", "card"), over the
    /// two above.
    pub entity_types: BTreeMap<String, Form>,
    /// The caller's number (`conversation.call.caller_number`): clear,
    /// redacted or withheld (no page serves it, so there is no reference).
    pub caller_number: Option<Form>,
}

/// One route's policy: for every connector, then per connector.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoutePolicyConfig {
    pub default: FieldForms,
    pub connectors: BTreeMap<String, FieldForms>,
}

/// `[data_policy]`, and `[tenants.<id>.data_policy]` over it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataPolicyConfig {
    /// For every connector.
    pub default: FieldForms,
    /// By connector name.
    pub connectors: BTreeMap<String, FieldForms>,
    /// By route name (a handoff whose target names the route).
    pub routes: BTreeMap<String, RoutePolicyConfig>,
}

impl DataPolicyConfig {
    /// The layers that apply to `connector` on `route`, lowest first.
    fn layers<'a>(&'a self, route: Option<&str>, connector: &str) -> Vec<&'a FieldForms> {
        let mut layers = vec![&self.default];
        layers.extend(self.connectors.get(connector));
        if let Some(route) = route.and_then(|r| self.routes.get(r)) {
            layers.push(&route.default);
            layers.extend(route.connectors.get(connector));
        }
        layers
    }

    /// Checks connector and route names against those configured; the
    /// error names the key below `prefix`.
    pub fn check(&self, prefix: &str, connectors: &[&str], routes: &[&str]) -> Result<(), String> {
        let known_connector = |key: String, name: &str| {
            if connectors.contains(&name) {
                Ok(())
            } else {
                Err(format!("{key}: no connector named {name:?} is configured"))
            }
        };
        check_forms(&format!("{prefix}.default"), &self.default)?;
        for (name, forms) in &self.connectors {
            let key = format!("{prefix}.connectors.{name}");
            known_connector(key.clone(), name)?;
            check_forms(&key, forms)?;
        }
        for (route, policy) in &self.routes {
            let key = format!("{prefix}.routes.{route}");
            if !routes.contains(&route.as_str()) {
                return Err(format!("{key}: no route named {route:?} is configured"));
            }
            check_forms(&format!("{key}.default"), &policy.default)?;
            for (name, forms) in &policy.connectors {
                let key = format!("{key}.connectors.{name}");
                known_connector(key.clone(), name)?;
                check_forms(&key, forms)?;
            }
        }
        Ok(())
    }
}

fn check_forms(key: &str, forms: &FieldForms) -> Result<(), String> {
    if forms.caller_number == Some(Form::Reference) {
        return Err(format!(
            "{key}.caller_number: no page serves the caller's number, so it has no reference: clear, redacted or withheld"
        ));
    }
    let context_fields = [
        ("summary", forms.summary),
        ("transcript", forms.transcript),
        ("agent_notes", forms.agent_notes),
        ("attempts", forms.attempts),
        ("entities", forms.entities),
        ("sensitive_entities", forms.sensitive_entities),
    ];
    let withheld = context_fields
        .into_iter()
        .find(|(_, form)| *form == Some(Form::Withheld))
        .map(|(name, _)| name.to_owned())
        .or_else(|| {
            forms
                .entity_types
                .iter()
                .find(|(_, form)| **form == Form::Withheld)
                .map(|(name, _)| format!("entity_types.{name}"))
        });
    if let Some(name) = withheld {
        return Err(format!(
            "{key}.{name}: the context URL serves every field of the context, so none is withheld: use reference"
        ));
    }
    match forms
        .entity_types
        .keys()
        .find(|t| t.is_empty() || t.len() > 128)
    {
        Some(bad) => Err(format!(
            "{key}.entity_types: {bad:?} is not an entity type (1 to 128 bytes)"
        )),
        None => Ok(()),
    }
}

/// The forms in effect for one connector, one route, one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    pub summary: Form,
    pub transcript: Form,
    pub agent_notes: Form,
    pub attempts: Form,
    pub entities: Form,
    pub sensitive_entities: Form,
    pub entity_types: BTreeMap<String, Form>,
    pub caller_number: Form,
}

impl Rules {
    /// Without any configuration: free text redacted, sensitive entities
    /// never in clear, the other entities as they are.
    pub const BUILT_IN: Rules = Rules {
        summary: Form::Redacted,
        transcript: Form::Redacted,
        agent_notes: Form::Redacted,
        attempts: Form::Redacted,
        entities: Form::Clear,
        sensitive_entities: Form::Redacted,
        entity_types: BTreeMap::new(),
        // The receiving platform presents the caller with it (a SIP
        // connector's caller ID, itself gated by its `send_sensitive`);
        // the connectors that have no use for it leave it out.
        caller_number: Form::Clear,
    };

    /// The form of an entity of `entity_type`.
    pub fn entity(&self, entity_type: &str, sensitive: bool) -> Form {
        match self.entity_types.get(entity_type) {
            Some(form) => *form,
            None if sensitive => self.sensitive_entities,
            None => self.entities,
        }
    }

    fn apply(&mut self, layer: &FieldForms) {
        let set = |form: &mut Form, value: Option<Form>| *form = value.unwrap_or(*form);
        set(&mut self.summary, layer.summary);
        set(&mut self.transcript, layer.transcript);
        set(&mut self.agent_notes, layer.agent_notes);
        set(&mut self.attempts, layer.attempts);
        set(&mut self.entities, layer.entities);
        set(&mut self.sensitive_entities, layer.sensitive_entities);
        set(&mut self.caller_number, layer.caller_number);
        self.entity_types.extend(layer.entity_types.clone());
    }
}

/// The checked data policies: the shared one and each tenant's, and the
/// routes, to find the route a handoff that names none was given.
#[derive(Debug, Clone, Default)]
pub struct DataPolicy {
    shared: DataPolicyConfig,
    tenants: BTreeMap<String, DataPolicyConfig>,
    routers: Option<PerTenant<Router>>,
}

impl DataPolicy {
    /// The policy of `shared` and of each tenant, checked by the caller
    /// (the configuration, which knows the connectors and routes), with
    /// the routers that find the route of a handoff that names none.
    pub fn new(
        shared: DataPolicyConfig,
        tenants: BTreeMap<String, DataPolicyConfig>,
        routers: PerTenant<Router>,
    ) -> Self {
        Self {
            shared,
            tenants,
            routers: Some(routers),
        }
    }

    /// The route whose rules apply to `handoff`: the one it names, else
    /// the one the control service picked for it from its target, intent
    /// and language. Asked at every attempt, so each attempt's disclosure
    /// follows the route its target came from.
    pub fn route_of(&self, handoff: &Handoff) -> Option<String> {
        let router = self.routers.as_ref()?.for_tenant(&handoff.tenant);
        let context = decode_context(&handoff.context);
        let intent = context.intent.map(|i| i.name).unwrap_or_default();
        let language = decode_conversation(&handoff.conversation).language;
        router
            .route_name(&handoff.requested_target, &intent, &language)
            .map(str::to_owned)
    }

    /// The forms for `tenant`'s handoff on `route` (when its target names
    /// one) going to `connector`.
    pub fn rules(&self, tenant: &str, route: Option<&str>, connector: &str) -> Rules {
        let mut rules = Rules::BUILT_IN;
        let own = self.tenants.get(tenant);
        for policy in std::iter::once(&self.shared).chain(own) {
            for layer in policy.layers(route, connector) {
                rules.apply(layer);
            }
        }
        rules
    }
}

#[cfg(test)]
mod tests;
