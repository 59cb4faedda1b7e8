//! How many contacts an agent holds at once. A call (or a callback, which
//! the agent places on their own line) takes the whole agent; chats share
//! one, up to the agent's chat capacity. What counts against the capacity
//! is what the agent has been given: offers, connected contacts, and an
//! offer held across a restart (that agent is kept for it, so that the
//! restart never sends the customer to a second human).

use super::{Agent, AgentState, Contact, Media, Millis, Phase, Queues};

/// Whether the contact takes its agent alone.
fn takes_whole_agent(contact: &Contact) -> bool {
    contact.media == Media::Voice || contact.callback.is_some()
}

impl Queues {
    /// The chats `agent` holds at once.
    pub fn chat_capacity(&self, agent: &Agent) -> u32 {
        agent.chat_capacity.unwrap_or(self.policy.chat_capacity)
    }

    /// The contacts offered or connected to `agent_id`, and an offer held
    /// for them across a restart.
    pub fn assigned<'a>(&'a self, agent_id: &'a str) -> impl Iterator<Item = &'a Contact> + 'a {
        self.contacts.values().filter(move |c| {
            matches!(&c.phase, Phase::Offered { agent, .. } | Phase::Connected { agent, .. } if agent == agent_id)
                || c.held.as_ref().and_then(|h| h.offered_to.as_deref()) == Some(agent_id)
        })
    }

    /// Whether `agent` has room for `contact` beside what they hold: an
    /// agent holding nothing takes anything; one holding chats only takes
    /// another chat while under capacity; one on a call takes nothing.
    fn has_room(&self, agent: &Agent, contact: &Contact) -> bool {
        let mut held = 0;
        for other in self.assigned(&agent.id) {
            if other.handoff_id == contact.handoff_id {
                continue;
            }
            if takes_whole_agent(other) {
                return false;
            }
            held += 1;
        }
        held == 0 || (!takes_whole_agent(contact) && held < self.chat_capacity(agent))
    }

    /// Whether `contact` may be offered to `agent` now: the agent takes
    /// contacts (available, or busy with chats), may take this one (its
    /// tenant and skills, not passed on it before) and has room for it.
    pub(super) fn may_be_offered(&self, agent: &Agent, contact: &Contact) -> bool {
        matches!(agent.state, AgentState::Available | AgentState::Busy)
            && agent.can_take(contact)
            && !contact.passed.contains_key(&agent.id)
            && self.has_room(agent, contact)
    }

    /// An agent connected to nothing any more is available, idle from now;
    /// one still connected to a chat stays busy.
    pub(super) fn free_when_done(&mut self, agent_id: &str, now: Millis) {
        let connected = self
            .contacts
            .values()
            .any(|c| matches!(&c.phase, Phase::Connected { agent, .. } if agent == agent_id));
        if connected {
            return;
        }
        if let Some(agent) = self.agents.get_mut(agent_id)
            && agent.state == AgentState::Busy
        {
            agent.state = AgentState::Available;
            agent.state_since = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::domain::tests::{SECOND, ann_away, contact, offered_to, queues, restart, sign_in};
    use crate::domain::{AgentProfile, AgentState, Media, NewContact, Phase, Queues};

    fn chat(id: &str) -> NewContact {
        NewContact {
            media: Media::Chat,
            ..contact(id, "support", 0)
        }
    }

    fn connected_to(q: &Queues, id: &str) -> Option<String> {
        match &q.contact(id)?.phase {
            Phase::Connected { agent, .. } => Some(agent.clone()),
            _ => None,
        }
    }

    /// Ann (chat capacity 2, the tests' policy) accepts chats c1 and c2.
    fn ann_with_two_chats() -> Queues {
        let mut q = queues();
        sign_in(&mut q, "ann", &["support"], 0);
        for id in ["c1", "c2"] {
            q.enqueue(chat(id), SECOND).expect("enqueue");
        }
        q.route(SECOND);
        for id in ["c1", "c2"] {
            assert_eq!(offered_to(&q, id).as_deref(), Some("ann"), "{id}");
            q.accept("ann", id, 2 * SECOND).expect("accept");
        }
        q
    }

    #[test]
    fn an_agent_holds_chats_up_to_the_capacity_and_no_more() {
        let mut q = ann_with_two_chats();
        assert_eq!(q.agent("ann").map(|a| a.state), Some(AgentState::Busy));
        q.enqueue(chat("c3"), 3 * SECOND).expect("enqueue");
        q.route(3 * SECOND);
        assert_eq!(offered_to(&q, "c3"), None, "capacity reached");
        assert_eq!(q.contact("c3").map(|c| &c.phase), Some(&Phase::Waiting));
    }

    #[test]
    fn ending_a_chat_frees_a_slot_and_the_agent_stays_busy_with_the_other() {
        let mut q = ann_with_two_chats();
        q.enqueue(chat("c3"), 3 * SECOND).expect("enqueue");
        q.route(3 * SECOND);
        q.wrap_up("ann", "c1", "resolved", "", 4 * SECOND)
            .expect("wrap up");
        assert_eq!(
            q.agent("ann").map(|a| a.state),
            Some(AgentState::Busy),
            "still on c2"
        );
        q.route(4 * SECOND);
        assert_eq!(offered_to(&q, "c3").as_deref(), Some("ann"));
        // A chat that leaves otherwise (its transfer cancelled) frees its
        // slot too; the last one makes the agent available.
        q.remove("c2", 5 * SECOND);
        q.accept("ann", "c3", 5 * SECOND).expect("accept");
        q.wrap_up("ann", "c3", "resolved", "", 6 * SECOND)
            .expect("wrap up");
        let ann = q.agent("ann").expect("ann");
        assert_eq!(
            (ann.state, ann.state_since),
            (AgentState::Available, 6 * SECOND)
        );
    }

    #[test]
    fn a_call_takes_the_whole_agent_and_a_chat_keeps_calls_away() {
        let mut q = queues();
        sign_in(&mut q, "ann", &["support"], 0);
        q.enqueue(contact("call", "support", 0), SECOND)
            .expect("enqueue");
        q.enqueue(chat("c1"), 2 * SECOND).expect("enqueue");
        q.route(2 * SECOND);
        assert_eq!(offered_to(&q, "call").as_deref(), Some("ann"));
        assert_eq!(offered_to(&q, "c1"), None, "not beside a call's offer");
        q.accept("ann", "call", 3 * SECOND).expect("accept");
        q.route(3 * SECOND);
        assert_eq!(offered_to(&q, "c1"), None, "not beside a call");
        q.wrap_up("ann", "call", "resolved", "", 4 * SECOND)
            .expect("wrap up");
        q.route(4 * SECOND);
        q.accept("ann", "c1", 5 * SECOND).expect("accept");

        // On a chat, a call waits for another agent (or for the chat's end).
        q.enqueue(contact("call2", "support", 0), 6 * SECOND)
            .expect("enqueue");
        q.route(6 * SECOND);
        assert_eq!(offered_to(&q, "call2"), None, "ann holds a chat");
        sign_in(&mut q, "bob", &["support"], 7 * SECOND);
        q.route(7 * SECOND);
        assert_eq!(offered_to(&q, "call2").as_deref(), Some("bob"));
    }

    #[test]
    fn a_callback_is_placed_on_the_agents_line_and_takes_the_whole_agent() {
        let mut q = ann_away();
        // A chat's callback is a call on the agent's line.
        let back = NewContact {
            media: Media::Chat,
            ..crate::domain::tests::callback_contact("back")
        };
        q.enqueue(back, SECOND).expect("enqueue");
        q.enqueue(chat("c1"), 2 * SECOND).expect("enqueue");
        q.set_state("ann", AgentState::Available, 3 * SECOND)
            .expect("available");
        q.route(3 * SECOND);
        assert_eq!(offered_to(&q, "back").as_deref(), Some("ann"));
        assert_eq!(offered_to(&q, "c1"), None);
    }

    #[test]
    fn chats_go_to_the_least_loaded_agent_and_a_profile_sets_its_own_capacity() {
        let mut q = queues();
        sign_in(&mut q, "ann", &["support"], 0);
        let profile = AgentProfile {
            name: "Bob".into(),
            tenant: crate::domain::tests::TENANT.into(),
            skills: crate::domain::tests::skills(&["support"]),
            contact: String::new(),
            chat_capacity: Some(1),
        };
        q.sign_in("bob", profile, SECOND);
        for (i, id) in ["c1", "c2", "c3", "c4"].into_iter().enumerate() {
            q.enqueue(chat(id), 2 * SECOND + i as u64).expect("enqueue");
        }
        q.route(3 * SECOND);
        let offers: Vec<Option<String>> = ["c1", "c2", "c3", "c4"]
            .iter()
            .map(|id| offered_to(&q, id))
            .collect();
        assert_eq!(
            offers,
            [
                Some("ann".to_owned()),
                Some("bob".to_owned()),
                Some("ann".to_owned()),
                None
            ],
            "spread out; bob takes one, ann two"
        );
    }

    #[test]
    fn an_agent_busy_with_chats_who_misses_an_offer_stays_busy_and_is_not_offered_it_again() {
        let mut q = queues();
        sign_in(&mut q, "ann", &["support"], 0);
        sign_in(&mut q, "bob", &["support"], 0);
        q.set_state("bob", AgentState::Away, 0).expect("away");
        q.enqueue(chat("c1"), SECOND).expect("enqueue");
        q.route(SECOND);
        q.accept("ann", "c1", SECOND).expect("accept");
        q.enqueue(chat("c2"), 2 * SECOND).expect("enqueue");
        q.route(2 * SECOND);
        assert_eq!(offered_to(&q, "c2").as_deref(), Some("ann"));
        q.route(30 * SECOND);
        assert_eq!(q.agent("ann").map(|a| a.state), Some(AgentState::Busy));
        assert_eq!(offered_to(&q, "c2"), None, "missed once");
        q.set_state("bob", AgentState::Available, 31 * SECOND)
            .expect("available");
        q.route(31 * SECOND);
        assert_eq!(offered_to(&q, "c2").as_deref(), Some("bob"));
    }

    #[test]
    fn a_restart_keeps_every_chat_an_agent_holds_and_the_capacity_they_fill() {
        let mut q = ann_with_two_chats();
        q.enqueue(chat("c3"), 3 * SECOND).expect("enqueue");
        let mut q = restart(&q);
        assert_eq!(connected_to(&q, "c1").as_deref(), Some("ann"));
        assert_eq!(connected_to(&q, "c2").as_deref(), Some("ann"));
        assert_eq!(q.agent("ann").map(|a| a.state), Some(AgentState::Busy));
        q.enqueue(chat("c3"), 4 * SECOND).expect("re-attach");
        q.route(4 * SECOND);
        assert_eq!(offered_to(&q, "c3"), None, "still two chats held");
        q.wrap_up("ann", "c2", "resolved", "", 5 * SECOND)
            .expect("wrap up");
        q.route(5 * SECOND);
        assert_eq!(offered_to(&q, "c3").as_deref(), Some("ann"));
    }

    #[test]
    fn contacts_saved_before_media_read_back_as_calls() {
        let q = ann_with_two_chats();
        let mut saved = serde_json::to_value(q.contact("c1").expect("c1")).expect("json");
        assert_eq!(saved["media"], "chat");
        saved
            .as_object_mut()
            .expect("object")
            .remove("media")
            .expect("present");
        let old: crate::domain::Contact = serde_json::from_value(saved).expect("old contact");
        assert_eq!(old.media, Media::Voice);
    }
}
