//! Petitions (phản ánh, kiến nghị) about dossiers and agencies, with the
//! lifecycle and working-day limits of Decision 766 (INDEX766.md §4): sent,
//! maybe forwarded to the right agency, received and classified, then
//! rejected, or maybe asked for a supplement, processed, answered and mostly
//! published; the last step carries the likes and dislikes. Limits count
//! Vietnam's working days (`dvc_warehouse::Calendar`, Vietnam's dates) from
//! the sending, or from the forwarding when forwarded; publication counts
//! from the answer. A petition on time meets every limit; a late one misses
//! exactly one (its rejection, answer or publication).

use dvc_events::{PetitionClassification, PetitionEvent, PetitionStatus};
use dvc_warehouse::Calendar;
use rand::prelude::*;
use rand::rngs::StdRng;
use time::macros::offset;
use time::{Duration, OffsetDateTime, Time, UtcOffset};

use crate::catalog;

/// Working days to reject a petition, from its sending or forwarding.
pub const REJECT_WITHIN: u32 = 2;
/// Working days to ask for the first supplement.
pub const SUPPLEMENT_WITHIN: u32 = 5;
/// Working days to answer.
pub const ANSWER_WITHIN: u32 = 15;
/// Working days to publish the answer, from the answer.
pub const PUBLISH_WITHIN: u32 = 2;

/// Vietnam's time, whose dates the working days count.
pub(crate) const VIETNAM: UtcOffset = offset!(+7);

/// Who a petition is about, and the offset of the system that writes it.
#[derive(Debug, Clone)]
pub struct About {
    pub authority_code: String,
    pub agency_code: String,
    pub dossier_id: Option<String>,
    pub procedure_code: Option<String>,
    pub offset: UtcOffset,
}

/// Builds one petition's events, numbering its steps.
struct Steps {
    id: String,
    about: About,
    repeat_of: Option<String>,
    events: Vec<PetitionEvent>,
}

impl Steps {
    fn push(&mut self, status: PetitionStatus, at: OffsetDateTime) -> &mut PetitionEvent {
        let step = self.events.len() + 1;
        self.events.push(PetitionEvent {
            schema_version: 1,
            event_id: format!("{}#{step}", self.id),
            petition_id: self.id.clone(),
            occurred_at: at.to_offset(self.about.offset),
            authority_code: self.about.authority_code.clone(),
            agency_code: self.about.agency_code.clone(),
            status,
            classification: None,
            dossier_id: self.about.dossier_id.clone(),
            procedure_code: self.about.procedure_code.clone(),
            likes: None,
            dislikes: None,
            repeat_of: self.repeat_of.clone(),
            extra: serde_json::Map::new(),
        });
        self.events.last_mut().expect("just pushed")
    }
}

/// A time on the `k`th working day after `from`'s date (`from`'s date itself
/// for 0), in office hours, and not before `after`, which must not be later
/// than that day; `None` outside the calendar's years.
fn on_working_day(
    rng: &mut StdRng,
    calendar: &Calendar,
    from: OffsetDateTime,
    k: u32,
    after: OffsetDateTime,
) -> Option<OffsetDateTime> {
    let day = calendar.add_working_days(from.to_offset(VIETNAM).date(), k)?;
    let start = day.with_time(Time::MIDNIGHT).assume_offset(VIETNAM);
    let at = start + Duration::minutes(rng.random_range(8 * 60..17 * 60));
    if at > after {
        return Some(at);
    }
    // The office minute drawn is past: halfway from `after` to midnight, the
    // same date.
    let midnight = start + Duration::DAY;
    Some(after + Duration::seconds((midnight - after).whole_seconds() / 2))
}

/// Which limit a late petition misses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Late {
    No,
    Rejection,
    Answer,
    Publication,
}

