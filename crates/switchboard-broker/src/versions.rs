//! Which versions of the interface a client meets among the servers of its instance: one verdict
//! per description hash, cached, so a server's description is fetched and compared once per new
//! hash, and the hash each live server announced, so that with replicas of several versions (a
//! rolling upgrade) a member counts as present only when every live replica has it.

use std::collections::{HashMap, HashSet};

use switchboard_core::compat::{self, Agreement, Hello, Incompatible};

/// At most this many verdicts are kept; past it the cache starts afresh (a client meets few
/// versions of one interface, so only a flood of made-up hashes gets there).
const MAX_VERDICTS: usize = 64;

/// What a client decided about a server's announcement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The server is usable: it is of this client's hash, or its description differs compatibly.
    Compatible,
    /// The server's interface breaks this client.
    Incompatible(Incompatible),
    /// The server is of another hash and its announcement leaves its description out (a
    /// heartbeat): the client must ask for it (a discovery probe) before deciding.
    Undescribed,
}

/// The versions a client has met, and which live server serves which.
#[derive(Debug, Default)]
pub(crate) struct Versions {
    /// The verdict per server hash (`None`: a server that names no hash).
    verdicts: HashMap<Option<String>, Result<Agreement, Incompatible>>,
    /// The hash each live, compatible server announced, by server id.
    live: HashMap<String, Option<String>>,
    /// The hashes asked for already (a probe went out) and not yet decided.
    asked: HashSet<String>,
}

impl Versions {
    /// Decides about a server announcing `theirs` to a client that is `ours`: from the verdict
    /// for its hash when there is one, else by comparing the descriptions (`compat::check`).
    /// `brief` says the announcement leaves the description out on purpose (a heartbeat), so a
    /// missing description means "ask", not "refuse".
    pub(crate) fn decide(&mut self, ours: &Hello, theirs: &Hello, brief: bool) -> Verdict {
        if let Some(verdict) = self.verdicts.get(&theirs.hash) {
            return match verdict {
                Ok(_) => Verdict::Compatible,
                Err(error) => Verdict::Incompatible(error.clone()),
            };
        }
        let other_hash = ours.hash.is_some() && theirs.hash.is_some() && ours.hash != theirs.hash;
        if other_hash && brief && theirs.description.is_none() {
            return Verdict::Undescribed;
        }
        let verdict = compat::check(ours, theirs);
        if self.verdicts.len() >= MAX_VERDICTS {
            self.verdicts.clear();
        }
        if let Some(hash) = &theirs.hash {
            self.asked.remove(hash);
        }
        self.verdicts.insert(theirs.hash.clone(), verdict.clone());
        match verdict {
            Ok(_) => Verdict::Compatible,
            Err(error) => Verdict::Incompatible(error),
        }
    }

    /// Whether to ask for the description of `hash` now: the first time it is met undescribed.
    /// [`Versions::retry`] lets the next heartbeat ask again (a probe may be lost).
    pub(crate) fn ask(&mut self, hash: &str) -> bool {
        if self.asked.len() >= MAX_VERDICTS {
            self.asked.clear();
        }
        self.asked.insert(hash.to_owned())
    }

    /// Forgets the descriptions asked for and not received, so they are asked for again.
    pub(crate) fn retry(&mut self) {
        self.asked.clear();
    }

    /// Notes that server `id`, of a hash already found compatible, is live. Returns the
    /// agreement with all live servers when this changes it.
    pub(crate) fn live(&mut self, id: &str, hash: &Option<String>) -> Option<Agreement> {
        if self.live.get(id) == Some(hash) {
            return None;
        }
        let before = self.agreement();
        self.live.insert(id.to_owned(), hash.clone());
        let after = self.agreement();
        (after != before).then_some(after)
    }

