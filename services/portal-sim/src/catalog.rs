//! Who publishes, what they handle, and the figures the traffic is calibrated
//! to. The targets come from the seed articles (`docs/sources.md`, the mid-2024
//! government report on digital transformation); the rest are stated
//! assumptions, marked as such.

use std::collections::BTreeSet;

use dvc_events::{AuthorityKind, CatalogEntry, ServiceLevel};
use dvc_warehouse::Directory;
use time::macros::date;
use time::{Date, OffsetDateTime};

/// Share of dossiers filed online for a full-process online service
/// (`full_online_share`), mid-2024: the whole country.
pub const FULL_ONLINE_NATIONAL: f64 = 0.42;
/// The same for ministries (`G..`).
pub const FULL_ONLINE_MINISTRIES: f64 = 0.61;
/// The same for provinces (`H..`).
pub const FULL_ONLINE_PROVINCES: f64 = 0.17;

/// The ministries' share of all dossiers, so that the national figure is the
/// dossier-weighted mean of the two kinds: 42 = 61·w + 17·(1 − w).
pub const MINISTRY_SHARE: f64 =
    (FULL_ONLINE_NATIONAL - FULL_ONLINE_PROVINCES) / (FULL_ONLINE_MINISTRIES - FULL_ONLINE_PROVINCES);

/// Dossiers with digitized components (78.91% in the seed report).
pub const DIGITIZED: f64 = 0.7891;
/// Resolved dossiers with an electronic result (75.5%).
pub const RESULT_DIGITIZED: f64 = 0.755;

/// Dossiers through the national portal in H1 2024 (13.9 million), and the
/// online payments of the same half-year: 7.4 million worth 4,620 bn VND.
pub const DOSSIERS_PER_HALF_YEAR: f64 = 13.9e6;
pub const ONLINE_PAYMENTS_PER_HALF_YEAR: f64 = 7.4e6;
pub const ONLINE_PAYMENT_VALUE_PER_HALF_YEAR_VND: f64 = 4_620e9;

/// Succeeded, not refunded online payments per dossier (≈ 0.53).
pub const ONLINE_PAYMENTS_PER_DOSSIER: f64 = ONLINE_PAYMENTS_PER_HALF_YEAR / DOSSIERS_PER_HALF_YEAR;
/// Mean value of one online payment (≈ 624,000 VND).
pub const MEAN_ONLINE_PAYMENT_VND: f64 = ONLINE_PAYMENT_VALUE_PER_HALF_YEAR_VND / ONLINE_PAYMENTS_PER_HALF_YEAR;

/// National-portal volume: dossiers per day (13.9 million per 182.5 days).
pub const NATIONAL_DOSSIERS_PER_DAY: f64 = DOSSIERS_PER_HALF_YEAR / 182.5;

// Assumptions (no seed figure): the dossier's path and the applicant.
/// Dossiers that are accepted (the rest are not accepted or withdrawn first).
pub const ACCEPTED: f64 = 0.9;
/// Fee-bearing dossiers paid through an online method.
pub const ONLINE_METHOD: f64 = 0.84;
/// Fee-bearing dossiers that end up paid (the others are abandoned).
pub const PAID: f64 = 0.9;
/// Succeeded payments later refunded.
pub const REFUNDED: f64 = 0.05;
/// Share of fee-bearing dossiers, derived so that online payments per
/// dossier match the seed figure.
pub const FEE_BEARING: f64 = ONLINE_PAYMENTS_PER_DOSSIER / (ACCEPTED * ONLINE_METHOD * PAID * (1.0 - REFUNDED));
const _: () = assert!(FEE_BEARING < 1.0, "the assumptions leave room for the seed's payment count");
/// Applicants whose account is linked to VNeID (55.25 M of 75.7 M
/// electronic identity accounts were activated in mid-2024).
pub const VNEID_LINKED: f64 = 0.73;
/// Contract 1.1's dossier flags (CONTRACT.md §8), set when the dossier is
/// filed. Reusing digitized data: Phú Thọ, 2026 to date, 136,827 of 597,918
/// dossiers (Decision 766 indicator 4.3, INDEX766.md §6).
pub const REUSED_DIGITIZED_DATA: f64 = 136_827.0 / 597_918.0;
/// Components from the applicant's document store: rare (Phú Thọ reported
/// none in 2026; assumed 2% here so the flag is seen at all).
pub const FROM_PERSONAL_STORE: f64 = 0.02;
/// The population database used (assumption: indicator 4.5b, which also
/// counts VNeID-verified dossiers, was 54.5% for Phú Thọ in 2026).
pub const POPULATION_DB_USED: f64 = 0.4;
/// Closed dossiers closed by their due date.
pub const ON_TIME: f64 = 0.93;
/// Returned dossiers that get a rating, and the ratings' mix (the 2025
/// target is 90% satisfied).
pub const RATED: f64 = 0.35;
pub const SATISFIED: f64 = 0.88;
pub const NEUTRAL: f64 = 0.08;