/// Every event of petition `id` about `about`, sent at `sent`, in step
/// order; `None` when one of its steps would fall outside the calendar.
pub fn life(
    rng: &mut StdRng,
    calendar: &Calendar,
    id: String,
    about: About,
    sent: OffsetDateTime,
    repeat_of: Option<String>,
) -> Option<Vec<PetitionEvent>> {
    let on_time = rng.random_bool(catalog::PETITION_ON_TIME);
    let rejected = rng.random_bool(catalog::PETITION_REJECTED);
    let published = !rejected && rng.random_bool(catalog::PETITION_PUBLISHED);
    let late = match (on_time, rejected, published) {
        (true, ..) => Late::No,
        (false, true, _) => Late::Rejection,
        (false, false, true) if rng.random_bool(0.3) => Late::Publication,
        (false, ..) => Late::Answer,
    };
    let classification = match rng.random_range(0..10) {
        0..=1 => PetitionClassification::Regulation,
        2 => PetitionClassification::StaffConduct,
        _ => PetitionClassification::Other,
    };
    let likes: u64 = rng.random_range(0..40);
    let dislikes = if rng.random_bool(catalog::PETITION_DISLIKED) {
        likes + rng.random_range(1..=10)
    } else {
        rng.random_range(0..=likes)
    };

    let mut steps = Steps { id, about, repeat_of, events: Vec::new() };
    steps.push(PetitionStatus::Submitted, sent);
    let mut t = sent;
    if rng.random_bool(catalog::PETITION_FORWARDED) {
        let k = rng.random_range(0..=1);
        t = on_working_day(rng, calendar, sent, k, t)?;
        steps.push(PetitionStatus::Forwarded, t);
    }
    // The limits count from here.
    let reference = t;
    let received = rng.random_range(0..=1);
    t = on_working_day(rng, calendar, reference, received, t)?;
    steps.push(PetitionStatus::Received, t).classification = Some(classification);
    let last = if rejected {
        let k = if late == Late::Rejection {
            rng.random_range(REJECT_WITHIN + 1..=REJECT_WITHIN + 5)
        } else {
            rng.random_range(received..=REJECT_WITHIN)
        };
        t = on_working_day(rng, calendar, reference, k, t)?;
        steps.push(PetitionStatus::Rejected, t)
    } else {
        let answer = if late == Late::Answer {
            rng.random_range(ANSWER_WITHIN + 1..=ANSWER_WITHIN + 10)
        } else {
            rng.random_range(received.max(2)..=ANSWER_WITHIN)
        };
        let mut k = received;
        if rng.random_bool(catalog::PETITION_SUPPLEMENT) {
            k = rng.random_range(received..=SUPPLEMENT_WITHIN.min(answer));
            t = on_working_day(rng, calendar, reference, k, t)?;
            steps.push(PetitionStatus::SupplementRequested, t);
        }
        k = rng.random_range(k..=answer);
        t = on_working_day(rng, calendar, reference, k, t)?;
        steps.push(PetitionStatus::Processing, t);
        t = on_working_day(rng, calendar, reference, answer, t)?;
        let answered = t;
        steps.push(PetitionStatus::Answered, t);
        if published {
            let k = if late == Late::Publication {
                rng.random_range(PUBLISH_WITHIN + 1..=PUBLISH_WITHIN + 6)
            } else {
                rng.random_range(0..=PUBLISH_WITHIN)
            };
            t = on_working_day(rng, calendar, answered, k, t)?;
            steps.push(PetitionStatus::Published, t);
        }
        steps.events.last_mut().expect("answered at least")
    };
    last.likes = Some(likes);
    last.dislikes = Some(dislikes);
    Some(steps.events)
}

#[cfg(test)]
mod tests {
    use time::Date;
    use time::macros::datetime;

    use super::*;

    fn about(dossier: bool) -> About {
        About {
            authority_code: "H01".into(),
            agency_code: "000.00.01.H01".into(),
            dossier_id: dossier.then(|| "000.00.01.H01-260105-0001".into()),
            procedure_code: Some("1.001234".into()),
            offset: UtcOffset::UTC,
        }
    }

