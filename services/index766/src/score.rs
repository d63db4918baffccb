//! Scores from counts (docs/INDEX766.md §2): an indicator's points from its
//! ratio and rule, rounded to hundredths; a group is the sum of its
//! indicators, the total the sum of the groups; units of one level ranked by
//! total, ties sharing a rank. Points are kept as whole hundredths so that
//! sums of rounded scores are exact.

use crate::rules::{Group, NoData, Rule, RuleSet};

/// An indicator's counts: `numerator / denominator`, times `factor` (3.3
/// multiplies by the 1.4 ratio; 1 elsewhere).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Count {
    pub numerator: u64,
    pub denominator: u64,
    pub factor: f64,
}

impl Count {
    pub fn new(numerator: u64, denominator: u64) -> Count {
        Count { numerator, denominator, factor: 1.0 }
    }

    /// The ratio the rule reads, capped at 1; `None` without a denominator.
    pub fn ratio(&self) -> Option<f64> {
        (self.denominator > 0).then(|| (self.numerator as f64 / self.denominator as f64 * self.factor).min(1.0))
    }
}

/// An indicator's points, in hundredths.
pub fn points(rule: &Rule, count: &Count) -> u32 {
    let Some(ratio) = count.ratio() else {
        return match rule.no_data {
            NoData::Zero => 0,
            NoData::Full => rule.max_centi,
        };
    };
    let earned = match rule.threshold {
        None => ratio,
        Some(t) => (ratio / t).min(1.0),
    };
    // The published scores round half up; the product is taken in hundredths
    // first so that 2 x 0.75 is 150, never 149.99...
    let centi = f64::from(rule.max_centi) * earned;
    (centi + 1e-9).round() as u32
}

/// One indicator of a unit, scored.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    pub code: String,
    pub group: Group,
    pub count: Count,
    pub points_centi: u32,
    pub max_centi: u32,
}

/// A unit's indicators, groups and total.
#[derive(Debug, Clone, PartialEq)]
pub struct Scorecard {
    pub indicators: Vec<Scored>,
    pub groups: Vec<(Group, u32)>,
    pub total_centi: u32,
}

/// Scores `counts` (by indicator code) by `rules`; an indicator the counts
/// lack is scored as having no data.
pub fn scorecard(rules: &RuleSet, count: impl Fn(&str) -> Option<Count>) -> Scorecard {
    let indicators: Vec<Scored> = rules
        .rules
        .iter()
        .map(|rule| {
            let count = count(&rule.code).unwrap_or(Count::new(0, 0));
            Scored {
                code: rule.code.clone(),
                group: rule.group,
                count,
                points_centi: points(rule, &count),
                max_centi: rule.max_centi,
            }
        })
        .collect();
    let groups: Vec<(Group, u32)> = Group::ALL
        .into_iter()
        .map(|g| (g, indicators.iter().filter(|i| i.group == g).map(|i| i.points_centi).sum()))
        .collect();
    let total_centi = groups.iter().map(|(_, p)| p).sum();
    Scorecard { indicators, groups, total_centi }
}

/// Competition ranks (1, 2, 2, 4) of `totals`, highest first, in the
/// totals' order.
pub fn ranks(totals: &[u32]) -> Vec<u32> {
    totals.iter().map(|t| 1 + totals.iter().filter(|o| *o > t).count() as u32).collect()
}

