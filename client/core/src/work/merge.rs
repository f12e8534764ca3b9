//! Concurrent edits: a three-way, field-level merge under hybrid logical clocks, with
//! every overwritten concurrent edit kept as a visible conflict (`protocol-spec/work.md`,
//! "Concurrent edits").
//!
//! A work item is a map of fields, each with its value and the clock of the edit that set
//! it. A device edits from a base (the version it last synced). When the relay already
//! holds a newer version, the device merges field by field against that base: a field
//! only one side changed takes that side's value; a field both sides changed to different
//! values takes the later clock, and the other value is recorded as a conflict — never
//! silently lost, until someone dismisses it.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A hybrid logical clock reading: wall-clock milliseconds, a counter for events within
/// one millisecond (or behind a faster clock seen earlier), and the device (hex id) as
/// the final tie-break. Ordered lexicographically.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Default)]
pub struct Hlc {
    /// Milliseconds since the Unix epoch (never behind any clock seen).
    pub ms: u64,
    /// Events at the same `ms`.
    pub n: u32,
    /// The device that made the edit (hex).
    pub dev: String,
}

impl Hlc {
    /// The next reading on `device` at wall time `now_ms`, after `last` (this device's
    /// last reading or the newest seen from others).
    pub fn tick(last: &Hlc, now_ms: u64, device: &str) -> Hlc {
        if now_ms > last.ms {
            Hlc {
                ms: now_ms,
                n: 0,
                dev: device.to_owned(),
            }
        } else {
            Hlc {
                ms: last.ms,
                n: last.n.saturating_add(1),
                dev: device.to_owned(),
            }
        }
    }
}

/// One field's value and its history link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Field {
    /// The value (JSON: text, number, list, …; `null` clears it).
    pub v: serde_json::Value,
    /// The edit that set it.
    pub at: Hlc,
}

/// An edit that lost to a concurrent one: kept so that people can see and redo it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conflict {
    /// The field.
    pub field: String,
    /// The value that lost.
    pub v: serde_json::Value,
    /// Its edit (the device in it is who made it).
    pub at: Hlc,
    /// The edit that won.
    pub won: Hlc,
}

/// A work item's fields and its unresolved conflicts.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Fields {
    /// By name.
    pub fields: BTreeMap<String, Field>,
    /// Concurrent edits that lost, until someone dismisses them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<Conflict>,
}

impl Fields {
    /// The newest clock in the item (for the next tick).
    pub fn newest(&self) -> Hlc {
        self.fields
            .values()
            .map(|f| f.at.clone())
            .max()
            .unwrap_or_default()
    }

    /// Sets `name` to `v` as the edit `at`; a no-op when the value is the same.
    pub fn set(&mut self, name: &str, v: serde_json::Value, at: Hlc) {
        if self.fields.get(name).is_some_and(|f| f.v == v) {
            return;
        }
        self.fields.insert(name.to_owned(), Field { v, at });
    }

    /// The conflicts nobody has dismissed (a dismissal is a field `d:<clock of the losing
    /// edit>`, so that a concurrent version still listing the conflict cannot bring it
    /// back).
    pub fn open_conflicts(&self) -> Vec<Conflict> {
        self.conflicts
            .iter()
            .filter(|c| !self.fields.contains_key(&Self::dismissal(c)))
            .cloned()
            .collect()
    }

    /// The field that dismisses a conflict.
    pub fn dismissal(c: &Conflict) -> String {
        format!("d:{}-{}-{}", c.at.ms, c.at.n, c.at.dev)
    }

    /// Merges an item's state kept on a device (`ours`, with edits the relay lost in a
    /// restore) with the relay's version (`theirs`) when no common ancestor is known: per
    /// field the later edit wins (last writer wins), conflicts of both sides are kept.
    /// Without the ancestor a later edit that knew of ours cannot be told from one that
    /// did not, so no new conflict is made up (protocol-spec/operations.md).
    pub fn merge_unrelated(ours: &Fields, theirs: &Fields) -> Fields {
        let mut out = Fields {
            fields: theirs.fields.clone(),
            conflicts: ours
                .conflicts
                .iter()
                .chain(theirs.conflicts.iter())
                .cloned()
                .collect(),
        };
        for (name, o) in &ours.fields {
            let theirs_wins = out.fields.get(name).is_some_and(|t| {
                // One clock reading names one edit; the larger value wins everywhere alike.
                let (tv, ov) = (t.v.to_string(), o.v.to_string());
                t.at > o.at || (t.at == o.at && tv >= ov)
            });
            if !theirs_wins {
                out.fields.insert(name.clone(), o.clone());
            }
        }
        out.conflicts
            .sort_by(|x, y| (&x.field, &x.at, &x.won).cmp(&(&y.field, &y.at, &y.won)));
        out.conflicts.dedup();
        out
    }

