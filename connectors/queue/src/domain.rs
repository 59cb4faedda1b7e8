//! The queue itself, in plain Rust: queues, agents, waiting contacts,
//! routing, offers and the wait estimate. Time is passed in (milliseconds
//! since the Unix epoch) so that routing is deterministic and testable, and
//! so that waits survive a restart of the process.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch.
pub type Millis = u64;

/// A waiting contact's place in the serving order: queue priority, then
/// the handoff's (both highest first), then the longest wait, then the
/// handoff id.
type ServingKey<'a> = (
    std::cmp::Reverse<u32>,
    std::cmp::Reverse<u32>,
    Millis,
    &'a str,
);

/// A queue: what skills its contacts need and how urgent it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueSpec {
    /// The name targets use (`target.queue.name`).
    pub name: String,
    /// The tenant the queue is configured for. Unset: every tenant has a
    /// queue of this name with these settings, its own (acme's `support`
    /// and globex's `support` never share a line, agents or estimates),
    /// unless the tenant configures its own queue of the name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Skills every agent taking this queue's contacts must have.
    #[serde(default)]
    pub skills: Vec<String>,
    /// Higher is served first, across queues. Default 0.
    #[serde(default)]
    pub priority: u32,
    /// A contact waiting longer, or estimated to, fails with WAIT_TOO_LONG
    /// so the control service falls back. Default 10m.
    #[serde(with = "humantime_serde", default = "default_max_wait")]
    pub max_wait: Duration,
    /// Above this estimated wait the customer is offered a callback
    /// instead of waiting. Default 3m; unset to never offer one.
    #[serde(with = "humantime_serde", default = "default_callback_threshold")]
    pub callback_threshold: Option<Duration>,
}

fn default_max_wait() -> Duration {
    Duration::from_secs(10 * 60)
}

fn default_callback_threshold() -> Option<Duration> {
    Some(Duration::from_secs(3 * 60))
}

impl QueueSpec {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            tenant: None,
            skills: Vec::new(),
            priority: 0,
            max_wait: default_max_wait(),
            callback_threshold: default_callback_threshold(),
        }
    }
}

/// One tenant's queue of a name: the unit of waiting lines, handle times
/// and estimates.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QueueKey {
    pub tenant: String,
    pub name: String,
}

impl QueueKey {
    pub fn new(tenant: &str, name: &str) -> Self {
        Self {
            tenant: tenant.to_owned(),
            name: name.to_owned(),
        }
    }

    /// The queue a contact waits in.
    pub fn of(contact: &Contact) -> Self {
        Self::new(&contact.tenant, &contact.queue)
    }
}

impl std::fmt::Display for QueueKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.tenant, self.name)
    }
}

/// How offers and estimates behave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// How long an agent has to accept an offer before it goes to the next.
    pub offer_timeout: Duration,
    /// The handle time assumed until a queue has handled contacts.
    pub initial_handle_time: Duration,
    /// How many recent handle times the estimate averages.
    pub handle_time_samples: usize,
    /// How many chats an agent holds at once (offered or connected) unless
    /// their profile says otherwise. A call is always held alone.
    pub chat_capacity: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            offer_timeout: Duration::from_secs(20),
            initial_handle_time: Duration::from_secs(4 * 60),
            handle_time_samples: 20,
            chat_capacity: 3,
        }
    }
}

/// An agent's availability, as the agent (or the queue) sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentState {
    /// Ready for the next offer.
    Available,
    /// On a contact (connected or wrapping up).
    Busy,
    /// Signed in but not taking offers (break, or a missed offer).
    Away,
    /// Signed out.
    Offline,
}

/// A human who takes contacts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agent {
    pub id: String,
    pub name: String,
    /// The tenant whose customers the agent takes (and only theirs).
    /// Empty in state written before tenants.
    #[serde(default)]
    pub tenant: String,
    pub skills: BTreeSet<String>,
    /// Where the voice leg goes: a SIP URI or an E.164 number.
    pub contact: String,
    pub state: AgentState,
    /// When the state last changed: for an available agent, idle since.
    pub state_since: Millis,
    /// How many chats the agent holds at once; None: the policy's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_capacity: Option<u32>,
}

impl Agent {
    fn has_skills(&self, needed: &BTreeSet<String>) -> bool {
        needed.is_subset(&self.skills)
    }

    /// Whether the agent may be offered `contact`: same tenant, the skills.
    fn can_take(&self, contact: &Contact) -> bool {
        self.tenant == contact.tenant && self.has_skills(&contact.skills)
    }

    fn is_logged_in(&self) -> bool {
        self.state != AgentState::Offline
    }
}

/// Why a contact left the queue without a human.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// No agent with the skills is signed in.
    NoAgents,
    /// The wait is, or is estimated to be, beyond the queue's maximum.
    WaitTooLong,
    /// Every agent with the skills let the offer time out (or declined,
    /// the last one timing out).
    NoAnswer,
    /// Every agent with the skills declined, the last one explicitly.
    Rejected,
    /// The target names a queue that is not configured.
    UnknownQueue,
    /// A callback's window closed before an agent took it.
    WindowClosed,
}

/// Where a contact is in its life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Phase {
    Waiting,
    Offered {
        agent: String,
        until: Millis,
    },
    Connected {
        agent: String,
        since: Millis,
    },
    Completed {
        agent: String,
        disposition: String,
        /// The agent's wrap-up notes; absent in state written before notes
        /// travelled with the contact.
        #[serde(default)]
        notes: String,
        /// The agent's one-click answers at wrap-up; absent in state
        /// written before they were asked.
        #[serde(default)]
        judgements: Judgements,
        /// Set when the agent handed the customer back to the AI: the
        /// instruction for the AI (possibly empty). None for a wrap-up.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hand_back: Option<String>,
    },
    Failed {
        refusal: Refusal,
        detail: String,
    },
}

impl Phase {
    pub fn is_ended(&self) -> bool {
        matches!(self, Phase::Completed { .. } | Phase::Failed { .. })
    }
}

/// What the agent answered at wrap-up, one click each, about the handoff
/// itself: whether the context was enough to help without asking again,
/// whether the customer had to repeat anything, and whether the customer
/// needed a human at all. None: not answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Judgements {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_sufficient: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_repeated: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalation_needed: Option<bool>,
}

/// How an agent passed on an offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pass {
    Declined,
    Missed,
}

/// What a contact takes of its agent's attention.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Media {
    /// A call, or a channel not stated (the contract treats it as voice):
    /// the agent takes nothing else meanwhile.
    #[default]
    Voice,
    /// A chat: the agent may hold several at once, up to their capacity.
    Chat,
}

/// A customer waiting for (or with) a human.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub handoff_id: String,
    pub attempt: u32,
    /// The tenant whose customer this is (the transfer's `tenant`). Empty
    /// in state written before tenants.
    #[serde(default)]
    pub tenant: String,
    pub queue: String,
    /// Voice in state written before chats shared an agent: one contact
    /// per agent, as then.
    #[serde(default)]
    pub media: Media,
    /// The queue's skills and the target's.
    pub skills: BTreeSet<String>,
    /// The handoff's priority (0–9).
    pub priority: u32,
    pub enqueued_at: Millis,
    pub phase: Phase,
    /// Agents who declined or missed the offer; never offered it again.
    pub passed: BTreeMap<String, Pass>,
    /// The most recent pass, which decides NO_ANSWER versus REJECTED.
    pub last_pass: Option<Pass>,
    /// Set when the customer is to be called back (the transfer's
    /// `callback`): offered only inside its window, dialed once an agent
    /// takes it. State written before callbacks came from the contract
    /// reads as none.
    #[serde(
        default,
        deserialize_with = "callback::stored_callback",
        skip_serializing_if = "Option::is_none"
    )]
    pub callback: Option<CallbackRequest>,
    /// Set on a contact restored after a restart until its transfer is
    /// re-attached: see [`Hold`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<Hold>,
}

