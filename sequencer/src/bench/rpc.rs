//! A small JSON-RPC client over HTTP for the load generator: single calls for set-up and
//! sampling, and pre-serialised batches of `eth_sendRawTransaction` for the timed phase.
//!
//! It writes request bodies by hand rather than through a typed provider so the timed phase
//! does no per-transaction serialisation beyond copying pre-encoded hex strings.

use super::BenchError;
use serde::{Deserialize, de::DeserializeOwned};
use serde_json::{Value, json};
use std::time::Duration;

/// An HTTP JSON-RPC endpoint; each instance keeps its own keep-alive connection(s).
#[derive(Debug, Clone)]
pub struct RpcClient {
    http: reqwest::Client,
    url: String,
}

/// The error object of a failed call.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct RpcErrorObject {
    /// JSON-RPC error code.
    pub code: i64,
    /// Message as the node wrote it.
    pub message: String,
}

#[derive(Deserialize)]
struct Response<T> {
    #[serde(default)]
    id: Option<u64>,
    result: Option<T>,
    error: Option<RpcErrorObject>,
}

impl RpcClient {
    /// A client for `url` with a per-request timeout.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, BenchError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| BenchError::Connect(format!("building the HTTP client: {e}")))?;
        Ok(Self {
            http,
            url: url.to_string(),
        })
    }

    /// The endpoint.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// One call; an RPC error becomes [`BenchError::Rpc`].
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        params: Value,
    ) -> Result<T, BenchError> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let response: Response<T> = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| BenchError::Connect(format!("{method}: {e}")))?
            .json_bytes()
            .await
            .map_err(|e| BenchError::Connect(format!("{method}: {e}")))?;
        match (response.result, response.error) {
            (_, Some(error)) => Err(BenchError::Rpc {
                method: method.to_string(),
                code: error.code,
                message: error.message,
            }),
            (Some(result), None) => Ok(result),
            (None, None) => serde_json::from_value(Value::Null).map_err(|_| BenchError::Rpc {
                method: method.to_string(),
                code: 0,
                message: "empty result".into(),
            }),
        }
    }

    /// One batch of `method` calls, one per `params` entry; outcomes in input order.
    pub async fn batch(
        &self,
        method: &str,
        params: &[Value],
    ) -> Result<Vec<Result<Value, RpcErrorObject>>, BenchError> {
        let body: Vec<Value> = params
            .iter()
            .enumerate()
            .map(|(i, p)| json!({"jsonrpc": "2.0", "id": i, "method": method, "params": p}))
            .collect();
        let bytes = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .body(Value::Array(body).to_string())
            .send()
            .await
            .map_err(|e| BenchError::Connect(format!("{method} batch: {e}")))?
            .bytes()
            .await
            .map_err(|e| BenchError::Connect(format!("{method} batch: {e}")))?;
        let responses: Vec<Response<Value>> = serde_json::from_slice(&bytes).map_err(|e| {
            BenchError::Connect(format!(
                "{method} batch: bad response ({e}): {}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
            ))
        })?;
        let mut out = vec![Ok(Value::Null); params.len()];
        for response in responses {
            if let Some(id) = response
                .id
                .map(|id| id as usize)
                .filter(|id| *id < out.len())
            {
                out[id] = match response.error {
                    Some(error) => Err(error),
                    None => Ok(response.result.unwrap_or(Value::Null)),
                };
            }
        }
        Ok(out)
    }

    /// Sends `raws` (each a `0x`-prefixed encoded transaction) as one batch of
    /// `eth_sendRawTransaction`; returns each call's outcome in input order.
    pub async fn send_raw_batch(
        &self,
        raws: &[&str],
    ) -> Result<Vec<Result<(), RpcErrorObject>>, BenchError> {
        let mut body = String::with_capacity(raws.iter().map(|r| r.len() + 80).sum::<usize>() + 2);
        body.push('[');
        for (i, raw) in raws.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            body.push_str(r#"{"jsonrpc":"2.0","id":"#);
            body.push_str(&i.to_string());
            body.push_str(r#","method":"eth_sendRawTransaction","params":[""#);
            body.push_str(raw);
            body.push_str(r#""]}"#);
        }
        body.push(']');
        let bytes = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| BenchError::Connect(format!("batch: {e}")))?
            .bytes()
            .await
            .map_err(|e| BenchError::Connect(format!("batch: {e}")))?;
        parse_batch(&bytes, raws.len())
    }
}

/// Orders a batch response by id; a missing entry counts as an error of its own kind.
fn parse_batch(bytes: &[u8], len: usize) -> Result<Vec<Result<(), RpcErrorObject>>, BenchError> {
    let parsed: Result<Vec<Response<serde::de::IgnoredAny>>, _> = serde_json::from_slice(bytes);
    let responses = match parsed {
        Ok(r) => r,
        Err(_) => {
            // A whole-batch failure (e.g. batch too large) comes back as one error object.
            let single: Response<serde::de::IgnoredAny> =
                serde_json::from_slice(bytes).map_err(|e| {
                    BenchError::Connect(format!(
                        "unparseable batch response ({e}): {}",
                        String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
                    ))
                })?;
            let error = single.error.unwrap_or(RpcErrorObject {
                code: 0,
                message: "batch failed".into(),
            });
            return Ok(vec![Err(error); len]);
        }
    };
    let mut out = vec![
        Err(RpcErrorObject {
            code: 0,
            message: "no response in batch".into(),
        });
        len
    ];
    for response in responses {
        let Some(id) = response.id.map(|id| id as usize).filter(|id| *id < len) else {
            continue;
        };
        out[id] = match response.error {
            Some(error) => Err(error),
            None => Ok(()),
        };
    }
    Ok(out)
}

trait JsonBytes {
    async fn json_bytes<T: DeserializeOwned>(self) -> Result<T, String>;
}

impl JsonBytes for reqwest::Response {
    async fn json_bytes<T: DeserializeOwned>(self) -> Result<T, String> {
        let bytes = self.bytes().await.map_err(|e| e.to_string())?;
        serde_json::from_slice(&bytes).map_err(|e| {
            format!(
                "bad response ({e}): {}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
            )
        })
    }
}

/// Parses a `0x` hex quantity.
pub fn quantity(value: &Value) -> Option<u64> {
    u64::from_str_radix(value.as_str()?.trim_start_matches("0x"), 16).ok()
}

/// Parses a `0x` hex quantity that may exceed 64 bits.
pub fn quantity_u128(value: &Value) -> Option<u128> {
    u128::from_str_radix(value.as_str()?.trim_start_matches("0x"), 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_responses_are_matched_by_id() {
        let body = br#"[{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"nonce too low"}},
                        {"jsonrpc":"2.0","id":0,"result":"0x12"}]"#;
        let out = parse_batch(body, 3).unwrap();
        assert_eq!(out[0], Ok(()));
        assert_eq!(out[1].as_ref().unwrap_err().message, "nonce too low");
        assert_eq!(out[2].as_ref().unwrap_err().message, "no response in batch");
    }

    #[test]
    fn a_whole_batch_error_applies_to_every_call() {
        let body =
            br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32010,"message":"batch too large"}}"#;
        let out = parse_batch(body, 2).unwrap();
        assert!(out.iter().all(|r| r.as_ref().unwrap_err().code == -32010));
    }

    #[test]
    fn quantities_parse() {
        assert_eq!(quantity(&json!("0x1f")), Some(31));
        assert_eq!(quantity(&json!(5)), None);
        assert_eq!(quantity_u128(&json!("0x10")), Some(16));
    }
}
