//! Hooks: adding one, and the `ping` it gets.

use super::*;

impl State {
    /// Adds a hook and returns it with its `ping`.
    pub fn add_hook(&mut self, url: &str, now_ms: u64) -> (Hook, Outbound) {
        self.next_hook_id += 1;
        let hook = Hook {
            id: self.next_hook_id,
            url: url.to_owned(),
        };
        self.hooks.push(hook.clone());
        let out = self.ping(&hook, now_ms);
        (hook, out)
    }

    /// The `ping` event for `hook`.
    pub fn ping(&self, hook: &Hook, now_ms: u64) -> Outbound {
        let payload = self.templates.ping(&self.urls, hook.id, &hook.url, now_ms);
        Outbound::Webhook(WebhookEvent {
            event: "ping".into(),
            action: None,
            payload,
            repository_id: None,
            installation_id: None,
            target: ("repository".into(), 0),
            only_hook: Some(hook.id),
        })
    }
}