    /// Forgets live servers that are gone. Returns the agreement with the servers left when
    /// this changes it and some are left (with none left there is nothing to agree with).
    pub(crate) fn gone<'a>(&mut self, ids: impl IntoIterator<Item = &'a str>) -> Option<Agreement> {
        let before = self.agreement();
        for id in ids {
            self.live.remove(id);
        }
        if self.live.is_empty() {
            return None;
        }
        let after = self.agreement();
        (after != before).then_some(after)
    }

    /// Forgets every live server (the link to the broker is lost); verdicts stay.
    pub(crate) fn clear_live(&mut self) {
        self.live.clear();
    }

    /// The distinct hashes of the live servers, sorted.
    fn live_hashes(&self) -> Vec<&Option<String>> {
        let mut hashes: Vec<_> = self.live.values().collect();
        hashes.sort();
        hashes.dedup();
        hashes
    }

    /// What the client agreed with every live server: a member is lacking when any of them
    /// lacks it, so that a use of it fails before sending rather than on whichever replica takes
    /// it. With servers of several versions, the agreement names them all.
    pub(crate) fn agreement(&self) -> Agreement {
        let agreements: Vec<&Agreement> = self
            .live_hashes()
            .into_iter()
            .filter_map(|hash| self.verdicts.get(hash).and_then(|v| v.as_ref().ok()))
            .collect();
        match agreements.as_slice() {
            [] => Agreement::default(),
            [one] => (*one).clone(),
            several => {
                let mut combined = Agreement::default();
                combined.server = format!(
                    "replicas of {}",
                    several.iter().map(|a| a.server.as_str()).collect::<Vec<_>>().join(" and ")
                );
                for agreement in several {
                    for member in &agreement.lacking {
                        if !combined.lacking.contains(member) {
                            combined.lacking.push(member.clone());
                        }
                    }
                }
                combined
            }
        }
    }

    /// The hash a request carries (`sb-hash`), which a server of another hash refuses: that of
    /// the live servers when they all serve one, none when live replicas serve several (the
    /// client decided against each of them), and `own` while no server is live.
    pub(crate) fn request_hash(&self, own: &Option<String>) -> Option<String> {
        own.as_ref()?;
        match self.live_hashes().as_slice() {
            [] => own.clone(),
            [one] => (*one).clone().or_else(|| own.clone()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_core::compat::{Member, MemberKind};

    fn hello(hash: &str) -> Hello {
        Hello {
            protocol: 1,
            interface: "T".into(),
            version: "1.0.0".into(),
            hash: Some(hash.into()),
            instance: "default".into(),
            description: None,
        }
    }

    /// What a client of methods `a`, `b` and `c` agrees with a server whose description lacks
    /// `lacking`.
    fn agreement(server: &str, lacking: &[&str]) -> Agreement {
        let mut agreement = Agreement::default();
        agreement.server = server.into();
        agreement.lacking = lacking
            .iter()
            .map(|m| Member { kind: MemberKind::Method, name: (*m).into() })
            .collect();
        agreement
    }

    #[test]
    fn another_hash_without_a_description_is_asked_for_once_then_decided_once() {
        let ours = hello("sha256:01");
        let theirs = hello("sha256:02");
        let mut versions = Versions::default();
        assert_eq!(versions.decide(&ours, &theirs, true), Verdict::Undescribed);
        assert!(versions.ask("sha256:02") && !versions.ask("sha256:02"), "asked once");
        versions.retry();
        assert!(versions.ask("sha256:02"), "asked again after a retry");
        // An announcement that is not brief and has no description is from an older server:
        // compared by hash alone, as before, and the verdict is kept.
        assert!(matches!(versions.decide(&ours, &theirs, false), Verdict::Incompatible(_)));
        assert!(matches!(versions.decide(&ours, &theirs, true), Verdict::Incompatible(_)));
        // Our own hash needs no description.
        assert_eq!(versions.decide(&ours, &ours, true), Verdict::Compatible);
    }

    #[test]
    fn a_member_is_present_only_when_every_live_replica_has_it() {
        let mut versions = Versions::default();
        let (ours, old, older) = (
            Some("sha256:01".to_owned()),
            Some("sha256:02".to_owned()),
            Some("sha256:03".to_owned()),
        );
        versions.verdicts.insert(ours.clone(), Ok(agreement("T 1.2.0", &[])));
        versions.verdicts.insert(old.clone(), Ok(agreement("T 1.1.0", &["c"])));
        versions.verdicts.insert(older.clone(), Ok(agreement("T 1.0.0", &["b", "c"])));
        assert_eq!(versions.request_hash(&ours), ours, "no server live yet");
        let agreed = versions.live("r1", &old).expect("the first live server");
        assert_eq!(agreed, agreement("T 1.1.0", &["c"]));
        assert_eq!(versions.live("r1", &old), None, "no change");
        assert_eq!(versions.request_hash(&ours), old, "the one live version's hash");
        let agreed = versions.live("r2", &older).expect("a replica of another version");
        assert_eq!(agreed, agreement("replicas of T 1.1.0 and T 1.0.0", &["c", "b"]));
        assert_eq!(versions.request_hash(&ours), None, "replicas of two versions: no hash");
        assert_eq!(versions.request_hash(&None), None, "a dynamic client sends none");
        let agreed = versions.live("r3", &ours).expect("a third version");
        assert_eq!(agreed.lacking.len(), 2);
        let agreed = versions.gone(["r1", "r2"]).expect("only our version is left");
        assert_eq!(agreed, agreement("T 1.2.0", &[]));
        assert_eq!(versions.request_hash(&ours), ours);
        assert_eq!(versions.gone(["r3"]), None, "none left");
    }
}