/// Petitions (phản ánh, kiến nghị; INDEX766.md indicators 5.2, 5.3): Phú Thọ,
/// 2026 to date, 570 petitions received for 597,918 dossiers, 296 of them
/// handled on time and 230 counted satisfied (on time, not disliked, not
/// repeated). The simulator files them for that share of dossiers, picked by
/// a low-discrepancy sequence.
pub const PETITIONS_PER_DOSSIER: f64 = 570.0 / 597_918.0;
pub const PETITION_ON_TIME: f64 = 296.0 / 570.0;
pub const PETITION_SATISFIED: f64 = 230.0 / 570.0;
/// Assumptions, no published figure: petitions about an agency rather than a
/// dossier; forwarded to another agency first; rejected; asked for a
/// supplement; answers published; followed by a repeat of the same matter
/// (so 1 in 1 + 0.05 petitions is not a repeat).
pub const PETITION_WITHOUT_DOSSIER: f64 = 0.3;
pub const PETITION_FORWARDED: f64 = 0.1;
pub const PETITION_REJECTED: f64 = 0.12;
pub const PETITION_SUPPLEMENT: f64 = 0.15;
pub const PETITION_PUBLISHED: f64 = 0.85;
pub const PETITION_REPEATED: f64 = 0.05;
/// Petitions with more dislikes than likes: what on time, not a repeat and
/// not disliked need to land on [`PETITION_SATISFIED`] (about 18%).
pub const PETITION_DISLIKED: f64 = 1.0 - PETITION_SATISFIED / (PETITION_ON_TIME / (1.0 + PETITION_REPEATED));

/// Fees in VND and their weights; the mean is 623,800 VND, within 0.1% of
/// [`MEAN_ONLINE_PAYMENT_VND`].
pub const FEES: [(u64, u32); 8] = [
    (20_000, 10),
    (50_000, 18),
    (100_000, 20),
    (200_000, 17),
    (500_000, 14),
    (1_000_000, 10),
    (2_000_000, 7),
    (5_100_000, 5),
];

/// A procedure of the catalog: its code and name, how it is offered, its
/// legal processing time in working days, and whether citizens (not only
/// businesses) file it.
#[derive(Debug, Clone, Copy)]
pub struct Procedure {
    pub code: &'static str,
    pub name: &'static str,
    pub level: ServiceLevel,
    pub days: u8,
    pub citizens: bool,
}

const fn procedure(code: &'static str, name: &'static str, level: ServiceLevel, days: u8, citizens: bool) -> Procedure {
    Procedure { code, name, level, days, citizens }
}

