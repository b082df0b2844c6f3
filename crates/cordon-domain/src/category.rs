//! The illegal-goods categories and one score per category.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The illegal-goods categories the classifier scores, in the model's output order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Narcotics and controlled substances.
    Drugs,
    /// Firearms, ammunition, explosives, conversion kits.
    Weapons,
    /// Counterfeit documents, money and branded replicas.
    Counterfeit,
    /// Cards, dumps, bank logins, stealer logs, leaked databases, lookup services, hacked accounts.
    StolenData,
    /// Malware, crypters, DDoS for hire, phishing kits, account hacking for hire.
    Hacking,
    /// Money laundering, cash-out and mules, wildlife and organ trade, exam fraud.
    OtherIllegal,
}

impl Category {
    /// Every category, in the model's output order.
    pub const ALL: [Category; 6] = [
        Category::Drugs,
        Category::Weapons,
        Category::Counterfeit,
        Category::StolenData,
        Category::Hacking,
        Category::OtherIllegal,
    ];

    /// The wire name of the category.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Drugs => "drugs",
            Category::Weapons => "weapons",
            Category::Counterfeit => "counterfeit",
            Category::StolenData => "stolen_data",
            Category::Hacking => "hacking",
            Category::OtherIllegal => "other_illegal",
        }
    }

    /// The category's position in [`Category::ALL`] and in the model's output.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Parses a wire name.
    pub fn parse(name: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One probability per category, serialized as a `{category: score}` map.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Scores(pub [f32; 6]);

impl Scores {
    /// The score of one category.
    pub fn get(&self, category: Category) -> f32 {
        self.0[category.index()]
    }

    /// The highest-scoring category and its score.
    pub fn top(&self) -> (Category, f32) {
        Category::ALL.into_iter().map(|c| (c, self.get(c))).fold(
            (Category::Drugs, f32::MIN),
            |best, cur| {
                if cur.1 > best.1 {
                    cur
                } else {
                    best
                }
            },
        )
    }
}

impl Serialize for Scores {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let map: BTreeMap<&str, f32> = Category::ALL
            .into_iter()
            .map(|c| (c.as_str(), self.get(c)))
            .collect();
        map.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Scores {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<String, f32>::deserialize(d)?;
        let mut scores = Scores::default();
        for (name, value) in map {
            let category = Category::parse(&name)
                .ok_or_else(|| serde::de::Error::custom(format!("unknown category `{name}`")))?;
            scores.0[category.index()] = value;
        }
        Ok(scores)
    }
}