    /// A field's value (`Null` when absent).
    pub fn get(&self, name: &str) -> &serde_json::Value {
        self.fields
            .get(name)
            .map_or(&serde_json::Value::Null, |f| &f.v)
    }

    /// Merges `ours` and `theirs`, both edited from `base`: symmetric in the two sides,
    /// idempotent (`merge(base, m, m) == m`), and every value either side set since the
    /// base is in the result or in its conflicts.
    pub fn merge(base: &Fields, ours: &Fields, theirs: &Fields) -> Fields {
        let mut out = Fields::default();
        let mut conflicts: Vec<Conflict> = ours
            .conflicts
            .iter()
            .chain(theirs.conflicts.iter())
            .cloned()
            .collect();
        let names: std::collections::BTreeSet<&String> =
            ours.fields.keys().chain(theirs.fields.keys()).collect();
        for name in names {
            let b = base.fields.get(name).map(|f| &f.at);
            let changed = |f: &Field| b != Some(&f.at);
            let chosen = match (ours.fields.get(name), theirs.fields.get(name)) {
                // One clock reading names one edit (device id and counter); should two
                // different values ever carry the same reading, the larger value wins
                // everywhere alike.
                (Some(o), Some(t)) if o.at == t.at => {
                    let (a, b) = (o.v.to_string(), t.v.to_string());
                    if a >= b {
                        o.clone()
                    } else {
                        t.clone()
                    }
                }
                (Some(o), Some(t)) => match (changed(o), changed(t)) {
                    (true, false) => o.clone(),
                    (false, true) => t.clone(),
                    _ => {
                        let (win, lose) = if o.at > t.at { (o, t) } else { (t, o) };
                        if win.v != lose.v && changed(lose) {
                            conflicts.push(Conflict {
                                field: name.clone(),
                                v: lose.v.clone(),
                                at: lose.at.clone(),
                                won: win.at.clone(),
                            });
                        }
                        win.clone()
                    }
                },
                (Some(a), None) | (None, Some(a)) => a.clone(),
                (None, None) => continue,
            };
            out.fields.insert(name.clone(), chosen);
        }
        conflicts.sort_by(|x, y| (&x.field, &x.at, &x.won).cmp(&(&y.field, &y.at, &y.won)));
        conflicts.dedup();
        out.conflicts = conflicts;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn hlc(ms: u64, dev: &str) -> Hlc {
        Hlc {
            ms,
            n: 0,
            dev: dev.into(),
        }
    }

    #[test]
    fn after_a_restore_each_field_keeps_its_later_edit() {
        let mut relay = Fields::default();
        relay.set("title", json!("VAT"), hlc(1, "aa"));
        relay.set("status", json!("open"), hlc(2, "aa"));
        // What a device kept: the relay's state plus edits the restore lost.
        let mut kept = relay.clone();
        kept.set("status", json!("done"), hlc(5, "aa"));
        kept.set("note", json!("zapłacono"), hlc(6, "aa"));
        assert_eq!(Fields::merge_unrelated(&kept, &relay), kept);
        assert_eq!(Fields::merge_unrelated(&relay, &relay), relay);
        // The relay already has it all (another device sent it first): nothing changes.
        assert_eq!(Fields::merge_unrelated(&relay, &kept), kept);
        // Someone edited on the restored relay meanwhile: each field keeps its later edit.
        let mut later = relay.clone();
        later.set("title", json!("VAT-7"), hlc(7, "bb"));
        later.set("status", json!("in progress"), hlc(8, "bb"));
        let m = Fields::merge_unrelated(&kept, &later);
        assert_eq!(m.get("title"), &json!("VAT-7"));
        assert_eq!(m.get("note"), &json!("zapłacono"));
        assert_eq!(m.get("status"), &json!("in progress"));
        assert!(m.open_conflicts().is_empty(), "{m:?}");
        // Both sides' open conflicts stay; merging again changes nothing; the order of the
        // sides does not matter.
        let mut disputed = later.clone();
        disputed.conflicts.push(Conflict {
            field: "title".into(),
            v: json!("VAT-UE"),
            at: hlc(7, "cc"),
            won: hlc(7, "bb"),
        });
        let m = Fields::merge_unrelated(&kept, &disputed);
        assert_eq!(m.open_conflicts().len(), 1);
        assert_eq!(Fields::merge_unrelated(&kept, &m), m);
        assert_eq!(m, Fields::merge_unrelated(&disputed, &kept));
    }

    #[test]
    fn the_clock_never_goes_back() {
        let a = Hlc::tick(&Hlc::default(), 100, "aa");
        let b = Hlc::tick(&a, 90, "aa");
        assert!(b > a, "a slow wall clock still moves forward");
        assert_eq!((b.ms, b.n), (100, 1));
        let c = Hlc::tick(&b, 200, "bb");
        assert_eq!((c.ms, c.n), (200, 0));
    }

    #[test]
    fn concurrent_edits_of_one_field_keep_the_loser_visible() {
        let mut base = Fields::default();
        base.set("title", json!("VAT-7 za marzec"), hlc(1, "aa"));
        base.set("due", json!("2026-04-27"), hlc(1, "aa"));
        // Offline on two devices: Anna edits the title, Bartek the title and the due date.
        let mut anna = base.clone();
        anna.set("title", json!("JPK_V7M za marzec"), hlc(10, "aa"));
        let mut bartek = base.clone();
        bartek.set("title", json!("JPK za marzec (poprawka)"), hlc(12, "bb"));
        bartek.set("due", json!("2026-04-28"), hlc(12, "bb"));
        let m1 = Fields::merge(&base, &anna, &bartek);
        let m2 = Fields::merge(&base, &bartek, &anna);
        assert_eq!(m1, m2, "order does not matter");
        assert_eq!(m1.get("title"), &json!("JPK za marzec (poprawka)"));
        assert_eq!(m1.get("due"), &json!("2026-04-28"));
        assert_eq!(m1.conflicts.len(), 1);
        assert_eq!(m1.conflicts[0].v, json!("JPK_V7M za marzec"));
        assert_eq!(m1.conflicts[0].at.dev, "aa");
        // A later edit on top of the merge is no new conflict.
        let mut next = m1.clone();
        next.set(
            "title",
            json!("JPK_V7M za marzec (poprawka)"),
            hlc(20, "aa"),
        );
        let m3 = Fields::merge(&m1, &next, &m1);
        assert_eq!(m3.conflicts.len(), 1);
        assert_eq!(m3.get("title"), &json!("JPK_V7M za marzec (poprawka)"));
        // Edits of different fields merge without conflict.
        let mut a = base.clone();
        a.set("title", json!("x"), hlc(5, "aa"));
        let mut b = base.clone();
        b.set("due", json!("2026-05-01"), hlc(6, "bb"));
        let m = Fields::merge(&base, &a, &b);
        assert!(m.conflicts.is_empty());
        assert_eq!(
            (m.get("title"), m.get("due")),
            (&json!("x"), &json!("2026-05-01"))
        );
    }

    fn edits() -> impl Strategy<Value = Vec<(u8, u8, u64, u8)>> {
        // (field, value, ms, device)
        proptest::collection::vec((0u8..3, 0u8..4, 1u64..50, 0u8..3), 0..8)
    }

    /// Edits on one side; `side` keeps device ids apart, as real devices are.
    fn apply(base: &Fields, e: &[(u8, u8, u64, u8)], side: &str) -> Fields {
        let mut f = base.clone();
        for (field, v, ms, dev) in e {
            let at = Hlc {
                ms: *ms + f.newest().ms,
                n: 0,
                dev: format!("{side}{dev}"),
            };
            f.set(&format!("f{field}"), json!(v), at);
        }
        f
    }

    proptest! {
        /// Merging is commutative and idempotent, and no edit disappears: every value
        /// either wins or is listed as a conflict.
        #[test]
        fn merge_is_commutative_idempotent_and_loses_nothing(a in edits(), b in edits()) {
            let mut base = Fields::default();
            base.set("f0", json!(0), hlc(1, "0"));
            let x = apply(&base, &a, "x");
            let y = apply(&base, &b, "y");
            let m = Fields::merge(&base, &x, &y);
            prop_assert_eq!(&m, &Fields::merge(&base, &y, &x));
            prop_assert_eq!(&Fields::merge(&base, &m, &m), &m);
            // Merging again with a side already merged changes nothing.
            prop_assert_eq!(&Fields::merge(&x, &m, &x), &m);
            for side in [&x, &y] {
                for (name, f) in &side.fields {
                    if base.fields.get(name).is_some_and(|b| b.at == f.at) {
                        continue;
                    }
                    let kept = m.fields.get(name).is_some_and(|w| w.v == f.v)
                        || m.conflicts.iter().any(|c| &c.field == name && c.v == f.v);
                    prop_assert!(kept, "{} = {} lost", name, f.v);
                }
            }
        }
    }
}