/// A small catalog across levels (codes are made up, in the contract's shape).
pub const PROCEDURES: [Procedure; 12] = [
    procedure("1.001612", "Đăng ký thay đổi nội dung đăng ký doanh nghiệp", ServiceLevel::FullOnline, 3, false),
    procedure("1.004227", "Đăng ký khai sinh", ServiceLevel::FullOnline, 5, true),
    procedure("1.001193", "Cấp Phiếu lý lịch tư pháp", ServiceLevel::FullOnline, 2, true),
    procedure("1.000894", "Đổi giấy phép lái xe", ServiceLevel::FullOnline, 10, true),
    procedure("2.000986", "Thông báo khởi công xây dựng", ServiceLevel::FullOnline, 7, true),
    procedure("1.003583", "Cấp Giấy chứng nhận quyền sử dụng đất", ServiceLevel::PartialOnline, 15, true),
    procedure("1.010734", "Đăng ký hộ kinh doanh", ServiceLevel::PartialOnline, 5, true),
    procedure("2.001157", "Cấp giấy phép nhập khẩu", ServiceLevel::PartialOnline, 10, false),
    procedure("1.002755", "Đăng ký kết hôn", ServiceLevel::PartialOnline, 3, true),
    procedure("3.000152", "Giao đất, cho thuê đất", ServiceLevel::Offline, 20, true),
    procedure("1.008003", "Đăng ký việc nuôi con nuôi trong nước", ServiceLevel::Offline, 12, true),
    procedure("2.002264", "Cấp giấy phép khai thác khoáng sản", ServiceLevel::Offline, 30, false),
];

/// Procedures the catalogue lists and no simulated dossier uses, as real
/// catalogues list procedures nobody files in a period. The first two carry
/// fees, so some fee-bearing procedures are never paid online.
pub const CATALOGUE_ONLY: [(Procedure, bool); 3] = [
    (procedure("1.009994", "Cấp bản sao trích lục hộ tịch", ServiceLevel::FullOnline, 3, true), true),
    (procedure("2.000512", "Cấp giấy phép kinh doanh dịch vụ karaoke", ServiceLevel::PartialOnline, 15, false), true),
    (procedure("3.000237", "Công nhận nghề truyền thống", ServiceLevel::Offline, 30, true), false),
];

/// Catalogue entries whose publication decision came too late (after the
/// legal basis's effective date less 20 working days for a ministry, 5 for
/// a province; Decision 766 indicator 1.1), and entries published on the
/// national procedure database too late (more than 10 / 5 working days after
/// the decision; 1.2). Assumptions: Phú Thọ's 2026 decisions were all late
/// (INDEX766.md §6), most units do better.
pub const ANNOUNCED_LATE: f64 = 0.2;
pub const PUBLISHED_LATE: f64 = 0.25;
/// Published procedures missing one of their seven components (Phú Thọ:
/// 2 of 89).
pub const COMPONENTS_INCOMPLETE: f64 = 2.0 / 89.0;

/// The code of agency `i` (from 1) of `authority`.
pub fn agency_code(authority: &Authority, i: u8) -> String {
    format!("000.00.{i:02}.{}", authority.code)
}

/// The catalogue entry, as of `updated_at`, of every simulated procedure
/// (and of [`CATALOGUE_ONLY`]) at every authority: every procedure the
/// simulator files carries fees (its dossiers draw theirs); the dates are
/// chosen on time or late by calendar-day margins that hold whatever the
/// working-day calendar (on time: announced 45 days before the legal basis
/// takes effect, published 3 days after; late: announced 3 days before,
/// published 30 days after), each late with the shares above, spread
/// evenly over the authorities' procedures.
pub fn catalogue(authorities: &[Authority], updated_at: OffsetDateTime) -> Vec<CatalogEntry> {
    let all = PROCEDURES.iter().map(|p| (*p, true)).chain(CATALOGUE_ONLY);
    let mut out = Vec::new();
    for (a, authority) in authorities.iter().enumerate() {
        for (p, (procedure, has_fee)) in all.clone().enumerate() {
            // Four draws per entry from one low-discrepancy sequence.
            let draw = |k: u64| golden((a * 16 + p) as u64 * 4 + k);
            let effective = date!(2023 - 01 - 01) + time::Duration::days((draw(0) * 900.0) as i64);
            let announced = effective - time::Duration::days(if draw(1) < ANNOUNCED_LATE { 3 } else { 45 });
            let published = announced + time::Duration::days(if draw(2) < PUBLISHED_LATE { 30 } else { 3 });
            out.push(CatalogEntry {
                schema_version: 1,
                authority_code: authority.code.clone(),
                procedure_code: procedure.code.to_owned(),
                updated_at,
                name: Some(procedure.name.to_owned()),
                online_level: Some(procedure.level),
                has_fee: Some(has_fee),
                written_result_required: Some(true),
                citizen_applicants: Some(procedure.citizens),
                max_processing_days: Some(f64::from(procedure.days)),
                applying_agencies: Some((1..=authority.agencies).map(|n| agency_code(authority, n)).collect()),
                announced_on: Some(announced),
                legal_basis_effective_on: Some(effective),
                published_on: Some(published),
                components_complete: Some(draw(3) >= COMPONENTS_INCOMPLETE),
                withdrawn: Some(false),
                extra: serde_json::Map::new(),
            });
        }
    }
    out
}

