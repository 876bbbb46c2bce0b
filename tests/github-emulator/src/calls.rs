//! The call log: every request the emulator answered (method, path, status, time, who), so
//! tests can assert what a daemon asked GitHub. Query strings and credentials are not kept.

use crate::auth::Principal;
use serde::Serialize;
use std::collections::VecDeque;

/// One answered request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Call {
    /// Order of arrival (1-based).
    pub seq: u64,
    /// When it was answered (ms since the epoch).
    pub at_ms: u64,
    /// HTTP method.
    pub method: String,
    /// Path, without the query string.
    pub path: String,
    /// Status answered.
    pub status: u16,
    /// Time taken, in milliseconds.
    pub duration_ms: u64,
    /// Who it was made as, when authenticated.
    pub principal: Option<Principal>,
    /// The fault that shaped the answer, if one did.
    pub fault: Option<String>,
}

/// A bounded log, oldest dropped first.
#[derive(Debug)]
pub struct CallLog {
    cap: usize,
    next: u64,
    calls: VecDeque<Call>,
}

impl CallLog {
    /// A log keeping at most `cap` calls.
    pub fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            next: 0,
            calls: VecDeque::new(),
        }
    }

    /// Appends a call (its `seq` is set here).
    pub fn push(&mut self, mut call: Call) {
        self.next += 1;
        call.seq = self.next;
        if self.calls.len() == self.cap {
            self.calls.pop_front();
        }
        self.calls.push_back(call);
    }

    /// Every kept call, oldest first.
    pub fn all(&self) -> Vec<Call> {
        self.calls.iter().cloned().collect()
    }

    /// Calls answered so far (including dropped ones).
    pub fn total(&self) -> u64 {
        self.next
    }
}
