//! The key layout and the Lua scripts (`lua/*.lua`, each prefixed with
//! `lua/common.lua`); see `README.md` beside this file.

use redis::Script;

use crate::JobId;

/// The names of a board's keys, all under its prefix.
#[derive(Debug, Clone)]
pub(super) struct Keys {
    prefix: String,
}

impl Keys {
    pub(super) fn new(prefix: &str) -> Self {
        Keys {
            prefix: prefix.to_owned(),
        }
    }

    /// The prefix.
    pub(super) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `<prefix>:job:` (scripts append a job id).
    pub(super) fn job_prefix(&self) -> String {
        format!("{}:job:", self.prefix)
    }

    /// The hash of job `id`.
    pub(super) fn job(&self, id: JobId) -> String {
        format!("{}:job:{id}", self.prefix)
    }

    /// The counter giving jobs their sequence.
    pub(super) fn seq(&self) -> String {
        format!("{}:seq", self.prefix)
    }

    /// The sorted set of jobs that are not complete, in iterjobs order.
    pub(super) fn pending(&self) -> String {
        format!("{}:pending", self.prefix)
    }

    /// The sorted set of claimed jobs, scored by lease expiry.
    pub(super) fn leases(&self) -> String {
        format!("{}:leases", self.prefix)
    }

    /// The sorted set of complete jobs, scored by completion time.
    pub(super) fn complete(&self) -> String {
        format!("{}:complete", self.prefix)
    }

    /// The sorted set of jobs waiting for their not-before time (posted or
    /// reopened with one ahead, no control request, not claimed since),
    /// scored by that time.
    pub(super) fn scheduled(&self) -> String {
        format!("{}:scheduled", self.prefix)
    }

    /// The hash of uniqueness keys held by jobs that are not complete:
    /// key -> job id.
    pub(super) fn unique(&self) -> String {
        format!("{}:unique", self.prefix)
    }

    /// The hash of execution keys of the jobs on the board: key -> job id.
    pub(super) fn exec_keys(&self) -> String {
        format!("{}:keys", self.prefix)
    }

    /// The stream that post, abandon, request and reopen append to, for
    /// wait.
    pub(super) fn events(&self) -> String {
        format!("{}:events", self.prefix)
    }

    /// The hash of registered entities.
    pub(super) fn entities(&self) -> String {
        format!("{}:entities", self.prefix)
    }

    /// The list keeping what purge call `op` removed, for its retries.
    pub(super) fn purged(&self, op: &str) -> String {
        format!("{}:purged:{op}", self.prefix)
    }

    /// A `SCAN MATCH` pattern for every key of the board.
    pub(super) fn pattern(&self) -> String {
        let mut pattern = String::with_capacity(self.prefix.len() + 2);
        for c in self.prefix.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push_str(":*");
        pattern
    }
}

macro_rules! script {
    ($file:literal) => {
        Script::new(concat!(
            include_str!("lua/common.lua"),
            "\n",
            include_str!(concat!("lua/", $file))
        ))
    };
}

/// The scripts, with their SHA1s computed once. Each runs as `EVALSHA`;
/// when the server does not know it (`NOSCRIPT`: first use, or after a
/// restart) the client sends `SCRIPT LOAD` and runs it again.
pub(super) struct Scripts {
    pub(super) post: Script,
    pub(super) claim: Script,
    pub(super) renew: Script,
    /// Renew of several claims in one call.
    pub(super) renew_all: Script,
    /// Claim of up to a number of jobs of several in one call.
    pub(super) claim_many: Script,
    /// Claim of the next claimable jobs, walking the pending zset.
    pub(super) claim_next: Script,
    /// Consume and trash: the same moves, with different outcomes.
    pub(super) complete: Script,
    /// Consume of several claims in one call.
    pub(super) consume_all: Script,
    pub(super) abandon: Script,
    pub(super) request: Script,
    pub(super) reopen: Script,
    pub(super) purge: Script,
    pub(super) read: Script,
    pub(super) list: Script,
    pub(super) probe: Script,
}

impl Scripts {
    pub(super) fn new() -> Self {
        Scripts {
            post: script!("post.lua"),
            claim: script!("claim.lua"),
            renew: script!("renew.lua"),
            renew_all: script!("renew_all.lua"),
            claim_many: script!("claim_many.lua"),
            claim_next: script!("claim_next.lua"),
            complete: script!("complete.lua"),
            consume_all: script!("consume_all.lua"),
            abandon: script!("abandon.lua"),
            request: script!("request.lua"),
            reopen: script!("reopen.lua"),
            purge: script!("purge.lua"),
            read: script!("read.lua"),
            list: script!("list.lua"),
            probe: script!("probe.lua"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Keys;
    use crate::JobId;

    #[test]
    fn every_key_is_under_the_prefix() {
        let keys = Keys::new("tf:test");
        let id = uuid::Uuid::nil();
        for key in [
            keys.job(JobId::from(id)),
            keys.seq(),
            keys.pending(),
            keys.leases(),
            keys.complete(),
            keys.events(),
            keys.scheduled(),
            keys.unique(),
            keys.exec_keys(),
            keys.entities(),
            keys.purged("op"),
        ] {
            assert!(key.starts_with("tf:test:"), "{key}");
        }
        assert_eq!(
            keys.job(JobId::from(id)),
            format!("{}{id}", keys.job_prefix())
        );
        assert_eq!(Keys::new("a*[b]").pattern(), "a\\*\\[b\\]:*");
    }
}