/// Number of ministries and provinces of 2024 (18 ministries and 4
/// ministerial-level agencies; 63 provinces), `G01…` and `H01…` of the
/// directory of authorities (`schemas/reference/authorities.csv`).
pub const MINISTRIES: u8 = 22;
pub const PROVINCES: u8 = 63;

/// An authority of the simulated country.
#[derive(Debug, Clone)]
pub struct Authority {
    pub code: String,
    pub ministry: bool,
    pub agencies: u8,
    /// Relative dossier volume within its kind.
    pub weight: f64,
    /// Relative full-online share within its kind (the kind's mean is 1).
    pub full_online_factor: f64,
    /// Hours east of UTC in its system's timestamps (0 or 7).
    pub offset_hours: i8,
    /// First and last day in being (the directory's; `None`: open).
    pub from: Option<Date>,
    pub until: Option<Date>,
    /// The authority (an index of the country's) that takes over its
    /// dossiers after `until`.
    pub successor: Option<usize>,
}

impl Authority {
    pub fn in_being_on(&self, day: Date) -> bool {
        dvc_warehouse::in_being(self.from, self.until, day)
    }
}

/// Golden-ratio low-discrepancy value for index `i`, in [0, 1).
pub fn golden(i: u64) -> f64 {
    const PHI: f64 = 0.618_033_988_749_894_9;
    (i as f64 * PHI).fract()
}

/// The first `n` authorities (at least one of each kind), interleaved so that
/// any `n` keeps the kinds' proportions: `G01, H01, H02, G02, H03, …`.
pub fn authorities(n: usize) -> Vec<Authority> {
    let total = usize::from(MINISTRIES) + usize::from(PROVINCES);
    let n = n.clamp(2, total);
    let ministries = ((n * usize::from(MINISTRIES)) as f64 / total as f64).round().clamp(1.0, (n - 1) as f64) as usize;
    let mut out: Vec<Authority> = (0..ministries).map(|i| authority(true, i)).collect();
    out.extend((0..n - ministries).map(|i| authority(false, i)));
    normalise(&mut out);
    out
}

/// The `i`-th (from 0) ministry or province, `G01`/`H01` first, before
/// normalising, in being from the start of time.
fn authority(ministry: bool, i: usize) -> Authority {
    let rank = i as f64 + 1.0;
    // A few big ones and a long tail; a spread of full-online adoption.
    let spread = golden(i as u64 + if ministry { 1 } else { 101 });
    Authority {
        code: format!("{}{:02}", if ministry { 'G' } else { 'H' }, i + 1),
        ministry,
        agencies: 2 + (i % 5) as u8,
        weight: rank.powf(-0.8),
        full_online_factor: 0.6 + 0.8 * spread,
        offset_hours: if i % 3 == 2 { 0 } else { 7 },
        from: None,
        until: None,
        successor: None,
    }
}