impl Contact {
    pub fn is_held(&self) -> bool {
        self.held.is_some()
    }
}

/// A restored contact whose transfer the control service has not re-attached
/// yet. The control service may have moved the customer elsewhere while this
/// process was down (a fallback target), so a held contact is never offered
/// to anyone: it waits, invisible to desktops, until the control service
/// re-attaches (StartTransfer again for the same handoff), cancels it, or
/// the re-attach grace period ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// The agent the contact was offered to when the process stopped. The
    /// offer is not shown while held (nor expired: the agent is not marked
    /// away for it); once re-attached, it goes back to this agent first if
    /// they are still free, and otherwise waits like any contact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offered_to: Option<String>,
}

/// Why a contact was withdrawn from the queue without an outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WithdrawalReason {
    /// The control service cancelled the transfer (the customer hung up, or
    /// the handoff moved to another target).
    Cancelled,
    /// Restored after a restart, it was not re-attached within the grace
    /// period: the control service gave it up.
    NotReattached,
}

/// A transfer the queue withdrew: remembered so that the same attempt (or
/// an older one) arriving late never puts the customer back in line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Withdrawal {
    /// The highest attempt withdrawn.
    pub attempt: u32,
    pub reason: WithdrawalReason,
    pub at: Millis,
}

/// How long a withdrawal is remembered: far longer than any transfer's
/// deadline or the control service's retries.
pub const WITHDRAWALS_KEPT: Duration = Duration::from_secs(24 * 60 * 60);

/// How a transfer was taken in by [`Queues::enqueue`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admitted {
    /// A new contact.
    New,
    /// The contact of the same handoff and attempt was already here (a
    /// re-attach after a restart): kept as it is, and no longer held.
    Reattached,
    /// The contact of an earlier attempt of the same handoff was here (its
    /// end never reached this queue): this attempt takes it over with its
    /// place in line, its offer or its agent, so that the customer has one
    /// contact only.
    TookOver { from_attempt: u32 },
}

/// Why a transfer was not taken in by [`Queues::enqueue`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotAdmitted {
    /// Nobody could take it.
    Refused(Refusal),
    /// This attempt (or a later one) of the handoff was withdrawn.
    Withdrawn(Withdrawal),
    /// A later attempt of the handoff holds the contact.
    Superseded { attempt: u32 },
    /// The handoff's contact here is another tenant's.
    OtherTenant,
}

impl From<Refusal> for NotAdmitted {
    fn from(refusal: Refusal) -> Self {
        Self::Refused(refusal)
    }
}

/// A new contact for [`Queues::enqueue`].
#[derive(Debug, Clone)]
pub struct NewContact {
    pub handoff_id: String,
    pub attempt: u32,
    pub tenant: String,
    pub queue: String,
    pub media: Media,
    pub skills: Vec<String>,
    pub priority: u32,
    /// The customer is to be called back, not transferred.
    pub callback: Option<CallbackRequest>,
}

/// Why an agent's request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeskError {
    #[error("no agent {0:?} is signed in")]
    UnknownAgent(String),
    #[error("handoff {0:?} is not in the queue")]
    UnknownContact(String),
    #[error("handoff {0:?} is not offered to this agent")]
    NotOffered(String),
    #[error("handoff {0:?} is not connected to this agent")]
    NotConnected(String),
    #[error("finish the current contact before changing state")]
    OnContact,
}

/// Who an agent is, as they sign in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentProfile {
    pub name: String,
    pub tenant: String,
    pub skills: BTreeSet<String>,
    /// Where the voice leg goes: a SIP URI or an E.164 number.
    pub contact: String,
    /// How many chats the agent holds at once; None: the policy's.
    pub chat_capacity: Option<u32>,
}

/// Where a waiting contact stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// 1-based position among the waiting contacts of its queue.
    pub position: u32,
    pub estimated_wait: Duration,
    /// The estimate is above the queue's callback threshold.
    pub callback_offered: bool,
}

/// Who is there to take a contact at a queue now (see
/// [`Queues::availability`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueAvailability {
    /// Signed-in agents of the queue's tenant with the skills.
    pub agents_signed_in: u32,
    /// Of those, the ones the contact could be offered to now.
    pub agents_available: u32,
    /// Contacts waiting in the queue (not offered, not held).
    pub waiting: u32,
    /// The 1-based position the contact would take.
    pub position: u32,
    /// None when nobody with the skills is signed in: the queue would
    /// refuse the contact (no agents) rather than keep it waiting.
    pub estimated_wait: Option<Duration>,
}

/// All queues, agents and contacts of one connector.
#[derive(Debug, Clone)]
pub struct Queues {
    policy: Policy,
    /// As configured: a spec with a tenant is that tenant's; one without
    /// is every other tenant's.
    queues: Vec<QueueSpec>,
    agents: BTreeMap<String, Agent>,
    contacts: BTreeMap<String, Contact>,
    /// Recent handle times per queue, newest last, in milliseconds.
    handle_times: BTreeMap<QueueKey, VecDeque<u64>>,
    /// Transfers withdrawn, by handoff.
    withdrawn: BTreeMap<String, Withdrawal>,
}

impl Queues {
    pub fn new(policy: Policy, queues: impl IntoIterator<Item = QueueSpec>) -> Self {
        Self {
            policy,
            queues: queues.into_iter().collect(),
            agents: BTreeMap::new(),
            contacts: BTreeMap::new(),
            handle_times: BTreeMap::new(),
            withdrawn: BTreeMap::new(),
        }
    }

    /// The settings of a tenant's queue: its own spec of the name, else
    /// the shared one; None when neither is configured.
    pub fn spec(&self, key: &QueueKey) -> Option<&QueueSpec> {
        self.spec_of(&key.tenant, &key.name)
    }

    /// [`spec`](Self::spec) of `tenant`'s queue `name`, without building
    /// its key (the serving order asks for every waiting contact's).
    fn spec_of(&self, tenant: &str, name: &str) -> Option<&QueueSpec> {
        let named = || self.queues.iter().filter(|q| q.name == name);
        named()
            .find(|q| q.tenant.as_deref() == Some(tenant))
            .or_else(|| named().find(|q| q.tenant.is_none()))
    }

    /// The queues `tenant` has: its own and the shared ones it does not
    /// override, by name.
    pub fn tenant_queues(&self, tenant: &str) -> Vec<&QueueSpec> {
        let mut names: Vec<&str> = self
            .queues
            .iter()
            .filter(|q| q.tenant.as_deref().is_none_or(|t| t == tenant))
            .map(|q| q.name.as_str())
            .collect();
        names.sort_unstable();
        names.dedup();
        names
            .into_iter()
            .filter_map(|name| self.spec(&QueueKey::new(tenant, name)))
            .collect()
    }

    /// The tenants with a queue of their own, an agent or a contact here.
    pub fn tenants(&self) -> BTreeSet<String> {
        let configured = self.queues.iter().filter_map(|q| q.tenant.clone());
        let agents = self.agents.values().map(|a| a.tenant.clone());
        let contacts = self.contacts.values().map(|c| c.tenant.clone());
        configured.chain(agents).chain(contacts).collect()
    }

    pub fn agents(&self) -> impl Iterator<Item = &Agent> {
        self.agents.values()
    }

    pub fn agent(&self, id: &str) -> Option<&Agent> {
        self.agents.get(id)
    }

    pub fn contacts(&self) -> impl Iterator<Item = &Contact> {
        self.contacts.values()
    }

    pub fn contact(&self, handoff_id: &str) -> Option<&Contact> {
        self.contacts.get(handoff_id)
    }

    pub fn handle_times(&self) -> &BTreeMap<QueueKey, VecDeque<u64>> {
        &self.handle_times
    }

    pub fn withdrawal(&self, handoff_id: &str) -> Option<&Withdrawal> {
        self.withdrawn.get(handoff_id)
    }