/// Hundredths as points, for JSON (two decimals exactly).
pub fn as_points(centi: u32) -> f64 {
    f64::from(centi) / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Rules;
    use time::macros::date;

    /// Phú Thọ (H44) on the national portal (docs/INDEX766.md §6): the
    /// published counts, and the scores the portal showed for them.
    fn phu_tho(counts: &[(&str, u64, u64)], factor_33: f64) -> Scorecard {
        let rules = Rules::official().unwrap().in_force(date!(2026 - 01 - 01));
        scorecard(rules, |code| {
            counts.iter().find(|(c, ..)| *c == code).map(|&(_, n, d)| Count {
                numerator: n,
                denominator: d,
                factor: if code == "3.3" { factor_33 } else { 1.0 },
            })
        })
    }

    fn group(card: &Scorecard, g: Group) -> u32 {
        card.groups.iter().find(|(x, _)| *x == g).unwrap().1
    }

    fn indicator(card: &Scorecard, code: &str) -> u32 {
        card.indicators.iter().find(|i| i.code == code).unwrap().points_centi
    }

    #[test]
    fn phu_tho_2026_to_date_scores_61_89() {
        let h = 597_918;
        let card = phu_tho(
            &[
                ("1.1", 0, 89),
                ("1.2", 0, 70),
                ("1.3", 87, 89),
                ("1.4", 475_053, 475_053),
                ("2.1", 528_684, h),
                ("3.1", 52, 89),
                ("3.2", 516, 1_884),
                ("3.3", 589_496, 597_894),
                ("3.4", 119, 313),
                ("3.5", 68, 313),
                ("3.6", 309_542, 358_625),
                ("4.1", 433_356, h),
                ("4.2", 145_096, h),
                ("4.3", 136_827, h),
                ("4.4", 0, h),
                ("4.5a", 396, 1_300),
                ("4.5b", 325_596, h),
                ("5.2", 296, 570),
                ("5.3", 230, 570),
                ("5.4", 528_464, h),
            ],
            1.0,
        );
        let each = [
            ("1.1", 0),
            ("1.2", 0),
            ("1.3", 196),
            ("1.4", 600),
            ("2.1", 1_768),
            ("3.1", 146),
            ("3.2", 110),
            ("3.3", 600),
            ("3.4", 95),
            ("3.5", 54),
            ("3.6", 518),
            ("4.1", 435),
            ("4.2", 97),
            ("4.3", 57),
            ("4.4", 0),
            ("4.5a", 61),
            ("4.5b", 109),
            ("4.6", 200),
            ("5.2", 312),
            ("5.3", 242),
            ("5.4", 589),
        ];
        for (code, want) in each {
            assert_eq!(indicator(&card, code), want, "{code}");
        }
        let groups = [796, 1_768, 856, 667, 959, 1_143];
        for (g, want) in Group::ALL.into_iter().zip(groups) {
            assert_eq!(group(&card, g), want, "{}", g.code());
        }
        assert_eq!(card.total_centi, 6_189);
    }

    #[test]
    fn phu_tho_august_2026_scores_59_91() {
        // The portal published no counts for group 4 in August (only its
        // score, 8.22), so that group is checked as the remainder.
        let h = 184_513;
        let card = phu_tho(
            &[
                ("1.3", 87, 89),
                ("1.4", 138_744, 138_744),
                ("2.1", 144_625, h),
                ("3.1", 52, 56),
                ("3.2", 406, 1_968),
                ("3.3", 150_956, 152_595),
                ("3.4", 93, 310),
                ("3.5", 56, 310),
                ("3.6", 82_913, 98_459),
                ("5.2", 182, 247),
                ("5.3", 137, 247),
                ("5.4", 144_574, h),
            ],
            1.0,
        );
        assert_eq!(indicator(&card, "1.1"), 0, "no decisions: no points");
        assert_eq!(card.indicators.iter().find(|i| i.code == "1.1").unwrap().count.ratio(), None);
        let groups = [796, 1_568, 883, 625];
        for (g, want) in Group::ALL.into_iter().zip(groups) {
            assert_eq!(group(&card, g), want, "{}", g.code());
        }
        assert_eq!(group(&card, Group::Mdhl), 1_297);
        let without_group_4 = card.total_centi - group(&card, Group::Mdsh);
        assert_eq!(without_group_4 + 822, 5_991);
    }

    #[test]
    fn thresholds_cap_at_the_maximum_and_no_data_follows_the_rule() {
        let rules = Rules::official().unwrap().in_force(date!(2026 - 01 - 01));
        let rule = |c: &str| rules.rule(c).unwrap();
        assert_eq!(points(rule("3.3"), &Count::new(60, 100)), 600, "past 50%: full points");
        assert_eq!(points(rule("3.3"), &Count { numerator: 60, denominator: 100, factor: 0.5 }), 360);
        assert_eq!(points(rule("3.4"), &Count::new(3, 10)), 75);
        assert_eq!(points(rule("5.2"), &Count::new(0, 0)), 600, "no petitions: full points");
        assert_eq!(points(rule("5.4"), &Count::new(0, 0)), 0, "no dossiers: nothing");
        assert_eq!(points(rule("2.1"), &Count::new(7, 5)), 2_000, "a ratio above 1 is capped");
    }

    #[test]
    fn ties_share_a_rank() {
        assert_eq!(ranks(&[6_189, 8_021, 6_189, 5_000, 8_347]), vec![3, 2, 3, 5, 1]);
        assert_eq!(ranks(&[]), Vec::<u32>::new());
    }
}