/// Who files with whom from a day on, until the next reorganisation: each
/// authority's share of all dossiers (0 while it is not in being) and its
/// full-online factor.
#[derive(Debug, Clone)]
pub struct Period {
    /// The first day (Vietnam's); `None`: from the start of time.
    pub from: Option<Date>,
    pub weights: Vec<f64>,
    pub factors: Vec<f64>,
}

/// The simulated country as it changes: the first `n` authorities of 2024
/// ([`authorities`]), then the units of the directory of authorities that
/// took any of them over (appended, with no volume of their own), each with
/// its days in being; and one [`Period`] per stretch between
/// reorganisations. From a reorganisation on, a unit's dossiers go to the
/// unit that took it over, and the two's full-online factors blend by
/// volume: mergers stay within a kind, so each kind's volume and mean
/// factor, hence every target, stay as in 2024.
pub fn country(n: usize) -> (Vec<Authority>, Vec<Period>) {
    let directory = Directory::official().expect("the shipped directory reads (its unit tests check it)");
    let mut all = authorities(n);
    let mut i = 0;
    while i < all.len() {
        let rows: Vec<_> = directory.units().iter().filter(|u| u.code == all[i].code).collect();
        if let (Some(first), Some(last)) = (rows.first(), rows.last()) {
            (all[i].from, all[i].until) = (first.valid_from, last.valid_to);
            if let Some(next) = &last.successor {
                let at = all.iter().position(|a| &a.code == next).unwrap_or_else(|| {
                    let ministry = AuthorityKind::of(next) == Some(AuthorityKind::Ministry);
                    let number: usize = next[1..].parse().expect("the directory checks codes");
                    all.push(Authority { weight: 0.0, ..authority(ministry, number - 1) });
                    all.len() - 1
                });
                all[i].successor = Some(at);
            }
        }
        i += 1;
    }
    let changes: BTreeSet<Date> =
        all.iter().flat_map(|a| [a.from, a.until.and_then(Date::next_day)]).flatten().collect();
    let mut periods = vec![Period {
        from: None,
        weights: all.iter().map(|a| a.weight).collect(),
        factors: all.iter().map(|a| a.full_online_factor).collect(),
    }];
    for day in changes {
        let (mut weights, mut volume) = (vec![0.0; all.len()], vec![0.0; all.len()]);
        for a in &all {
            if let Some(carrier) = carrier(&all, a, day) {
                weights[carrier] += a.weight;
                volume[carrier] += a.weight * a.full_online_factor;
            }
        }
        let factors = weights.iter().zip(&volume).map(|(w, v)| if *w > 0.0 { v / w } else { 1.0 }).collect();
        periods.push(Period { from: Some(day), weights, factors });
    }
    (all, periods)
}

/// The authority in being on `day` that handles `a`'s dossiers: itself, or
/// the unit that took it over, followed; `None` before it exists.
fn carrier(all: &[Authority], a: &Authority, day: Date) -> Option<usize> {
    let mut at = all.iter().position(|x| x.code == a.code)?;
    for _ in 0..all.len() {
        let x = &all[at];
        if x.in_being_on(day) {
            return Some(at);
        }
        at = x.successor.filter(|_| x.until.is_some_and(|until| until < day))?;
    }
    None
}