    /// Restores state saved by the store. Every restored contact that is
    /// not connected and not a callback is held (see [`Hold`]): a contact
    /// that was offered goes back to waiting, its agent remembered. A
    /// connected contact already has its human; a callback no longer has a
    /// customer on the line, and the customer was promised the call.
    pub fn restore(
        &mut self,
        agents: Vec<Agent>,
        contacts: Vec<Contact>,
        handle_times: Vec<(QueueKey, u64)>,
        withdrawn: Vec<(String, Withdrawal)>,
    ) {
        self.agents = agents.into_iter().map(|a| (a.id.clone(), a)).collect();
        self.contacts = contacts
            .into_iter()
            .map(|mut c| {
                let restored_held =
                    !matches!(c.phase, Phase::Connected { .. }) && c.callback.is_none();
                if restored_held && c.held.is_none() {
                    let offered_to = match &c.phase {
                        Phase::Offered { agent, .. } => Some(agent.clone()),
                        _ => None,
                    };
                    if offered_to.is_some() {
                        c.phase = Phase::Waiting;
                    }
                    c.held = Some(Hold { offered_to });
                }
                (c.handoff_id.clone(), c)
            })
            .collect();
        for (queue, millis) in handle_times {
            self.record_handle_time(queue, millis);
        }
        self.withdrawn = withdrawn.into_iter().collect();
    }

    fn record_handle_time(&mut self, queue: QueueKey, millis: u64) {
        let samples = self.handle_times.entry(queue).or_default();
        samples.push_back(millis);
        while samples.len() > self.policy.handle_time_samples.max(1) {
            samples.pop_front();
        }
    }

    /// Signs an agent in (available) or updates a signed-in agent's details.
    /// An agent moved to another tenant gives back an offer they held.
    pub fn sign_in(&mut self, id: &str, profile: AgentProfile, now: Millis) {
        if self
            .agents
            .get(id)
            .is_some_and(|a| a.tenant != profile.tenant)
        {
            let _ = self.set_state(id, AgentState::Offline, now);
        }
        let agent = self.agents.entry(id.to_owned()).or_insert_with(|| Agent {
            id: id.to_owned(),
            name: String::new(),
            tenant: String::new(),
            skills: BTreeSet::new(),
            contact: String::new(),
            state: AgentState::Offline,
            state_since: now,
            chat_capacity: None,
        });
        agent.name = profile.name;
        agent.chat_capacity = profile.chat_capacity;
        agent.tenant = profile.tenant;
        agent.skills = profile.skills;
        agent.contact = profile.contact;
        if agent.state == AgentState::Offline {
            agent.state = AgentState::Available;
            agent.state_since = now;
        }
    }

    /// Sets an agent's availability. An agent on a contact stays busy, and
    /// an offer held by an agent who leaves goes back to the queue.
    pub fn set_state(
        &mut self,
        agent_id: &str,
        state: AgentState,
        now: Millis,
    ) -> Result<(), DeskError> {
        let agent = self
            .agents
            .get(agent_id)
            .ok_or_else(|| DeskError::UnknownAgent(agent_id.to_owned()))?;
        if agent.state == AgentState::Busy && state != AgentState::Busy {
            return Err(DeskError::OnContact);
        }
        if state != AgentState::Available {
            for contact in self.contacts.values_mut() {
                if matches!(&contact.phase, Phase::Offered { agent, .. } if agent == agent_id) {
                    contact.phase = Phase::Waiting;
                }
            }
        }
        if let Some(agent) = self.agents.get_mut(agent_id)
            && agent.state != state
        {
            agent.state = state;
            agent.state_since = now;
        }
        Ok(())
    }

    /// Adds a contact, or refuses it at once when nobody could take it.
    /// A handoff already present keeps its one contact: the same attempt
    /// re-attaches, a later attempt takes it over, an earlier one is
    /// superseded. A withdrawn attempt (or an earlier one) is never queued
    /// again.
    pub fn enqueue(&mut self, new: NewContact, now: Millis) -> Result<Admitted, NotAdmitted> {
        if let Some(withdrawal) = self.withdrawn.get(&new.handoff_id)
            && new.attempt <= withdrawal.attempt
        {
            return Err(NotAdmitted::Withdrawn(*withdrawal));
        }
        if let Some(contact) = self.contacts.get_mut(&new.handoff_id) {
            if contact.tenant != new.tenant {
                return Err(NotAdmitted::OtherTenant);
            }
            let admitted = match new.attempt.cmp(&contact.attempt) {
                std::cmp::Ordering::Less => {
                    return Err(NotAdmitted::Superseded {
                        attempt: contact.attempt,
                    });
                }
                std::cmp::Ordering::Equal => Admitted::Reattached,
                std::cmp::Ordering::Greater => Admitted::TookOver {
                    from_attempt: std::mem::replace(&mut contact.attempt, new.attempt),
                },
            };
            self.release_hold(&new.handoff_id, now);
            return Ok(admitted);
        }
        let queue = self
            .spec(&QueueKey::new(&new.tenant, &new.queue))
            .ok_or(Refusal::UnknownQueue)?;
        let mut skills: BTreeSet<String> = queue.skills.iter().cloned().collect();
        skills.extend(new.skills);
        // A callback waits for its window: nobody need be signed in now.
        let callback = new.callback.is_some();
        if !callback
            && !self
                .agents
                .values()
                .any(|a| a.is_logged_in() && a.tenant == new.tenant && a.has_skills(&skills))
        {
            return Err(Refusal::NoAgents.into());
        }
        let max_wait = queue.max_wait;
        let contact = Contact {
            handoff_id: new.handoff_id.clone(),
            attempt: new.attempt,
            tenant: new.tenant,
            queue: new.queue,
            media: new.media,
            skills,
            priority: new.priority.min(9),
            enqueued_at: now,
            phase: Phase::Waiting,
            passed: BTreeMap::new(),
            last_pass: None,
            callback: new.callback,
            held: None,
        };
        self.contacts.insert(new.handoff_id.clone(), contact);
        match self.standing(&new.handoff_id) {
            Some(standing) if standing.estimated_wait > max_wait && !callback => {
                self.contacts.remove(&new.handoff_id);
                Err(Refusal::WaitTooLong.into())
            }
            _ => Ok(Admitted::New),
        }
    }

    /// The transfer of a held contact is followed again: it may be
    /// offered. One restored from an offer goes back to that agent if they
    /// are still free for it.
    fn release_hold(&mut self, handoff_id: &str, now: Millis) {
        let Some(contact) = self.contacts.get_mut(handoff_id) else {
            return;
        };
        let Some(hold) = contact.held.take() else {
            return;
        };
        let Some(agent_id) = hold.offered_to else {
            return;
        };
        let contact = &self.contacts[handoff_id];
        let free = self
            .agents
            .get(&agent_id)
            .is_some_and(|a| self.may_be_offered(a, contact));
        if free && contact.phase == Phase::Waiting {
            let until = now + self.policy.offer_timeout.as_millis() as u64;
            if let Some(contact) = self.contacts.get_mut(handoff_id) {
                contact.phase = Phase::Offered {
                    agent: agent_id,
                    until,
                };
            }
        }
    }

    /// The order contacts are served in: queue priority, then the
    /// handoff's, then the longest wait.
    fn serving_order(&self) -> Vec<String> {
        let mut waiting: Vec<ServingKey<'_>> = self
            .contacts
            .values()
            .filter(|c| c.phase == Phase::Waiting && !c.is_held())
            .map(|c| self.serving_key(c))
            .collect();
        waiting.sort_unstable();
        waiting
            .into_iter()
            .map(|(_, _, _, handoff_id)| handoff_id.to_owned())
            .collect()
    }

