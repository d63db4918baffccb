//! Whether the consumer group has given this instance partitions, and the
//! rules that call a join stuck.
//!
//! A subscribed instance normally gets its partitions within one session
//! timeout of joining (the coordinator waits that long for a dead member at
//! most). Past twice the session timeout without any, the join is stuck:
//! `/healthz` fails with the reason and the poll loop leaves the group and
//! joins again as a new member.
//!
//! An empty assignment is checked at once: with the round-robin assignor
//! every member gets a partition unless the group has more members than the
//! topics have partitions, so an empty assignment in a smaller group is a
//! coordinator fault (tansu 0.6 completes a group with no assignments when
//! its leader's session expires between a follower's join and sync), and the
//! instance joins again without waiting. Idle by design, it is healthy.
//! Where the coordinator cannot describe the group (tansu 0.6's SQLite store
//! fails DescribeGroups), the first empty assignment of a wait is taken as a
//! fault and the instance joins again once; later ones wait for the join
//! patience, so an idle member does not set off rebalance after rebalance.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many session timeouts a join may take before it counts as stuck.
pub const STUCK_AFTER_SESSIONS: u32 = 2;

/// True when a join that has waited `waited` for an assignment is stuck.
pub fn is_stuck(waited: Duration, session_timeout: Duration) -> bool {
    waited > session_timeout * STUCK_AFTER_SESSIONS
}

/// How long the `rejoins`-th join in a row (0: the first) may take before the
/// instance leaves it: twice the session timeout, doubling with each rejoin
/// up to 64 times, so that a join slower than that (a real coordinator waits
/// up to the rebalance timeout for slow members) still completes.
pub fn join_patience(session_timeout: Duration, rejoins: u32) -> Duration {
    session_timeout * STUCK_AFTER_SESSIONS * 2u32.pow(rejoins.min(6))
}

/// True when a group of `members` consumers may leave one of them without a
/// partition of the `partitions` it reads (round-robin assignment).
pub fn idle_is_expected(members: usize, partitions: usize) -> bool {
    members > partitions
}

/// What an empty assignment calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterEmpty {
    /// Idle by design: healthy, nothing to do.
    Idle,
    /// A coordinator fault: join again as a new member now.
    Rejoin,
    /// Unknown: keep waiting; the join patience decides.
    Wait,
}

#[derive(Debug)]
pub struct Membership {
    session_timeout: Duration,
    /// `None` while the instance holds partitions (or is idle by design), or
    /// before it subscribes.
    waiting: Mutex<Option<Waiting>>,
}

#[derive(Debug, Clone, Copy)]
struct Waiting {
    /// Since when the instance has held no assignment (subscribe or revocation).
    since: Instant,
    /// When it last joined: `since`, or its latest rejoin.
    joined: Instant,
    /// Rejoins since it last held an assignment.
    rejoins: u32,
    /// The group answered with an empty assignment not yet checked against
    /// the group's size.
    empty_unchecked: bool,
}

impl Waiting {
    fn from(now: Instant) -> Waiting {
        Waiting { since: now, joined: now, rejoins: 0, empty_unchecked: false }
    }
}

impl Membership {
    /// Not subscribed yet.
    pub fn new(session_timeout: Duration) -> Membership {
        Membership { session_timeout, waiting: Mutex::new(None) }
    }