    fn calendar() -> &'static Calendar {
        Calendar::official().unwrap()
    }

    /// Working days from `a`'s date to `b`'s, in Vietnam.
    fn between(a: &PetitionEvent, b: &PetitionEvent) -> i64 {
        let date = |e: &PetitionEvent| -> Date { e.occurred_at.to_offset(VIETNAM).date() };
        calendar().working_days_between(date(a), date(b)).unwrap()
    }

    /// Whether every limit is met, recounted from the events alone.
    fn handled_on_time(events: &[PetitionEvent]) -> bool {
        let step = |s| events.iter().find(|e| e.status == s);
        let reference = step(PetitionStatus::Forwarded).or(step(PetitionStatus::Submitted)).unwrap();
        let within = |s, limit: u32| step(s).is_none_or(|e| between(reference, e) <= i64::from(limit));
        let published = match (step(PetitionStatus::Answered), step(PetitionStatus::Published)) {
            (Some(a), Some(p)) => between(a, p) <= i64::from(PUBLISH_WITHIN),
            _ => true,
        };
        within(PetitionStatus::Rejected, REJECT_WITHIN)
            && within(PetitionStatus::SupplementRequested, SUPPLEMENT_WITHIN)
            && within(PetitionStatus::Answered, ANSWER_WITHIN)
            && published
    }

    fn sample(n: u64) -> Vec<Vec<PetitionEvent>> {
        let start = datetime!(2025-12-01 0:00 UTC);
        (0..n)
            .map(|i| {
                let mut rng = StdRng::seed_from_u64(i);
                let sent = start + Duration::minutes(rng.random_range(0..300 * 1440));
                life(&mut rng, calendar(), format!("PAKN-{i}"), about(i % 3 > 0), sent, None).unwrap()
            })
            .collect()
    }

    #[test]
    fn lives_are_valid_ordered_and_end_in_a_verdict() {
        for events in sample(2_000) {
            assert!(events.windows(2).all(|w| w[0].occurred_at <= w[1].occurred_at), "{events:?}");
            assert!(events.windows(2).all(|w| w[0].status.code() < w[1].status.code()), "lifecycle order");
            assert_eq!(events[0].status, PetitionStatus::Submitted);
            let last = events.last().unwrap();
            assert!(matches!(
                last.status,
                PetitionStatus::Rejected | PetitionStatus::Answered | PetitionStatus::Published
            ));
            assert!(last.likes.is_some() && last.dislikes.is_some());
            for e in &events {
                let text = serde_json::to_vec(e).unwrap();
                assert_eq!(&PetitionEvent::decode(&text).unwrap(), e, "a valid contract message");
            }
        }
    }

    #[test]
    fn shares_land_on_the_calibration() {
        let all = sample(20_000);
        let share =
            |f: &dyn Fn(&Vec<PetitionEvent>) -> bool| all.iter().filter(|p| f(p)).count() as f64 / all.len() as f64;
        let on_time = share(&|p| handled_on_time(p));
        assert!((on_time - catalog::PETITION_ON_TIME).abs() < 0.01, "on time {on_time}");
        let disliked = |p: &Vec<PetitionEvent>| {
            let last = p.last().unwrap();
            last.dislikes > last.likes
        };
        let satisfied = share(&|p| handled_on_time(p) && !disliked(p));
        let want = catalog::PETITION_ON_TIME * (1.0 - catalog::PETITION_DISLIKED);
        assert!((satisfied - want).abs() < 0.01, "satisfied {satisfied}, want {want}");
        let rejected = share(&|p| p.iter().any(|e| e.status == PetitionStatus::Rejected));
        assert!((rejected - catalog::PETITION_REJECTED).abs() < 0.01, "rejected {rejected}");
        let published = share(&|p| p.iter().any(|e| e.status == PetitionStatus::Published));
        let want = (1.0 - catalog::PETITION_REJECTED) * catalog::PETITION_PUBLISHED;
        assert!((published - want).abs() < 0.01, "published {published}");
    }

    #[test]
    fn deadlines_step_over_tet() {
        // Sent on Friday 13/2/2026, the last day worked before Tết Bính Ngọ
        // (14-22/2): no step falls in the break.
        let sent = datetime!(2026-02-13 09:00 +7);
        for seed in 0..300 {
            let mut rng = StdRng::seed_from_u64(seed);
            let events = life(&mut rng, calendar(), "PAKN-tet".into(), about(true), sent, None).unwrap();
            for e in &events[1..] {
                let day = e.occurred_at.to_offset(VIETNAM).date();
                assert!(calendar().day(day).unwrap().kind.is_working() || day == sent.date(), "{e:?}");
            }
            // Not forwarded, the limits count from 13/2: the 15th working
            // day after is Friday 13/3.
            let forwarded = events.iter().any(|e| e.status == PetitionStatus::Forwarded);
            if handled_on_time(&events) && !forwarded {
                let last = events.iter().rfind(|e| e.status != PetitionStatus::Published).unwrap();
                assert!(last.occurred_at.to_offset(VIETNAM).date() <= time::macros::date!(2026 - 03 - 13), "{last:?}");
            }
        }
    }

    #[test]
    fn outside_the_calendar_there_is_no_petition() {
        let mut rng = StdRng::seed_from_u64(1);
        assert!(
            life(&mut rng, calendar(), "PAKN-x".into(), about(true), datetime!(2027-12-30 10:00 UTC), None).is_none()
        );
    }
}
