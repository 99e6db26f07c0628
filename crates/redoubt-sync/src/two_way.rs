//! Pull then push, over any transport: the rule both sides converge by, and which refusals a
//! two-way sync tolerates.

use std::{fmt, future::Future};

use redoubt_protocol::Mode;
use redoubt_vault::MergeReport;

/// What a transport's error tells the two-way sync.
pub trait LinkError {
    /// Whether the peer refused because it holds no such client. A two-way sync tolerates it
    /// in one direction: the other side then creates the client.
    fn is_client_not_found(&self) -> bool;

    /// Whether the peer refused for lack of a grant on its side. A two-way sync of every
    /// client tolerates it in either direction: the peer's table allows nothing that way.
    fn is_permission_denied(&self) -> bool;
}

/// A way to one peer (a live connection, or a remote on shared storage) that can pull from it
/// and ask it to take what we hold.
pub trait Link {
    /// What a pull returns besides its merge report (counts, bytes); its default is a pull that
    /// moved nothing.
    type Pulled: Default;
    /// Why a pull or push failed.
    type Error: LinkError;

    /// Pulls `mode` from the peer and merges it (under our write grants).
    fn pull(
        &mut self,
        mode: Mode,
    ) -> impl Future<Output = Result<Self::Pulled, Self::Error>> + Send;

    /// Offers `mode` to the peer (under our read grants); returns what it merged.
    fn push(&mut self, mode: Mode)
    -> impl Future<Output = Result<MergeReport, Self::Error>> + Send;
}

/// Which directions a sync runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Directions {
    /// Pull, then push.
    #[default]
    Both,
    /// Pull only.
    PullOnly,
    /// Push only.
    PushOnly,
}

impl Directions {
    fn pulls(self) -> bool {
        self != Self::PushOnly
    }

    fn pushes(self) -> bool {
        self != Self::PullOnly
    }
}

/// One of the two steps of a sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Our pull from the peer.
    Pull,
    /// Our push to the peer.
    Push,
}

/// A step that moved nothing because the peer's grants close that way, which is said, not an
/// error (a sync of every client, both ways).
#[derive(Debug)]
pub struct Note<E> {
    /// The step that moved nothing.
    pub step: Step,
    /// The peer's refusal.
    pub reason: E,
}

impl<E: fmt::Display> fmt::Display for Note<E> {
    /// `nothing pulled: REASON` or `nothing pushed: REASON`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.step {
            Step::Pull => "pulled",
            Step::Push => "pushed",
        };
        write!(f, "nothing {what}: {}", self.reason)
    }
}

/// What a sync did: each step's result (`None` for a step not run) and the notes to show.
#[derive(Debug)]
pub struct TwoWay<P, E> {
    /// What the pull merged here.
    pub pulled: Option<P>,
    /// What the peer merged from our push.
    pub pushed: Option<MergeReport>,
    /// Steps that moved nothing, and why.
    pub notes: Vec<Note<E>>,
}

/// A sync that failed at one step. What a pull before it merged was kept.
#[derive(Debug)]
pub struct Failed<E> {
    /// The step that failed.
    pub step: Step,
    /// Why.
    pub error: E,
    /// Whether a pull ran before the failed push (and what it merged was kept).
    pub after_pull: bool,
    /// When the push failed because the peer holds no such client and the pull had failed
    /// the same way (neither side holds it): the pull's refusal.
    pub earlier: Option<E>,
    /// Notes from the steps before the failure.
    pub notes: Vec<Note<E>>,
}

