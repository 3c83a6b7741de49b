//! The `http` task: one request, and the request that undoes it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use taskflow::{Context, StoredTask, TaskError, Value};

use super::{FileTask, Seconds};

/// How much of a refused response's body its failure keeps.
const BODY_TAIL: usize = 500;

/// One HTTP request: what `http:` (and its `revert:`) says.
///
/// `url`, header values and `body` may name the atom's arguments as
/// `${name}` (or a part of one, `${name.id}`, `${name.items.0}`): in text
/// the value is written in (text as it is, anything else as JSON); a body
/// string that is exactly `${name}` becomes the value itself. A revert
/// request may also name `${result}`, the request's own result.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// `GET` unless given.
    #[serde(default = "get")]
    pub method: String,
    /// The URL.
    pub url: String,
    /// Headers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// The body: text is sent as it is, anything else as JSON (with
    /// `content-type: application/json` unless a header says otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// The statuses that count as success (any 2xx when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success: Option<Vec<u16>>,
    /// How long the whole request may take (30 s when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Seconds>,
}

fn get() -> String {
    "GET".to_owned()
}

/// Sends a request (`http: {method: POST, url: ..., body: ...}`); its
/// result is the response's body, parsed as JSON when it is JSON (null
/// when empty). A status outside `success` fails with kind `HttpStatus`
/// (the status and the tail of the body); a request that gets no answer
/// fails with kind `Http`. `revert`, if set, is sent when the atom reverts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Http {
    /// The request.
    #[serde(flatten)]
    pub request: Request,
    /// The request that undoes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revert: Option<Request>,
}

#[typetag::serde(name = "taskflow::cli::Http")]
impl StoredTask for Http {
    fn execute(&self, ctx: &mut Context<'_>) -> Result<Value, TaskError> {
        let values = values(ctx, None);
        self.request.send(&values)
    }

    fn revert(&self, ctx: &mut Context<'_>) -> Result<(), TaskError> {
        let Some(revert) = &self.revert else {
            return Ok(());
        };
        let values = values(ctx, ctx.own_result());
        let result = revert.send(&values)?;
        if !result.is_null() {
            ctx.set_revert_result(result);
        }
        Ok(())
    }
}

impl FileTask for Http {
    const KIND: &'static str = "http";
    const SHORTHAND: Option<&'static str> = Some("url");

    fn check(&self) -> Result<(), String> {
        for request in std::iter::once(&self.request).chain(&self.revert) {
            if reqwest::Method::from_bytes(request.method.to_uppercase().as_bytes()).is_err() {
                return Err(format!("`{}` is not an HTTP method", request.method));
            }
            if request.url.trim().is_empty() {
                return Err("`url` is empty".to_owned());
            }
            if request.success.as_ref().is_some_and(Vec::is_empty) {
                return Err("`success` lists no status".to_owned());
            }
        }
        Ok(())
    }
}

/// The values `${..}` may name: the arguments, and `result` in a revert.
fn values(ctx: &Context<'_>, result: Option<&Value>) -> BTreeMap<String, Value> {
    let mut values: BTreeMap<String, Value> = ctx
        .inputs()
        .iter()
        .map(|(k, v)| (k.to_owned(), v.clone()))
        .collect();
    if let Some(result) = result {
        values.insert("result".to_owned(), result.clone());
    }
    values
}

fn lookup<'v>(values: &'v BTreeMap<String, Value>, path: &str) -> Option<&'v Value> {
    let mut parts = path.split('.');
    let mut v = values.get(parts.next()?)?;
    for part in parts {
        v = match v {
            Value::Object(o) => o.get(part)?,
            Value::Array(a) => a.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(v)
}

/// `text` with each `${path}` written in; a path naming nothing is an
/// error naming it.
fn fill(text: &str, values: &BTreeMap<String, Value>) -> Result<String, TaskError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let path = after[..end].trim();
        let value = lookup(values, path).ok_or_else(|| {
            TaskError::new(
                "HttpTemplate",
                format!(
                    "`${{{path}}}` names nothing: the request may name {}",
                    values.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            )
        })?;
        match value {
            Value::String(s) => out.push_str(s),
            other => out.push_str(&other.to_string()),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn fill_value(v: &Value, values: &BTreeMap<String, Value>) -> Result<Value, TaskError> {
    Ok(match v {
        Value::String(s) => {
            let whole = s
                .strip_prefix("${")
                .and_then(|r| r.strip_suffix('}'))
                .filter(|p| !p.contains("${"));
            match whole.and_then(|p| lookup(values, p.trim())) {
                Some(value) => value.clone(),
                None => Value::String(fill(s, values)?),
            }
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|i| fill_value(i, values))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), fill_value(v, values)?)))
                .collect::<Result<_, TaskError>>()?,
        ),
        other => other.clone(),
    })
}

impl Request {
    fn send(&self, values: &BTreeMap<String, Value>) -> Result<Value, TaskError> {
        let method = reqwest::Method::from_bytes(self.method.to_uppercase().as_bytes())
            .map_err(|e| TaskError::new("Http", format!("`{}`: {e}", self.method)))?;
        let url = fill(&self.url, values)?;
        let timeout = self
            .timeout
            .map_or(std::time::Duration::from_secs(30), Seconds::duration);
        let client = reqwest::blocking::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| TaskError::new("Http", format!("cannot make an HTTP client: {e}")))?;
        let mut request = client.request(method.clone(), &url);
        let mut has_type = false;
        for (name, value) in &self.headers {
            has_type |= name.eq_ignore_ascii_case("content-type");
            request = request.header(name, fill(value, values)?);
        }
        match self
            .body
            .as_ref()
            .map(|b| fill_value(b, values))
            .transpose()?
        {
            None => {}
            Some(Value::String(text)) => request = request.body(text),
            Some(json) => {
                if !has_type {
                    request = request.header("content-type", "application/json");
                }
                request = request.body(json.to_string());
            }
        }
        let response = request
            .send()
            .map_err(|e| TaskError::new("Http", format!("{method} {url}: {}", chain(&e))))?;
        let status = response.status();
        let text = response.text().map_err(|e| {
            TaskError::new(
                "Http",
                format!("{method} {url}: reading the body: {}", chain(&e)),
            )
        })?;
        let ok = match &self.success {
            Some(codes) => codes.contains(&status.as_u16()),
            None => status.is_success(),
        };
        if !ok {
            let mut start = text.len().saturating_sub(BODY_TAIL);
            while !text.is_char_boundary(start) {
                start += 1;
            }
            let body = text[start..].trim();
            let body = if body.is_empty() {
                String::new()
            } else {
                format!(": {body}")
            };
            return Err(TaskError::new(
                "HttpStatus",
                format!("{method} {url} answered {}{body}", status.as_u16()),
            ));
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }
}

/// An error with its causes (reqwest's own message says little).
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn templates() {
        let values = BTreeMap::from([
            ("region".to_owned(), json!("eu-1")),
            ("volume".to_owned(), json!({"id": 7, "tags": ["a"]})),
        ]);
        assert_eq!(
            fill("/r/${region}/v/${volume.id}", &values).unwrap(),
            "/r/eu-1/v/7"
        );
        assert_eq!(
            fill_value(
                &json!({"v": "${volume}", "t": "${volume.tags.0}!"}),
                &values
            )
            .unwrap(),
            json!({"v": {"id": 7, "tags": ["a"]}, "t": "a!"})
        );
        assert!(fill("${nothing}", &values).is_err());
    }
}
