//! The decider of a conditional link in a flow file (`when:`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use taskflow::{StoredDecider, Value};

/// What a link's `when` tests of each result it sees.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Test {
    /// Not null, false, 0, "" nor an empty list or map.
    Truthy,
    /// Null, false, 0, "" or an empty list or map.
    Falsy,
    /// Equal to the value.
    Equals(Value),
    /// Not equal to the value.
    NotEquals(Value),
    /// Equal to one of the values.
    In(Vec<Value>),
}

/// Lets a link's target run when the results of the link's source pass
/// `test`: every atom's result of the source (one atom, or each atom of a
/// subflow), or only `atom`'s when set; `path` (`a.b.0`) picks a part of
/// each result first (a missing part is null).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct When {
    /// The test.
    pub test: Test,
    /// The part of the result tested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The one atom of the source whose result is tested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub atom: Option<String>,
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

impl When {
    fn pick<'v>(&self, mut v: &'v Value) -> &'v Value {
        static NULL: Value = Value::Null;
        if let Some(path) = &self.path {
            for part in path.split('.').filter(|p| !p.is_empty()) {
                let next = match v {
                    Value::Object(o) => o.get(part),
                    Value::Array(a) => part.parse::<usize>().ok().and_then(|i| a.get(i)),
                    _ => None,
                };
                v = next.unwrap_or(&NULL);
            }
        }
        v
    }

    fn passes(&self, v: &Value) -> bool {
        let v = self.pick(v);
        match &self.test {
            Test::Truthy => truthy(v),
            Test::Falsy => !truthy(v),
            Test::Equals(x) => v == x,
            Test::NotEquals(x) => v != x,
            Test::In(xs) => xs.contains(v),
        }
    }
}

#[typetag::serde(name = "taskflow::cli::When")]
impl StoredDecider for When {
    fn decide(&self, history: &BTreeMap<String, Value>) -> bool {
        match &self.atom {
            Some(atom) => self.passes(history.get(atom).unwrap_or(&Value::Null)),
            None => history.values().all(|v| self.passes(v)),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn paths_and_tests() {
        let when = When {
            test: Test::Equals(json!("ok")),
            path: Some("status.0".into()),
            atom: None,
        };
        let history = BTreeMap::from([("a".to_owned(), json!({"status": ["ok"]}))]);
        assert!(StoredDecider::decide(&when, &history));
        let when = When {
            test: Test::Truthy,
            path: Some("missing".into()),
            atom: None,
        };
        assert!(!StoredDecider::decide(&when, &history));
    }
}