    /// Where a waiting contact sorts in [`serving_order`](Self::serving_order);
    /// unique, since it ends with the handoff id.
    fn serving_key<'a>(&self, contact: &'a Contact) -> ServingKey<'a> {
        let queue_priority = self
            .spec_of(&contact.tenant, &contact.queue)
            .map_or(0, |q| q.priority);
        (
            std::cmp::Reverse(queue_priority),
            std::cmp::Reverse(contact.priority),
            contact.enqueued_at,
            contact.handoff_id.as_str(),
        )
    }

    /// Whether the agent has an offer or a contact, or an offer held
    /// across a restart (see [`Queues::assigned`]).
    fn is_reserved(&self, agent_id: &str) -> bool {
        self.assigned(agent_id).next().is_some()
    }

    /// Where a waiting contact stands in its queue, or None when it is not
    /// waiting (or held: it is not in line until re-attached).
    pub fn standing(&self, handoff_id: &str) -> Option<Standing> {
        let contact = self.contacts.get(handoff_id)?;
        if contact.phase != Phase::Waiting || contact.is_held() {
            return None;
        }
        // Its place in the serving order among its queue's waiting
        // contacts: those sorting before it, counted without sorting (every
        // transfer asks at each change of the queue, so this is per contact
        // per change).
        let own = self.serving_key(contact);
        let ahead = self
            .contacts
            .values()
            .filter(|c| c.phase == Phase::Waiting && !c.is_held())
            .filter(|c| c.tenant == contact.tenant && c.queue == contact.queue)
            .filter(|c| self.serving_key(c) < own)
            .count();
        let position = u32::try_from(ahead + 1).unwrap_or(u32::MAX);
        let key = QueueKey::of(contact);
        let estimated_wait = self.estimate(&key, &contact.skills, position);
        let callback_offered = self
            .spec(&key)
            .and_then(|q| q.callback_threshold)
            .is_some_and(|threshold| estimated_wait > threshold);
        Some(Standing {
            position,
            estimated_wait,
            callback_offered,
        })
    }

    /// Who is there for a contact of `media` in `tenant`'s queue `name`
    /// (with the queue's skills and `skills`), were it enqueued now at the
    /// default priority: it would wait behind every contact waiting there.
    /// None when the tenant has no such queue. Changes nothing.
    pub fn availability(
        &self,
        tenant: &str,
        name: &str,
        skills: &[String],
        media: Media,
    ) -> Option<QueueAvailability> {
        let key = QueueKey::new(tenant, name);
        let mut needed: BTreeSet<String> = self.spec(&key)?.skills.iter().cloned().collect();
        needed.extend(skills.iter().cloned());
        let probe = Contact {
            handoff_id: String::new(),
            attempt: 0,
            tenant: tenant.to_owned(),
            queue: name.to_owned(),
            media,
            skills: needed,
            priority: 0,
            enqueued_at: Millis::MAX,
            phase: Phase::Waiting,
            passed: BTreeMap::new(),
            last_pass: None,
            callback: None,
            held: None,
        };
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let agents_signed_in = count(
            self.agents
                .values()
                .filter(|a| a.is_logged_in() && a.can_take(&probe))
                .count(),
        );
        let agents_available = count(
            self.agents
                .values()
                .filter(|a| self.may_be_offered(a, &probe))
                .count(),
        );
        let waiting = count(
            self.contacts
                .values()
                .filter(|c| QueueKey::of(c) == key && c.phase == Phase::Waiting && !c.is_held())
                .count(),
        );
        let position = waiting.saturating_add(1);
        Some(QueueAvailability {
            agents_signed_in,
            agents_available,
            waiting,
            position,
            estimated_wait: (agents_signed_in > 0)
                .then(|| self.estimate(&key, &probe.skills, position)),
        })
    }

    /// The mean of the queue's recent handle times, or the initial one.
    pub fn average_handle_time(&self, queue: &QueueKey) -> Duration {
        match self.handle_times.get(queue) {
            Some(samples) if !samples.is_empty() => {
                Duration::from_millis(samples.iter().sum::<u64>() / samples.len() as u64)
            }
            _ => self.policy.initial_handle_time,
        }
    }

    /// The estimated wait at `position`: agents free now take the first
    /// contacts at once; each later round waits one average handle time,
    /// shared among the staffed (available or busy) agents of the queue's
    /// tenant with the skills.
    pub fn estimate(&self, queue: &QueueKey, skills: &BTreeSet<String>, position: u32) -> Duration {
        let skilled = || {
            self.agents
                .values()
                .filter(move |a| a.tenant == queue.tenant && a.has_skills(skills))
        };
        let free = skilled()
            .filter(|a| a.state == AgentState::Available && !self.is_reserved(&a.id))
            .count() as u32;
        let staffed = skilled()
            .filter(|a| matches!(a.state, AgentState::Available | AgentState::Busy))
            .count()
            .max(1) as u32;
        let Some(after_free) = position.checked_sub(free).filter(|n| *n > 0) else {
            return Duration::ZERO;
        };
        let rounds = after_free.div_ceil(staffed);
        self.average_handle_time(queue) * rounds
    }

    /// Moves the queue forward at `now`: expires offers (the agent is set
    /// away and the next one is offered), fails contacts nobody can take
    /// any more or that waited too long, and offers waiting contacts to the
    /// longest-idle available agent with the skills.
    pub fn route(&mut self, now: Millis) {
        self.expire_offers(now);
        self.fail_hopeless(now);
        self.close_callback_windows(now);
        for handoff_id in self.serving_order() {
            let Some(contact) = self.contacts.get(&handoff_id) else {
                continue;
            };
            // A callback keeps its place but waits for its window.
            if contact.callback.as_ref().is_some_and(|c| !c.is_open(now)) {
                continue;
            }
            // The least loaded agent first (chats spread out), then the
            // longest idle.
            let chosen = self
                .agents
                .values()
                .filter(|a| self.may_be_offered(a, contact))
                .min_by_key(|a| (self.assigned(&a.id).count(), a.state_since, a.id.clone()))
                .map(|a| a.id.clone());
            if let Some(agent) = chosen {
                let until = now + self.policy.offer_timeout.as_millis() as u64;
                if let Some(contact) = self.contacts.get_mut(&handoff_id) {
                    contact.phase = Phase::Offered { agent, until };
                }
            }
        }
    }

    fn expire_offers(&mut self, now: Millis) {
        let mut missed = Vec::new();
        for contact in self.contacts.values_mut() {
            if let Phase::Offered { agent, until } = &contact.phase
                && *until <= now
            {
                missed.push(agent.clone());
                contact.passed.insert(agent.clone(), Pass::Missed);
                contact.last_pass = Some(Pass::Missed);
                contact.phase = Phase::Waiting;
            }
        }
        // An agent who lets an offer time out is probably not at the desk:
        // stop offering them contacts until they say they are back. One
        // busy with chats is at the desk and stays busy (the missed
        // contact is not offered to them again).
        for agent_id in missed {
            if let Some(agent) = self.agents.get_mut(&agent_id)
                && agent.state != AgentState::Busy
            {
                agent.state = AgentState::Away;
                agent.state_since = now;
            }
        }
    }

    fn fail_hopeless(&mut self, now: Millis) {
        let max_waits: BTreeMap<String, Duration> = self
            .contacts
            .values()
            .map(|c| {
                let max_wait = self
                    .spec(&QueueKey::of(c))
                    .map_or(default_max_wait(), |q| q.max_wait);
                (c.handoff_id.clone(), max_wait)
            })
            .collect();
        let agents = &self.agents;
        for contact in self.contacts.values_mut() {
            // A callback no longer holds a customer on the line: it waits
            // for an agent until its window closes.
            if contact.phase != Phase::Waiting || contact.callback.is_some() {
                continue;
            }
            let max_wait = max_waits
                .get(&contact.handoff_id)
                .copied()
                .unwrap_or_else(default_max_wait);
            let skilled: Vec<&Agent> = agents
                .values()
                .filter(|a| a.is_logged_in() && a.can_take(contact))
                .collect();
            let refusal = if now.saturating_sub(contact.enqueued_at) >= max_wait.as_millis() as u64
            {
                Some((Refusal::WaitTooLong, "waited beyond the queue's maximum"))
            } else if skilled.is_empty() {
                Some((Refusal::NoAgents, "no agent with the skills is signed in"))
            } else if skilled.iter().all(|a| contact.passed.contains_key(&a.id)) {
                match contact.last_pass {
                    Some(Pass::Declined) => Some((
                        Refusal::Rejected,
                        "every agent with the skills declined the offer",
                    )),
                    _ => Some((
                        Refusal::NoAnswer,
                        "no agent with the skills accepted the offer in time",
                    )),
                }
            } else {
                None
            };
            if let Some((refusal, detail)) = refusal {
                contact.phase = Phase::Failed {
                    refusal,
                    detail: detail.to_owned(),
                };
            }
        }
    }

    fn offered_contact(
        &mut self,
        agent_id: &str,
        handoff_id: &str,
    ) -> Result<&mut Contact, DeskError> {
        if !self.agents.contains_key(agent_id) {
            return Err(DeskError::UnknownAgent(agent_id.to_owned()));
        }
        let contact = self
            .contacts
            .get_mut(handoff_id)
            .ok_or_else(|| DeskError::UnknownContact(handoff_id.to_owned()))?;
        match &contact.phase {
            Phase::Offered { agent, .. } if agent == agent_id => Ok(contact),
            _ => Err(DeskError::NotOffered(handoff_id.to_owned())),
        }
    }

    /// The agent accepts the offer: the contact is connected and the agent
    /// busy.
    pub fn accept(
        &mut self,
        agent_id: &str,
        handoff_id: &str,
        now: Millis,
    ) -> Result<(), DeskError> {
        let contact = self.offered_contact(agent_id, handoff_id)?;
        contact.phase = Phase::Connected {
            agent: agent_id.to_owned(),
            since: now,
        };
        if let Some(agent) = self.agents.get_mut(agent_id) {
            agent.state = AgentState::Busy;
            agent.state_since = now;
        }
        Ok(())
    }

    /// The agent declines: the contact goes to the next agent (never back
    /// to this one); the agent stays available.
    pub fn decline(
        &mut self,
        agent_id: &str,
        handoff_id: &str,
        now: Millis,
    ) -> Result<(), DeskError> {
        let contact = self.offered_contact(agent_id, handoff_id)?;
        contact.passed.insert(agent_id.to_owned(), Pass::Declined);
        contact.last_pass = Some(Pass::Declined);
        contact.phase = Phase::Waiting;
        self.route(now);
        Ok(())
    }

    /// The agent finishes the contact with a disposition: the handle time
    /// feeds the estimate and the agent is available (idle from now).
    pub fn wrap_up(
        &mut self,
        agent_id: &str,
        handoff_id: &str,
        disposition: &str,
        notes: &str,
        now: Millis,
    ) -> Result<Duration, DeskError> {
        let contact = self
            .contacts
            .get_mut(handoff_id)
            .ok_or_else(|| DeskError::UnknownContact(handoff_id.to_owned()))?;
        let since = match &contact.phase {
            Phase::Connected { agent, since } if agent == agent_id => *since,
            _ => return Err(DeskError::NotConnected(handoff_id.to_owned())),
        };
        contact.phase = Phase::Completed {
            agent: agent_id.to_owned(),
            disposition: disposition.to_owned(),
            notes: notes.to_owned(),
            judgements: Judgements::default(),
            hand_back: None,
        };
        let queue = QueueKey::of(contact);
        let handled = now.saturating_sub(since);
        self.record_handle_time(queue, handled);
        self.free_when_done(agent_id, now);
        Ok(Duration::from_millis(handled))
    }

    /// Records the agent's judgements on a contact they completed.
    pub fn judge(
        &mut self,
        agent_id: &str,
        handoff_id: &str,
        answered: Judgements,
    ) -> Result<(), DeskError> {
        let contact = self
            .contacts
            .get_mut(handoff_id)
            .ok_or_else(|| DeskError::UnknownContact(handoff_id.to_owned()))?;
        match &mut contact.phase {
            Phase::Completed {
                agent, judgements, ..
            } if agent == agent_id => {
                *judgements = answered;
                Ok(())
            }
            _ => Err(DeskError::NotConnected(handoff_id.to_owned())),
        }
    }

    /// Withdraws the transfer `attempt` of a handoff (cancelled, or not
    /// re-attached): its contact leaves the queue unless a later attempt
    /// holds it, and this attempt or an earlier one is never queued again.
    pub fn withdraw(
        &mut self,
        handoff_id: &str,
        attempt: u32,
        reason: WithdrawalReason,
        now: Millis,
    ) -> Option<Contact> {
        let kept = WITHDRAWALS_KEPT.as_millis() as u64;
        self.withdrawn
            .retain(|_, w| w.at.saturating_add(kept) > now);
        let withdrawal = self
            .withdrawn
            .entry(handoff_id.to_owned())
            .or_insert(Withdrawal {
                attempt,
                reason,
                at: now,
            });
        if attempt >= withdrawal.attempt {
            *withdrawal = Withdrawal {
                attempt,
                reason,
                at: now,
            };
        }
        if self
            .contacts
            .get(handoff_id)
            .is_some_and(|c| c.attempt <= attempt)
        {
            self.remove(handoff_id, now)
        } else {
            None
        }
    }

    /// Withdraws every held contact: the grace period for re-attaching
    /// ended.
    pub fn withdraw_held(&mut self, now: Millis) -> Vec<Contact> {
        let held: Vec<(String, u32)> = self
            .contacts
            .values()
            .filter(|c| c.is_held())
            .map(|c| (c.handoff_id.clone(), c.attempt))
            .collect();
        held.into_iter()
            .filter_map(|(handoff_id, attempt)| {
                self.withdraw(&handoff_id, attempt, WithdrawalReason::NotReattached, now)
            })
            .collect()
    }

    /// Removes a contact (cancelled, or its outcome reported). An agent it
    /// was connected to is freed.
    pub fn remove(&mut self, handoff_id: &str, now: Millis) -> Option<Contact> {
        let contact = self.contacts.remove(handoff_id)?;
        if let Phase::Connected { agent, .. } = &contact.phase {
            self.free_when_done(agent, now);
        }
        Some(contact)
    }

    /// Signs an agent out; an offer they held goes back to the queue.
    pub fn sign_out(&mut self, agent_id: &str, now: Millis) -> Result<(), DeskError> {
        self.set_state(agent_id, AgentState::Offline, now)
    }
}

