//! What the service keeps in a board job's details: the submission, so any
//! node can answer for the job and rebuild its flow.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use taskflow::{Job, JobId};

use crate::{Kind, Parameters};

/// The key of a job's details under which the service keeps its
/// [`JobMeta`].
pub(crate) const META_KEY: &str = "service";

/// The flow factory named by a periodic policy's board job. No conductor
/// registers it, so no conductor claims a policy: the policy's nodes only
/// post its executions.
pub(crate) const POLICY_FACTORY: &str = "taskflow-service:periodic-policy";

/// A submitted job as the service records it in the board job's details.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct JobMeta {
    /// The job type.
    pub(crate) name: String,
    /// How it is started.
    pub(crate) kind: Kind,
    /// Its parameters.
    #[serde(default)]
    pub(crate) parameters: Parameters,
    /// Where status changes are posted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) status_hook: Option<String>,
    /// Whether it was submitted as unique.
    #[serde(default)]
    pub(crate) unique: bool,
    /// A scheduled job's delay (s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) schedule_delay: Option<u64>,
    /// A periodic policy's cron spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) cron_spec: Option<String>,
    /// An execution's policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) upstream_job_id: Option<JobId>,
    /// When it is due (ms since the epoch): a scheduled job's time, an
    /// execution's fire time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) run_at: Option<u64>,
}

impl JobMeta {
    /// The service's record of `job`, if the service posted it.
    pub(crate) fn of(job: &Job) -> Option<JobMeta> {
        let meta = job.details.get(META_KEY)?;
        serde_json::from_value(meta.clone()).ok()
    }

    /// The details of a board job for this submission: the meta, and the
    /// flow factory conductors rebuild it with.
    pub(crate) fn details(&self) -> Value {
        let factory = match self.kind {
            Kind::Periodic => POLICY_FACTORY,
            Kind::Generic | Kind::Scheduled => self.name.as_str(),
        };
        let mut details = Map::new();
        details.insert(Job::FACTORY_KEY.into(), Value::from(factory));
        details.insert(
            META_KEY.into(),
            serde_json::to_value(self).unwrap_or(Value::Null),
        );
        Value::Object(details)
    }

    /// The uniqueness key of a unique submission: its name and its
    /// parameters in canonical form (keys sorted at every level, no
    /// spaces), so `{"a":1,"b":2}` and `{"b":2,"a":1}` are one job.
    pub(crate) fn unique_key(&self) -> String {
        let mut key = format!("{}:", self.name);
        write_canonical(&Value::Object(self.parameters.clone()), &mut key);
        key
    }
}

/// Writes `value` as JSON with every object's keys sorted.
pub(crate) fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::from(key.as_str()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_parameters_ignore_key_order() {
        let meta = |params: Value| JobMeta {
            name: "replicate".into(),
            kind: Kind::Generic,
            parameters: params.as_object().cloned().unwrap_or_default(),
            status_hook: None,
            unique: true,
            schedule_delay: None,
            cron_spec: None,
            upstream_job_id: None,
            run_at: None,
        };
        let a = meta(json!({"b": {"y": 1, "x": [2, {"k": 1, "j": 2}]}, "a": "s"}));
        let b = meta(json!({"a": "s", "b": {"x": [2, {"j": 2, "k": 1}], "y": 1}}));
        assert_eq!(a.unique_key(), b.unique_key());
        assert_eq!(
            a.unique_key(),
            r#"replicate:{"a":"s","b":{"x":[2,{"j":2,"k":1}],"y":1}}"#
        );
        assert_ne!(a.unique_key(), meta(json!({"a": "t"})).unique_key());
    }
}