    pub fn session_timeout(&self) -> Duration {
        self.session_timeout
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Waiting>> {
        // Plain data: a panic elsewhere leaves it consistent.
        self.waiting.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The instance subscribed at `now`: it waits for its first assignment.
    pub fn subscribed(&self, now: Instant) {
        *self.lock() = Some(Waiting::from(now));
    }

    /// The group gave this instance partitions; or its empty assignment was
    /// found to be by design (`idle_is_expected`).
    pub fn assigned(&self) {
        *self.lock() = None;
    }

    /// The group gave this instance no partition at `now`: it goes on
    /// waiting, and the assignment is to be checked (`take_empty_to_check`).
    pub fn assigned_nothing(&self, now: Instant) {
        self.lock().get_or_insert(Waiting::from(now)).empty_unchecked = true;
    }

    /// True once after each empty assignment.
    pub fn take_empty_to_check(&self) -> bool {
        self.lock().as_mut().is_some_and(|w| std::mem::take(&mut w.empty_unchecked))
    }

    /// Judges an empty assignment by the group's size, `(members,
    /// partitions)`, when the coordinator could tell it; an idle member by
    /// design counts as assigned from then on.
    pub fn after_empty_assignment(&self, group: Option<(usize, usize)>) -> AfterEmpty {
        let verdict = match group {
            Some((members, partitions)) if idle_is_expected(members, partitions) => AfterEmpty::Idle,
            Some(_) => AfterEmpty::Rejoin,
            None if self.lock().is_some_and(|w| w.rejoins == 0) => AfterEmpty::Rejoin,
            None => AfterEmpty::Wait,
        };
        if verdict == AfterEmpty::Idle {
            self.assigned();
        }
        verdict
    }

    /// The partitions were taken back: the instance waits for an assignment
    /// from `now` on, unless it was already waiting.
    pub fn waiting(&self, now: Instant) {
        self.lock().get_or_insert(Waiting::from(now));
    }

    /// The instance left the group and joined again at `now`; it is still
    /// waiting, since it was before.
    pub fn rejoined(&self, now: Instant) {
        let mut waiting = self.lock();
        let w = waiting.get_or_insert(Waiting::from(now));
        w.joined = now;
        w.rejoins = w.rejoins.saturating_add(1);
        w.empty_unchecked = false;
    }

    /// How long the instance has held no assignment at `now`, if it holds none.
    pub fn waited(&self, now: Instant) -> Option<Duration> {
        self.lock().map(|w| now.saturating_duration_since(w.since))
    }

    /// True when the current join (the first, or the latest rejoin) has
    /// lasted longer than its patience (`join_patience`) at `now`.
    pub fn rejoin_due(&self, now: Instant) -> bool {
        self.lock()
            .is_some_and(|w| now.saturating_duration_since(w.joined) > join_patience(self.session_timeout, w.rejoins))
    }

    /// `/healthz`'s view: why the instance is unhealthy, if it is: it has
    /// held no assignment for longer than a join may take.
    pub fn problem(&self, now: Instant) -> Option<String> {
        let waited = self.waited(now).filter(|w| is_stuck(*w, self.session_timeout))?;
        Some(format!(
            "no partition assignment from the consumer group for {} s (more than {STUCK_AFTER_SESSIONS} × the {} s \
             session timeout): the join is stuck; the instance leaves the group and joins again",
            waited.as_secs(),
            self.session_timeout.as_secs_f64()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SESSION: Duration = Duration::from_secs(45);

    #[test]
    fn a_join_is_stuck_only_past_twice_the_session_timeout() {
        assert!(!is_stuck(Duration::from_secs(45), SESSION));
        assert!(!is_stuck(Duration::from_secs(90), SESSION));
        assert!(is_stuck(Duration::from_millis(90_001), SESSION));
    }

    #[test]
    fn waiting_runs_from_subscribe_until_assigned_and_again_from_revocation() {
        let m = Membership::new(SESSION);
        let t0 = Instant::now();
        let later = t0 + Duration::from_secs(100);
        assert!(!m.rejoin_due(later) && m.problem(later).is_none(), "not subscribed yet");
        m.subscribed(t0);
        assert!(m.rejoin_due(later), "subscribed 100 s ago, never assigned");
        assert!(m.problem(later).is_some_and(|p| p.contains("45 s session timeout")));

        m.assigned();
        assert_eq!(m.waited(later), None);
        assert!(!m.rejoin_due(later + Duration::from_secs(1000)));
        assert_eq!(m.problem(later), None);

        m.waiting(later);
        assert_eq!(m.waited(later + Duration::from_secs(30)), Some(Duration::from_secs(30)));
        assert!(!m.rejoin_due(later + Duration::from_secs(90)));
        assert_eq!(m.problem(later + Duration::from_secs(90)), None);
        assert!(m.rejoin_due(later + Duration::from_secs(91)));
        assert!(m.problem(later + Duration::from_secs(91)).is_some());
    }

    #[test]
    fn patience_doubles_with_each_rejoin_up_to_a_cap() {
        let p = |n| join_patience(SESSION, n).as_secs();
        assert_eq!([p(0), p(1), p(2), p(6), p(7), p(100)], [90, 180, 360, 5760, 5760, 5760]);
    }

    #[test]
    fn an_idle_member_is_expected_only_when_members_outnumber_partitions() {
        assert!(!idle_is_expected(1, 12));
        assert!(!idle_is_expected(12, 12));
        assert!(idle_is_expected(13, 12));
        assert!(!idle_is_expected(1, 1));
    }

    #[test]
    fn an_empty_assignment_is_judged_by_the_group_size_or_else_by_the_rejoins_so_far() {
        let t0 = Instant::now();
        let m = Membership::new(SESSION);
        m.subscribed(t0);
        assert_eq!(m.after_empty_assignment(Some((13, 12))), AfterEmpty::Idle);
        assert_eq!(m.problem(t0 + Duration::from_secs(500)), None, "idle by design is healthy");

        m.waiting(t0);
        assert_eq!(m.after_empty_assignment(Some((3, 12))), AfterEmpty::Rejoin);
        assert_eq!(m.after_empty_assignment(None), AfterEmpty::Rejoin, "the group's size unknown: once");
        m.rejoined(t0 + Duration::from_secs(1));
        assert_eq!(m.after_empty_assignment(None), AfterEmpty::Wait, "then the join patience decides");
        assert_eq!(m.after_empty_assignment(Some((2, 12))), AfterEmpty::Rejoin, "a known size still decides");
    }

    #[test]
    fn an_empty_assignment_is_checked_once_and_keeps_the_clock_running() {
        let m = Membership::new(SESSION);
        let t0 = Instant::now();
        m.subscribed(t0);
        assert!(!m.take_empty_to_check());
        m.assigned_nothing(t0 + Duration::from_secs(50));
        assert!(m.take_empty_to_check());
        assert!(!m.take_empty_to_check(), "once per empty assignment");
        assert_eq!(m.waited(t0 + Duration::from_secs(60)), Some(Duration::from_secs(60)), "still waiting since t0");
        assert!(m.rejoin_due(t0 + Duration::from_secs(91)));
        m.assigned_nothing(t0 + Duration::from_secs(95));
        m.rejoined(t0 + Duration::from_secs(95));
        assert!(!m.take_empty_to_check(), "a rejoin supersedes the assignment to check");
        m.assigned(); // checked: idle by design
        assert_eq!(m.problem(t0 + Duration::from_secs(500)), None);
    }

    #[test]
    fn a_rejoin_restarts_the_join_clock_but_not_the_health_clock() {
        let m = Membership::new(SESSION);
        m.assigned();
        let t = Instant::now();
        m.waiting(t);
        m.waiting(t + Duration::from_secs(60)); // a second revocation changes nothing
        let rejoin = t + Duration::from_secs(91);
        assert!(m.rejoin_due(rejoin));
        m.rejoined(rejoin);
        assert!(!m.rejoin_due(rejoin + Duration::from_secs(180)), "the second join gets twice the patience");
        assert!(m.rejoin_due(rejoin + Duration::from_secs(181)));
        assert_eq!(m.waited(rejoin), Some(Duration::from_secs(91)));
        assert!(m.problem(rejoin).is_some(), "still unhealthy until assigned");
        m.assigned();
        assert_eq!(m.problem(rejoin), None);
    }
}