/// Scales the factors so each kind's volume-weighted mean factor is exactly 1,
/// and the weights so the ministries hold [`MINISTRY_SHARE`] of all volume.
fn normalise(authorities: &mut [Authority]) {
    for ministry in [true, false] {
        let kind = || authorities.iter().filter(|a| a.ministry == ministry);
        let weight: f64 = kind().map(|a| a.weight).sum();
        let mean = kind().map(|a| a.weight * a.full_online_factor).sum::<f64>() / weight;
        let share = if ministry { MINISTRY_SHARE } else { 1.0 - MINISTRY_SHARE };
        for a in authorities.iter_mut().filter(|a| a.ministry == ministry) {
            a.full_online_factor /= mean;
            a.weight *= share / weight;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// schemas/samples/procedure-catalog.jsonl, made by `dvc-portal-sim
    /// --print-catalogue --now 2026-07-01T08:00:00+07:00`.
    #[test]
    fn the_shipped_sample_catalogue_is_the_one_the_simulator_publishes_on_1_july_2026() {
        let shipped =
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas/samples/procedure-catalog.jsonl"));
        let entries = crate::lifecycle::Portal::new(0, 85).catalogue(time::macros::datetime!(2026-07-01 08:00 +7));
        let per_authority = PROCEDURES.len() + CATALOGUE_ONLY.len();
        assert_eq!(entries.len(), (17 + 34) * per_authority, "the 17 ministries and 34 provinces of July 2026");
        let lines: Vec<&str> = shipped.lines().collect();
        assert_eq!(lines.len(), entries.len());
        for (line, e) in lines.iter().zip(&entries) {
            assert_eq!(&CatalogEntry::decode(line.as_bytes()).unwrap(), e, "{line}");
        }
    }

    #[test]
    fn the_catalogue_lists_every_procedure_at_every_authority_with_late_ones_at_their_shares() {
        let all = authorities(85);
        let at = time::macros::datetime!(2024-07-01 00:00 UTC);
        let entries = catalogue(&all, at);
        assert_eq!(entries.len(), 85 * (PROCEDURES.len() + CATALOGUE_ONLY.len()));
        let keys: std::collections::HashSet<String> = entries.iter().map(CatalogEntry::key).collect();
        assert_eq!(keys.len(), entries.len(), "one entry per authority and procedure");
        for e in &entries {
            let text = serde_json::to_vec(e).unwrap();
            assert_eq!(&CatalogEntry::decode(&text).unwrap(), e, "every entry is a valid contract message");
            let (announced, effective, published) =
                (e.announced_on.unwrap(), e.legal_basis_effective_on.unwrap(), e.published_on.unwrap());
            assert!([3, 45].contains(&(effective - announced).whole_days()));
            assert!([3, 30].contains(&(published - announced).whole_days()));
        }
        let share = |late: &dyn Fn(&CatalogEntry) -> bool| {
            entries.iter().filter(|e| late(e)).count() as f64 / entries.len() as f64
        };
        let announced_late =
            share(&|e| (e.legal_basis_effective_on.unwrap() - e.announced_on.unwrap()).whole_days() == 3);
        let published_late = share(&|e| (e.published_on.unwrap() - e.announced_on.unwrap()).whole_days() == 30);
        let incomplete = share(&|e| e.components_complete == Some(false));
        assert!((announced_late - ANNOUNCED_LATE).abs() < 0.01, "{announced_late}");
        assert!((published_late - PUBLISHED_LATE).abs() < 0.01, "{published_late}");
        assert!((incomplete - COMPONENTS_INCOMPLETE).abs() < 0.01, "{incomplete}");
        // Catalogue-only procedures: never filed, two of them fee-bearing.
        for (p, _) in CATALOGUE_ONLY {
            assert!(PROCEDURES.iter().all(|q| q.code != p.code));
        }
        let unpaid = entries.iter().filter(|e| e.has_fee == Some(true) && e.procedure_code.starts_with("2.000512"));
        assert_eq!(unpaid.count(), 85);
        let agencies = &entries[0].applying_agencies.as_ref().unwrap();
        assert_eq!(agencies.len(), usize::from(all[0].agencies));
        assert_eq!(agencies[0], format!("000.00.01.{}", all[0].code));
    }

    #[test]
    fn every_kind_meets_its_target_by_construction() {
        for n in [2, 5, 20, 85] {
            let all = authorities(n);
            assert_eq!(all.len(), n);
            let total: f64 = all.iter().map(|a| a.weight).sum();
            assert!((total - 1.0).abs() < 1e-9);
            for (ministry, target) in [(true, FULL_ONLINE_MINISTRIES), (false, FULL_ONLINE_PROVINCES)] {
                let kind: Vec<_> = all.iter().filter(|a| a.ministry == ministry).collect();
                let weight: f64 = kind.iter().map(|a| a.weight).sum();
                let share = kind.iter().map(|a| a.weight * a.full_online_factor * target).sum::<f64>() / weight;
                assert!((share - target).abs() < 1e-9, "n={n} ministry={ministry}: {share}");
                assert!(kind.iter().all(|a| a.full_online_factor * target < 1.0));
            }
            let national: f64 =
                all.iter().map(|a| a.weight * a.full_online_factor * if a.ministry { 0.61 } else { 0.17 }).sum();
            assert!((national - FULL_ONLINE_NATIONAL).abs() < 1e-9, "n={n}: {national}");
        }
    }

    #[test]
    fn the_country_follows_the_2025_reorganisations_and_keeps_every_target() {
        let (all, periods) = country(85);
        let day = |d: Date| periods.iter().rfind(|p| p.from.is_none_or(|f| f <= d)).unwrap();
        let in_being = |p: &Period, ministry: bool| {
            all.iter().zip(&p.weights).filter(|(a, w)| a.ministry == ministry && **w > 0.0).count()
        };
        for (on, ministries, provinces) in [
            (date!(2024 - 07 - 01), 22, 63),
            (date!(2025 - 03 - 01), 17, 63),
            (date!(2025 - 07 - 01), 17, 34),
            (date!(2026 - 12 - 04), 17, 34),
        ] {
            let p = day(on);
            assert_eq!((in_being(p, true), in_being(p, false)), (ministries, provinces), "{on}");
            for (a, w) in all.iter().zip(&p.weights) {
                assert_eq!(*w > 0.0, a.in_being_on(on), "{} on {on}", a.code);
            }
            for (ministry, target, share) in
                [(true, FULL_ONLINE_MINISTRIES, MINISTRY_SHARE), (false, FULL_ONLINE_PROVINCES, 1.0 - MINISTRY_SHARE)]
            {
                let kind = || all.iter().enumerate().filter(|(_, a)| a.ministry == ministry).map(|(i, _)| i);
                let weight: f64 = kind().map(|i| p.weights[i]).sum();
                let full = kind().map(|i| p.weights[i] * p.factors[i] * target).sum::<f64>() / weight;
                assert!((weight - share).abs() < 1e-9 && (full - target).abs() < 1e-9, "{on}: {weight} {full}");
                assert!(kind().all(|i| p.factors[i] * target < 1.0));
            }
        }
        // Tuyên Quang takes Hà Giang's dossiers from 1 July 2025; the new
        // Ministry of Agriculture and Environment, two ministries' from 1 March.
        let at = |code: &str| all.iter().position(|a| a.code == code).unwrap();
        let (before, after) = (day(date!(2025 - 06 - 30)), day(date!(2025 - 07 - 01)));
        let (h02, h05) = (at("H02"), at("H05"));
        assert!((after.weights[h05] - before.weights[h02] - before.weights[h05]).abs() < 1e-12);
        let g23 = at("G23");
        assert_eq!(day(date!(2025 - 02 - 28)).weights[g23], 0.0);
        let merged = all[at("G09")].weight + all[at("G12")].weight;
        assert!((day(date!(2025 - 03 - 01)).weights[g23] - merged).abs() < 1e-12);
        // A small country gets the units that took its authorities over:
        // Tuyên Quang (H05) for Hà Giang, Thái Nguyên (H12) for Bắc Kạn.
        let (small, _) = country(5);
        let codes: Vec<&str> = small.iter().map(|a| a.code.as_str()).collect();
        assert_eq!(codes, ["G01", "H01", "H02", "H03", "H04", "H05", "H12"]);
    }

    #[test]
    fn fee_ladder_mean_matches_the_seed_value_per_payment() {
        let weight: u32 = FEES.iter().map(|(_, w)| w).sum();
        let mean = FEES.iter().map(|(f, w)| *f as f64 * f64::from(*w)).sum::<f64>() / f64::from(weight);
        assert!((mean / MEAN_ONLINE_PAYMENT_VND - 1.0).abs() < 0.001, "{mean}");
    }
}
