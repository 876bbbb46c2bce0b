//! Credentials and installations: PATs, installation tokens that expire, registration and
//! remove tokens, runner session tokens, and which account an installation is on.

use super::*;

impl State {
    /// Who `token` is (a PAT or a live installation token); `None` when unknown or expired.
    pub fn principal_for(&self, token: &str, now_ms: u64) -> Option<Principal> {
        if let Some(index) = self.pats.iter().position(|p| p == token) {
            return Some(Principal::Pat { index });
        }
        match self.install_tokens.get(token) {
            Some((id, exp)) if now_ms < *exp => Some(Principal::Installation { id: *id }),
            _ => None,
        }
    }

    /// Whether `p` may act on `owner`'s resources (an installation only on its account).
    pub fn may_access(&self, p: &Principal, owner: &str) -> bool {
        match p {
            Principal::Installation { id } => self
                .installations
                .iter()
                .any(|i| i.id == *id && i.account.eq_ignore_ascii_case(owner)),
            Principal::Pat { .. } => true,
            Principal::App | Principal::Runner { .. } => false,
        }
    }

    /// The installation on `account`, made on first lookup (when an app is configured).
    pub fn installation_for(&mut self, account: &str) -> Option<u64> {
        self.app.as_ref()?;
        if let Some(i) = self
            .installations
            .iter()
            .find(|i| i.account.eq_ignore_ascii_case(account))
        {
            return Some(i.id);
        }
        let account_id = self.account_id(account);
        self.next_installation_id += 1;
        let id = self.next_installation_id;
        self.installations.push(Installation {
            id,
            account: account.to_owned(),
            account_id,
        });
        Some(id)
    }

    /// Every known installation id.
    pub fn installation_ids(&self) -> Vec<u64> {
        self.installations.iter().map(|i| i.id).collect()
    }

    /// The installation object of `id`.
    pub fn installation_json(&self, id: u64) -> Option<Value> {
        let app = self.app.as_ref()?;
        let i = self.installations.iter().find(|i| i.id == id)?;
        Some(self.templates.installation(
            &self.urls,
            i.id,
            &i.account,
            i.account_id,
            app.config.app_id,
            app.config.client_id.as_deref(),
        ))
    }

    /// Mints an installation token for `id`; `None` when there is no such installation.
    pub fn mint_installation_token(&mut self, id: u64, now_ms: u64) -> Option<(String, u64)> {
        if !self.installations.iter().any(|i| i.id == id) {
            return None;
        }
        let token = ids::installation_token();
        let exp = now_ms + ms(self.scale.scale(self.install_ttl));
        self.install_tokens.insert(token.clone(), (id, exp));
        self.record_secret(SecretKind::InstallationToken, &token, Some(exp));
        Some((token, exp))
    }

    /// Makes every installation token expire now (tests of refresh logic).
    pub fn expire_installation_tokens(&mut self) {
        for v in self.install_tokens.values_mut() {
            v.1 = 0;
        }
    }

    /// Issues a registration (or remove) token for `scope`.
    pub fn issue_runner_token(&mut self, scope: Scope, remove: bool, now_ms: u64) -> (String, u64) {
        let token = ids::runner_token();
        let expires_ms = now_ms + ms(self.scale.scale(self.runner_token_ttl));
        self.issued.retain(|t| t.expires_ms > now_ms);
        self.issued.push(IssuedToken {
            token: token.clone(),
            scope,
            expires_ms,
            remove,
        });
        self.record_secret(SecretKind::RunnerToken, &token, Some(expires_ms));
        (token, expires_ms)
    }

    /// The scope of a live registration token.
    pub fn registration_scope(&self, token: &str, now_ms: u64) -> Option<Scope> {
        self.issued
            .iter()
            .find(|t| !t.remove && t.token == token && t.expires_ms > now_ms)
            .map(|t| t.scope.clone())
    }

    /// The runner a session token belongs to.
    pub fn runner_for_secret(&self, token: &str) -> Option<u64> {
        self.runner_secrets.get(token).copied()
    }
}