#[path = "callback/queues.rs"]
mod callback;
pub use callback::{CallbackRequest, Dial};
#[path = "capacity/queues.rs"]
mod capacity;
#[path = "hand_back/queues.rs"]
mod hand_back;

#[cfg(test)]
#[path = "domain_tenant_tests.rs"]
mod tenant_tests;

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) const SECOND: Millis = 1000;

    pub(super) fn queues() -> Queues {
        let mut support = QueueSpec::new("support");
        support.skills = vec!["support".into()];
        let mut vip = QueueSpec::new("vip");
        vip.skills = vec!["support".into()];
        vip.priority = 5;
        Queues::new(
            Policy {
                offer_timeout: Duration::from_secs(20),
                initial_handle_time: Duration::from_secs(60),
                handle_time_samples: 3,
                chat_capacity: 2,
            },
            [support, vip],
        )
    }

    pub(super) fn skills(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    /// The tenant of the tests that are not about tenants.
    pub(super) const TENANT: &str = "acme";

    pub(super) fn sign_in_to(q: &mut Queues, tenant: &str, id: &str, list: &[&str], now: Millis) {
        let profile = AgentProfile {
            name: id.into(),
            tenant: tenant.into(),
            skills: skills(list),
            contact: format!("sip:{id}@example.com"),
            chat_capacity: None,
        };
        q.sign_in(id, profile, now);
    }

    pub(super) fn sign_in(q: &mut Queues, id: &str, list: &[&str], now: Millis) {
        sign_in_to(q, TENANT, id, list, now);
    }

    pub(super) fn contact_of(tenant: &str, id: &str, queue: &str) -> NewContact {
        NewContact {
            tenant: tenant.into(),
            ..contact(id, queue, 0)
        }
    }

    pub(super) fn contact(id: &str, queue: &str, priority: u32) -> NewContact {
        NewContact {
            handoff_id: id.into(),
            attempt: 1,
            tenant: TENANT.into(),
            queue: queue.into(),
            media: Media::Voice,
            skills: Vec::new(),
            priority,
            callback: None,
        }
    }

    /// A callback to be dialed as soon as an agent takes it.
    pub(super) fn callback_contact(id: &str) -> NewContact {
        NewContact {
            callback: Some(CallbackRequest {
                number: "+15550100123".into(),
                window_start: None,
                window_end: None,
                dial: Dial::NotYet,
            }),
            ..contact(id, "support", 0)
        }
    }

    pub(super) fn offered_to(q: &Queues, id: &str) -> Option<String> {
        match &q.contact(id)?.phase {
            Phase::Offered { agent, .. } => Some(agent.clone()),
            _ => None,
        }
    }

    /// Why the contact failed, if it did.
    pub(super) fn failed_with(q: &Queues, id: &str) -> Option<Refusal> {
        match &q.contact(id)?.phase {
            Phase::Failed { refusal, .. } => Some(*refusal),
            _ => None,
        }
    }

    /// Queues a live voice contact for the support queue.
    pub(super) fn enqueue(q: &mut Queues, id: &str, now: Millis) {
        q.enqueue(contact(id, "support", 0), now).expect("enqueue");
    }

    /// Ann (idle longest) and bob are signed in; h1 is offered to ann at
    /// 2 s, so bob is the next agent to offer it to.
    fn h1_offered_to_ann_with_bob_next() -> Queues {
        let mut q = queues();
        sign_in(&mut q, "ann", &["support"], 0);
        sign_in(&mut q, "bob", &["support"], SECOND);
        enqueue(&mut q, "h1", 2 * SECOND);
        q.route(2 * SECOND);
        q
    }

    /// Ann, the only agent, signed in at 0 and is away.
    pub(super) fn ann_away() -> Queues {
        let mut q = queues();
        sign_in(&mut q, "ann", &["support"], 0);
        q.set_state("ann", AgentState::Away, 0).expect("state");
        q
    }

    /// Ann, the only agent, is away; h1 has waited since 1 s.
    fn h1_waiting_with_ann_away() -> Queues {
        let mut q = ann_away();
        enqueue(&mut q, "h1", SECOND);
        q
    }

    #[test]
    fn nobody_signed_in_with_the_skill_is_no_agents() {
        let mut q = queues();
        assert_eq!(
            q.enqueue(contact("h1", "support", 0), 0),
            Err(NotAdmitted::Refused(Refusal::NoAgents))
        );
        sign_in(&mut q, "bob", &["sales"], 0);
        assert_eq!(
            q.enqueue(contact("h1", "support", 0), 0),
            Err(NotAdmitted::Refused(Refusal::NoAgents))
        );
        assert_eq!(
            q.enqueue(contact("h1", "nowhere", 0), 0),
            Err(NotAdmitted::Refused(Refusal::UnknownQueue))
        );
        // Signed in but away still counts: the contact waits for them.
        sign_in(&mut q, "ann", &["support"], 0);
        q.set_state("ann", AgentState::Away, 0).expect("state");
        assert_eq!(q.enqueue(contact("h1", "support", 0), 0), Ok(Admitted::New));
        q.route(SECOND);
        assert_eq!(
            q.contact("h1").map(|c| c.phase.clone()),
            Some(Phase::Waiting)
        );
        // Everyone with the skill signs out: the waiting contact fails.
        q.sign_out("ann", 2 * SECOND).expect("sign out");
        q.route(2 * SECOND);
        assert_eq!(failed_with(&q, "h1"), Some(Refusal::NoAgents));
    }

    #[test]
    fn offers_go_to_the_longest_idle_agent_with_the_skills() {
        let mut q = queues();
        sign_in(&mut q, "late", &["support"], 30 * SECOND);
        sign_in(&mut q, "early", &["support"], 10 * SECOND);
        sign_in(&mut q, "unskilled", &["sales"], 0);
        enqueue(&mut q, "h1", 40 * SECOND);
        q.route(40 * SECOND);
        assert_eq!(offered_to(&q, "h1").as_deref(), Some("early"));
    }

    #[test]
    fn higher_priority_then_longest_wait_is_served_first() {
        let mut q = ann_away();
        enqueue(&mut q, "old", SECOND);
        enqueue(&mut q, "new", 2 * SECOND);
        q.enqueue(contact("urgent", "support", 7), 3 * SECOND)
            .expect("enqueue");
        q.enqueue(contact("vip", "vip", 0), 4 * SECOND)
            .expect("enqueue");
        assert_eq!(q.standing("urgent").map(|s| s.position), Some(1));
        assert_eq!(q.standing("old").map(|s| s.position), Some(2));
        assert_eq!(q.standing("new").map(|s| s.position), Some(3));
        q.set_state("ann", AgentState::Available, 5 * SECOND)
            .expect("state");
        q.route(5 * SECOND);
        // The vip queue has the higher priority, whatever the handoff's.
        assert_eq!(offered_to(&q, "vip").as_deref(), Some("ann"));
        q.accept("ann", "vip", 6 * SECOND).expect("accept");
        q.wrap_up("ann", "vip", "resolved", "", 7 * SECOND)
            .expect("wrap up");
        q.route(7 * SECOND);
        assert_eq!(offered_to(&q, "urgent").as_deref(), Some("ann"));
    }

    #[test]
    fn an_offer_not_accepted_in_time_goes_to_the_next_agent() {
        let mut q = h1_offered_to_ann_with_bob_next();
        assert_eq!(offered_to(&q, "h1").as_deref(), Some("ann"));
        q.route(21 * SECOND);
        assert_eq!(
            offered_to(&q, "h1").as_deref(),
            Some("ann"),
            "not yet timed out"
        );
        q.route(22 * SECOND);
        assert_eq!(offered_to(&q, "h1").as_deref(), Some("bob"));
        assert_eq!(q.agent("ann").map(|a| a.state), Some(AgentState::Away));
        // Bob misses it too: nobody left to offer it to.
        q.route(42 * SECOND);
        assert_eq!(failed_with(&q, "h1"), Some(Refusal::NoAnswer));
    }

    #[test]
    fn declines_move_on_and_when_everyone_declines_the_contact_is_rejected() {
        let mut q = h1_offered_to_ann_with_bob_next();
        assert_eq!(
            q.accept("bob", "h1", 3 * SECOND),
            Err(DeskError::NotOffered("h1".into()))
        );
        q.decline("ann", "h1", 3 * SECOND).expect("decline");
        assert_eq!(offered_to(&q, "h1").as_deref(), Some("bob"));
        assert_eq!(q.agent("ann").map(|a| a.state), Some(AgentState::Available));
        q.decline("bob", "h1", 4 * SECOND).expect("decline");
        q.route(4 * SECOND);
        assert_eq!(failed_with(&q, "h1"), Some(Refusal::Rejected));
    }

    #[test]
    fn accepting_connects_and_wrap_up_frees_the_agent() {
        let mut q = queues();
        sign_in(&mut q, "ann", &["support"], 0);
        enqueue(&mut q, "h1", SECOND);
        q.route(SECOND);
        q.accept("ann", "h1", 2 * SECOND).expect("accept");
        assert_eq!(q.agent("ann").map(|a| a.state), Some(AgentState::Busy));
        assert_eq!(
            q.set_state("ann", AgentState::Away, 3 * SECOND),
            Err(DeskError::OnContact)
        );
        let handled = q
            .wrap_up("ann", "h1", "resolved", "", 92 * SECOND)
            .expect("wrap up");
        assert_eq!(handled, Duration::from_secs(90));
        assert_eq!(q.agent("ann").map(|a| a.state), Some(AgentState::Available));
        assert!(q.contact("h1").is_some_and(|c| c.phase.is_ended()));
    }

    #[test]
    fn the_estimate_follows_recent_handle_times_and_staffing() {
        let mut q = queues();
        let support = skills(&["support"]);
        let support_queue = QueueKey::new(TENANT, "support");
        sign_in(&mut q, "ann", &["support"], 0);
        // A free agent takes the first contact at once.
        assert_eq!(q.estimate(&support_queue, &support, 1), Duration::ZERO);
        assert_eq!(
            q.estimate(&support_queue, &support, 2),
            Duration::from_secs(60)
        );
        for (i, seconds) in [30u64, 90, 120, 150].into_iter().enumerate() {
            let id = format!("h{i}");
            let start = i as u64 * 1000 * SECOND;
            enqueue(&mut q, &id, start);
            q.route(start);
            q.accept("ann", &id, start).expect("accept");
            q.wrap_up("ann", &id, "resolved", "", start + seconds * SECOND)
                .expect("wrap up");
        }
        // Only the 3 most recent samples count: (90 + 120 + 150) / 3.
        assert_eq!(
            q.average_handle_time(&support_queue),
            Duration::from_secs(120)
        );
        assert_eq!(
            q.estimate(&support_queue, &support, 3),
            Duration::from_secs(240)
        );
        // A second agent halves the rounds.
        sign_in(&mut q, "bob", &["support"], 0);
        assert_eq!(
            q.estimate(&support_queue, &support, 4),
            Duration::from_secs(120)
        );
    }

    #[test]
    fn availability_counts_who_is_there_for_the_tenant_and_changes_nothing() {
        let mut q = queues();
        let voice = |q: &Queues, extra: &[&str]| {
            let extra: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
            let a = q
                .availability(TENANT, "support", &extra, Media::Voice)
                .expect("a queue of the tenant");
            (
                a.agents_signed_in,
                a.agents_available,
                a.waiting,
                a.position,
                a.estimated_wait,
            )
        };
        assert_eq!(q.availability(TENANT, "nowhere", &[], Media::Voice), None);
        assert_eq!(voice(&q, &[]), (0, 0, 0, 1, None));

        sign_in(&mut q, "ann", &["support"], 0);
        sign_in(&mut q, "bob", &["support", "spanish"], 0);
        // Another tenant's agent is never counted.
        sign_in_to(&mut q, "globex", "gil", &["support"], 0);
        let now = Some(Duration::ZERO);
        assert_eq!(voice(&q, &[]), (2, 2, 0, 1, now));
        assert_eq!(voice(&q, &["spanish"]), (1, 1, 0, 1, now));

        // Bob steps away and ann is offered a contact: both still signed
        // in, neither free. With nobody free, the next contact waits one
        // round of the handle time (60 s here) per place in line.
        q.set_state("bob", AgentState::Away, 0).expect("state");
        enqueue(&mut q, "h1", 0);
        q.route(0);
        assert_eq!(offered_to(&q, "h1").as_deref(), Some("ann"));
        assert_eq!(voice(&q, &[]), (2, 0, 0, 1, Some(Duration::from_secs(60))));
        enqueue(&mut q, "h2", 0);
        assert_eq!(voice(&q, &[]), (2, 0, 1, 2, Some(Duration::from_secs(120))));
        // Asking queued nothing and moved nobody.
        assert_eq!(q.contacts().count(), 2);
        assert_eq!(q.standing("h2").map(|s| s.position), Some(1));
    }

    #[test]
    fn only_the_agent_who_completed_a_contact_judges_it() {
        let mut q = queues();
        sign_in(&mut q, "ann", &["support"], 0);
        sign_in(&mut q, "bob", &["support"], 0);
        enqueue(&mut q, "h1", 0);
        q.route(0);
        let agent = offered_to(&q, "h1").expect("offered");
        let other = if agent == "ann" { "bob" } else { "ann" };
        let answered = Judgements {
            context_sufficient: Some(true),
            customer_repeated: Some(false),
            escalation_needed: None,
        };
        q.accept(&agent, "h1", SECOND).expect("accept");
        assert!(
            q.judge(&agent, "h1", answered).is_err(),
            "not completed yet"
        );
        q.wrap_up(&agent, "h1", "resolved", "", 2 * SECOND)
            .expect("wrap up");
        assert!(q.judge(other, "h1", answered).is_err(), "not theirs");
        q.judge(&agent, "h1", answered).expect("judged");
        assert!(matches!(
            q.contact("h1").map(|c| &c.phase),
            Some(Phase::Completed { judgements, .. }) if *judgements == answered
        ));
    }

    #[test]
    fn waits_beyond_the_maximum_fail_and_long_estimates_offer_a_callback() {
        let mut q = ann_away();
        enqueue(&mut q, "h1", 0);
        // Position 1, one staffed agent (away counts as one): 60s.
        assert_eq!(q.standing("h1").map(|s| s.callback_offered), Some(false));
        for i in 2..=4 {
            enqueue(&mut q, &format!("h{i}"), 0);
        }
        let standing = q.standing("h4").expect("waiting");
        assert_eq!(standing.estimated_wait, Duration::from_secs(240));
        assert!(standing.callback_offered);
        q.enqueue(callback_contact("back"), 0).expect("enqueue");
        // Beyond 10 minutes estimated: refused at once.
        // (Later arrivals, so that they queue behind; the callback holds
        // the fifth place.)
        for i in 5..=9 {
            enqueue(&mut q, &format!("h{i}"), i);
        }
        assert_eq!(
            q.enqueue(contact("h11", "support", 0), 11),
            Err(NotAdmitted::Refused(Refusal::WaitTooLong))
        );
        // Beyond 10 minutes waited: failed.
        q.route(600 * SECOND);
        assert_eq!(failed_with(&q, "h1"), Some(Refusal::WaitTooLong));
        // The callback outlives the maximum wait; live contacts do not.
        assert_eq!(q.contact("back").map(|c| &c.phase), Some(&Phase::Waiting));
    }

    #[test]
    fn an_agent_who_steps_away_releases_the_offer() {
        let mut q = h1_offered_to_ann_with_bob_next();
        q.set_state("ann", AgentState::Away, 3 * SECOND)
            .expect("state");
        q.route(3 * SECOND);
        assert_eq!(offered_to(&q, "h1").as_deref(), Some("bob"));
    }

    /// What a new process restores from what this one saved.
    pub(super) fn restart(q: &Queues) -> Queues {
        let mut restored = queues();
        restored.restore(
            q.agents().cloned().collect(),
            q.contacts().cloned().collect(),
            Vec::new(),
            q.withdrawn.iter().map(|(id, w)| (id.clone(), *w)).collect(),
        );
        restored
    }

    fn attempt(id: &str, attempt: u32) -> NewContact {
        NewContact {
            attempt,
            ..contact(id, "support", 0)
        }
    }

    #[test]
    fn a_restored_contact_is_held_and_never_offered_until_its_transfer_is_re_attached() {
        let mut q = restart(&h1_waiting_with_ann_away());
        assert!(q.contact("h1").is_some_and(Contact::is_held));
        q.set_state("ann", AgentState::Available, 2 * SECOND)
            .expect("state");
        q.route(3 * SECOND);
        assert_eq!(
            offered_to(&q, "h1"),
            None,
            "held: the transfer may be elsewhere"
        );
        assert_eq!(q.standing("h1"), None, "not in line while held");

        assert_eq!(
            q.enqueue(contact("h1", "support", 0), 4 * SECOND),
            Ok(Admitted::Reattached)
        );
        assert!(q.contact("h1").is_some_and(|c| !c.is_held()));
        assert_eq!(
            q.contact("h1").map(|c| c.enqueued_at),
            Some(SECOND),
            "keeps its place"
        );
        q.route(4 * SECOND);
        assert_eq!(offered_to(&q, "h1").as_deref(), Some("ann"));
    }

    #[test]
    fn connected_contacts_and_callbacks_are_not_held() {
        let mut q = queues();
        sign_in(&mut q, "ann", &["support"], 0);
        enqueue(&mut q, "live", SECOND);
        q.route(SECOND);
        q.accept("ann", "live", 2 * SECOND).expect("accept");
        q.enqueue(callback_contact("callback"), 3 * SECOND)
            .expect("enqueue");
        let q = restart(&q);
        assert!(q.contact("live").is_some_and(|c| !c.is_held()));
        assert!(q.contact("callback").is_some_and(|c| !c.is_held()));
    }

    #[test]
    fn an_offer_outstanding_at_the_restart_never_goes_to_a_second_agent_and_returns_to_its_agent() {
        let q = h1_offered_to_ann_with_bob_next();
        assert_eq!(offered_to(&q, "h1").as_deref(), Some("ann"));

        // Back long after the offer would have timed out.
        let mut q = restart(&q);
        q.route(60 * SECOND);
        assert_eq!(offered_to(&q, "h1"), None, "bob is never offered it");
        assert_eq!(
            q.accept("ann", "h1", 60 * SECOND),
            Err(DeskError::NotOffered("h1".into()))
        );
        assert_eq!(
            q.agent("ann").map(|a| a.state),
            Some(AgentState::Available),
            "not a miss"
        );
        assert!(q.contact("h1").is_some_and(|c| c.passed.is_empty()));

        q.enqueue(contact("h1", "support", 0), 61 * SECOND)
            .expect("re-attach");
        q.route(61 * SECOND);
        assert_eq!(
            q.contact("h1").map(|c| c.phase.clone()),
            Some(Phase::Offered {
                agent: "ann".into(),
                until: 81 * SECOND
            }),
            "the same agent, with a whole offer window"
        );
    }

    #[test]
    fn an_agent_whose_offer_is_held_gets_no_other_contact_meanwhile() {
        let mut q = queues();
        sign_in(&mut q, "ann", &["support"], 0);
        enqueue(&mut q, "h1", SECOND);
        q.route(SECOND);
        assert_eq!(offered_to(&q, "h1").as_deref(), Some("ann"));
        let mut q = restart(&q);
        // h2 re-attaches first: ann is kept for h1, so h2 waits.
        enqueue(&mut q, "h2", 2 * SECOND);
        q.route(2 * SECOND);
        assert_eq!(offered_to(&q, "h2"), None, "ann is kept for h1");
        q.enqueue(contact("h1", "support", 0), 3 * SECOND)
            .expect("re-attach");
        q.route(3 * SECOND);
        assert_eq!(offered_to(&q, "h1").as_deref(), Some("ann"));
        assert_eq!(offered_to(&q, "h2"), None);
    }

    #[test]
    fn a_re_attached_offer_whose_agent_left_waits_like_any_contact() {
        let mut q = restart(&h1_offered_to_ann_with_bob_next());
        q.set_state("ann", AgentState::Away, 3 * SECOND)
            .expect("state");
        q.route(3 * SECOND);
        assert_eq!(offered_to(&q, "h1"), None, "still held");
        q.enqueue(contact("h1", "support", 0), 4 * SECOND)
            .expect("re-attach");
        q.route(4 * SECOND);
        assert_eq!(offered_to(&q, "h1").as_deref(), Some("bob"));
    }

    #[test]
    fn a_withdrawn_transfer_leaves_at_once_and_is_never_queued_again() {
        let mut q = restart(&h1_waiting_with_ann_away());
        let withdrawn = q.withdraw("h1", 1, WithdrawalReason::Cancelled, 2 * SECOND);
        assert!(withdrawn.is_some_and(|c| c.is_held()));
        assert!(q.contact("h1").is_none());
        // A late StartTransfer of the cancelled attempt (or an earlier one),
        // here or after another restart, does not queue the customer again.
        let mut q = restart(&q);
        q.set_state("ann", AgentState::Available, 3 * SECOND)
            .expect("state");
        assert_eq!(
            q.enqueue(contact("h1", "support", 0), 3 * SECOND),
            Err(NotAdmitted::Withdrawn(Withdrawal {
                attempt: 1,
                reason: WithdrawalReason::Cancelled,
                at: 2 * SECOND
            }))
        );
        q.route(3 * SECOND);
        assert!(q.contacts().next().is_none());
        // A later attempt is a new transfer.
        assert_eq!(q.enqueue(attempt("h1", 2), 4 * SECOND), Ok(Admitted::New));
        // A withdrawal is remembered for a day.
        let day = WITHDRAWALS_KEPT.as_millis() as u64;
        q.withdraw("other", 1, WithdrawalReason::Cancelled, 2 * SECOND + day);
        assert!(q.withdrawal("h1").is_none());
    }

    #[test]
    fn withdrawing_connected_or_offered_contacts_frees_their_agent() {
        let mut q = queues();
        sign_in(&mut q, "ann", &["support"], 0);
        sign_in(&mut q, "bob", &["support"], SECOND);
        enqueue(&mut q, "h1", 2 * SECOND);
        enqueue(&mut q, "h2", 3 * SECOND);
        q.route(3 * SECOND);
        q.accept("ann", "h1", 4 * SECOND).expect("accept");
        assert_eq!(offered_to(&q, "h2").as_deref(), Some("bob"));
        q.withdraw("h1", 1, WithdrawalReason::Cancelled, 5 * SECOND);
        q.withdraw("h2", 1, WithdrawalReason::Cancelled, 5 * SECOND);
        assert!(q.contacts().next().is_none());
        assert_eq!(q.agent("ann").map(|a| a.state), Some(AgentState::Available));
        assert_eq!(q.agent("bob").map(|a| a.state), Some(AgentState::Available));
        assert!(
            q.contact("h2").is_none(),
            "an offer withdrawn is gone from the desktop"
        );
    }

    #[test]
    fn a_later_attempt_takes_over_the_one_contact_and_an_earlier_one_is_superseded() {
        let mut q = restart(&h1_waiting_with_ann_away());
        assert_eq!(
            q.enqueue(attempt("h1", 2), 2 * SECOND),
            Ok(Admitted::TookOver { from_attempt: 1 })
        );
        assert_eq!(q.contacts().count(), 1);
        let taken = q.contact("h1").expect("one contact");
        assert_eq!(
            (taken.attempt, taken.enqueued_at, taken.is_held()),
            (2, SECOND, false)
        );
        assert_eq!(
            q.enqueue(attempt("h1", 1), 3 * SECOND),
            Err(NotAdmitted::Superseded { attempt: 2 })
        );
        // Cancelling the earlier attempt leaves the later one's contact.
        assert_eq!(
            q.withdraw("h1", 1, WithdrawalReason::Cancelled, 4 * SECOND),
            None
        );
        assert!(q.contact("h1").is_some());
        q.set_state("ann", AgentState::Available, 5 * SECOND)
            .expect("state");
        q.route(5 * SECOND);
        assert_eq!(offered_to(&q, "h1").as_deref(), Some("ann"));
    }

    #[test]
    fn held_contacts_not_re_attached_in_time_are_withdrawn_and_stay_so() {
        let mut q = ann_away();
        enqueue(&mut q, "resumed", SECOND);
        enqueue(&mut q, "abandoned", SECOND);
        q.enqueue(callback_contact("callback"), SECOND)
            .expect("enqueue");
        let mut q = restart(&q);
        q.enqueue(contact("resumed", "support", 0), 2 * SECOND)
            .expect("re-attach");
        let withdrawn: Vec<String> = q
            .withdraw_held(60 * SECOND)
            .into_iter()
            .map(|c| c.handoff_id)
            .collect();
        assert_eq!(withdrawn, ["abandoned"]);
        assert!(q.contact("resumed").is_some() && q.contact("callback").is_some());
        assert!(matches!(
            q.enqueue(contact("abandoned", "support", 0), 61 * SECOND),
            Err(NotAdmitted::Withdrawn(Withdrawal {
                reason: WithdrawalReason::NotReattached,
                ..
            }))
        ));
    }
}
