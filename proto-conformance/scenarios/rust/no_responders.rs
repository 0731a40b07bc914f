//! A request nobody listens to: async-nats reports `NoResponders` (the server's 503 status
//! message), not a timeout, and the connection stays usable. A request with a responder that
//! never answers times out instead.

use std::time::Duration;

use serde_json::{Value, json};

use crate::{connect, round_trip};

pub async fn run(url: &str) -> anyhow::Result<Value> {
    let client = connect(url).await?;
    let no_responders = match client.request("rs.nobody.home", "hi".into()).await {
        Ok(_) => json!("answered"),
        Err(err) => json!(format!("{:?}", err.kind())),
    };

    let silent = connect(url).await?;
    let _never_answers = silent.subscribe("rs.silent").await?;
    round_trip(&silent).await?;
    let request =
        async_nats::Request::new().payload("hi".into()).timeout(Some(Duration::from_millis(300)));
    let silent_result = match client.send_request("rs.silent", request).await {
        Ok(_) => json!("answered"),
        Err(err) => json!(format!("{:?}", err.kind())),
    };
    round_trip(&client).await?;
    Ok(json!({
        "no_responders": no_responders,
        "silent_responder": silent_result,
        "still_connected": client.connection_state().to_string(),
    }))
}