/// Runs `directions` of a sync of `mode` over `link`: the pull first, then the push, so both
/// sides end converged on `mode` as far as the grants let records move.
///
/// When both steps run, a peer that holds no such client is not an error as long as we hold
/// it (the push creates it there); a sync of every client (an import with an empty list)
/// tolerates a step the peer's grants refuse and says so in a [`Note`]. Every other failure
/// stops the sync at that step.
///
/// ```
/// use redoubt_protocol::Mode;
/// use redoubt_sync::{Directions, Link, LinkError, pull_then_push};
/// use redoubt_vault::MergeReport;
///
/// #[derive(Debug)]
/// struct Denied;
/// impl LinkError for Denied {
///     fn is_client_not_found(&self) -> bool { false }
///     fn is_permission_denied(&self) -> bool { true }
/// }
/// impl std::fmt::Display for Denied {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         f.write_str("permission denied by peer")
///     }
/// }
///
/// /// A peer that lets us read, but not write into it.
/// struct ReadOnly;
/// impl Link for ReadOnly {
///     type Pulled = MergeReport;
///     type Error = Denied;
///     async fn pull(&mut self, _: Mode) -> Result<MergeReport, Denied> {
///         let mut report = MergeReport::default();
///         report.added = 2;
///         Ok(report)
///     }
///     async fn push(&mut self, _: Mode) -> Result<MergeReport, Denied> {
///         Err(Denied)
///     }
/// }
///
/// let every = Mode::Import { clients: vec![] };
/// let done = futures::executor::block_on(pull_then_push(&mut ReadOnly, every, Directions::Both))
///     .unwrap();
/// assert_eq!(done.pulled.unwrap().added, 2);
/// assert_eq!(done.pushed, Some(MergeReport::default()));
/// assert_eq!(done.notes[0].to_string(), "nothing pushed: permission denied by peer");
/// ```
pub async fn pull_then_push<L: Link>(
    link: &mut L,
    mode: Mode,
    directions: Directions,
) -> Result<TwoWay<L::Pulled, L::Error>, Failed<L::Error>> {
    let both = directions == Directions::Both;
    // Of every client, both ways, a step the peer's table closes moves nothing: not an error.
    let every = both && matches!(&mode, Mode::Import { clients } if clients.is_empty());
    let mut notes = Vec::new();
    let mut missing_there = None;
    let pulled = if directions.pulls() {
        match link.pull(mode.clone()).await {
            Ok(p) => Some(p),
            Err(e) if both && e.is_client_not_found() => {
                missing_there = Some(e);
                Some(L::Pulled::default())
            }
            Err(e) if every && e.is_permission_denied() => {
                notes.push(Note {
                    step: Step::Pull,
                    reason: e,
                });
                Some(L::Pulled::default())
            }
            Err(error) => {
                return Err(Failed {
                    step: Step::Pull,
                    error,
                    after_pull: false,
                    earlier: None,
                    notes,
                });
            }
        }
    } else {
        None
    };
    let pushed = if directions.pushes() {
        match link.push(mode).await {
            Ok(r) => Some(r),
            Err(e) if both && e.is_client_not_found() && missing_there.is_none() => {
                Some(MergeReport::default())
            }
            Err(e) if every && e.is_permission_denied() => {
                notes.push(Note {
                    step: Step::Push,
                    reason: e,
                });
                Some(MergeReport::default())
            }
            Err(error) => {
                let earlier = if error.is_client_not_found() {
                    missing_there
                } else {
                    None
                };
                return Err(Failed {
                    step: Step::Push,
                    error,
                    after_pull: pulled.is_some(),
                    earlier,
                    notes,
                });
            }
        }
    } else {
        None
    };
    Ok(TwoWay {
        pulled,
        pushed,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use futures::executor::block_on;

    use super::*;

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Fail {
        NotFound,
        Denied,
        Other,
    }

    impl LinkError for Fail {
        fn is_client_not_found(&self) -> bool {
            *self == Self::NotFound
        }
        fn is_permission_denied(&self) -> bool {
            *self == Self::Denied
        }
    }

    /// Answers each step with the next scripted result; records the steps run.
    struct Script {
        pull: Result<u64, Fail>,
        push: Result<u64, Fail>,
        ran: VecDeque<Step>,
    }

    fn script(pull: Result<u64, Fail>, push: Result<u64, Fail>) -> Script {
        Script {
            pull,
            push,
            ran: VecDeque::new(),
        }
    }

    impl Link for Script {
        type Pulled = u64;
        type Error = Fail;
        async fn pull(&mut self, _: Mode) -> Result<u64, Fail> {
            self.ran.push_back(Step::Pull);
            self.pull
        }
        async fn push(&mut self, _: Mode) -> Result<MergeReport, Fail> {
            self.ran.push_back(Step::Push);
            self.push.map(|added| {
                let mut report = MergeReport::default();
                report.added = added;
                report
            })
        }
    }

    fn every() -> Mode {
        Mode::Import { clients: vec![] }
    }

    fn one() -> Mode {
        Mode::Full {
            client: b"c".to_vec(),
        }
    }

    #[test]
    fn both_ways_pull_first_then_push() {
        let mut link = script(Ok(3), Ok(2));
        let done = block_on(pull_then_push(&mut link, one(), Directions::Both)).unwrap();
        assert_eq!(done.pulled, Some(3));
        assert_eq!(done.pushed.unwrap().added, 2);
        assert!(done.notes.is_empty());
        assert_eq!(link.ran, [Step::Pull, Step::Push]);
    }

    #[test]
    fn one_direction_runs_only_that_step() {
        let mut link = script(Ok(3), Ok(2));
        let done = block_on(pull_then_push(&mut link, one(), Directions::PullOnly)).unwrap();
        assert_eq!((done.pulled, done.pushed), (Some(3), None));
        let mut link = script(Ok(3), Ok(2));
        let done = block_on(pull_then_push(&mut link, one(), Directions::PushOnly)).unwrap();
        assert_eq!(done.pulled, None);
        assert_eq!(link.ran, [Step::Push]);
    }

    #[test]
    fn a_client_only_one_side_holds_is_no_error_both_ways() {
        let mut link = script(Err(Fail::NotFound), Ok(2));
        let done = block_on(pull_then_push(&mut link, one(), Directions::Both)).unwrap();
        assert_eq!(done.pulled, Some(0));
        let mut link = script(Ok(1), Err(Fail::NotFound));
        let done = block_on(pull_then_push(&mut link, one(), Directions::Both)).unwrap();
        assert_eq!(done.pushed, Some(MergeReport::default()));
        // One way, the peer's refusal is the answer.
        let mut link = script(Err(Fail::NotFound), Ok(2));
        let failed = block_on(pull_then_push(&mut link, one(), Directions::PullOnly)).unwrap_err();
        assert_eq!((failed.step, failed.error), (Step::Pull, Fail::NotFound));
        let mut link = script(Ok(1), Err(Fail::NotFound));
        let failed = block_on(pull_then_push(&mut link, one(), Directions::PushOnly)).unwrap_err();
        assert_eq!((failed.step, failed.after_pull), (Step::Push, false));
    }

    #[test]
    fn a_client_neither_side_holds_fails_the_push_keeping_the_pulls_refusal() {
        let mut link = script(Err(Fail::NotFound), Err(Fail::NotFound));
        let failed = block_on(pull_then_push(&mut link, one(), Directions::Both)).unwrap_err();
        assert_eq!(failed.step, Step::Push);
        assert!(failed.after_pull);
        assert_eq!(failed.earlier, Some(Fail::NotFound));
        let mut link = script(Err(Fail::NotFound), Err(Fail::Other));
        let failed = block_on(pull_then_push(&mut link, one(), Directions::Both)).unwrap_err();
        assert_eq!((failed.error, failed.earlier), (Fail::Other, None));
    }

    #[test]
    fn of_every_client_both_ways_a_closed_direction_is_a_note() {
        let mut link = script(Err(Fail::Denied), Err(Fail::Denied));
        let done = block_on(pull_then_push(&mut link, every(), Directions::Both)).unwrap();
        let steps: Vec<Step> = done.notes.iter().map(|n| n.step).collect();
        assert_eq!(steps, [Step::Pull, Step::Push]);
        // A named client, or one way, makes the refusal an error.
        let mut link = script(Err(Fail::Denied), Ok(0));
        let failed = block_on(pull_then_push(&mut link, one(), Directions::Both)).unwrap_err();
        assert_eq!(failed.step, Step::Pull);
        let mut link = script(Err(Fail::Denied), Ok(0));
        assert!(block_on(pull_then_push(&mut link, every(), Directions::PullOnly)).is_err());
    }

    #[test]
    fn a_push_failure_after_a_note_carries_the_note() {
        let mut link = script(Err(Fail::Denied), Err(Fail::Other));
        let failed = block_on(pull_then_push(&mut link, every(), Directions::Both)).unwrap_err();
        assert_eq!(failed.step, Step::Push);
        assert_eq!(failed.notes.len(), 1);
        assert_eq!(link.ran, [Step::Pull, Step::Push]);
    }
}
