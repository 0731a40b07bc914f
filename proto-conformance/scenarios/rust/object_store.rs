//! The object store with async-nats: a 600 KiB object in 128 KiB chunks put and read back
//! (an ordered push consumer on its chunk subject), a small one, info, list (last-per-subject
//! on the metadata), delete, and what a get of a deleted object says.
//! flags: -js

use async_nats::jetstream::{self, object_store};
use futures::TryStreamExt as _;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt as _;

use crate::connect;

pub async fn run(url: &str) -> anyhow::Result<Value> {
    let nc = connect(url).await?;
    let js = jetstream::new(nc.clone());
    let os = js
        .create_object_store(object_store::Config { bucket: "blobs".into(), ..Default::default() })
        .await?;
    let data: Vec<u8> =
        (0..600 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let put = os.put("big.bin", &mut data.as_slice()).await?;
    os.put("small.txt", &mut b"hello".as_slice()).await?;
    let mut obj = os.get("big.bin").await?;
    let mut back = Vec::new();
    obj.read_to_end(&mut back).await?;
    let mut small = String::new();
    os.get("small.txt").await?.read_to_string(&mut small).await?;
    let info = os.info("big.bin").await?;
    let mut names: Vec<String> = os.list().await?.map_ok(|o| o.name).try_collect().await?;
    names.sort();
    os.delete("big.bin").await?;
    let after: Vec<String> = os.list().await?.map_ok(|o| o.name).try_collect().await?;
    let gone = match os.get("big.bin").await {
        Ok(_) => json!("found"),
        Err(e) => json!(format!("{:?}", e.kind())),
    };
    js.delete_object_store("blobs").await?;
    Ok(json!({
        "put": [put.name, put.size, put.chunks, put.digest],
        "round_trip": back == data,
        "small": small,
        "info": [info.size, info.chunks, info.deleted, info.digest],
        "list": names,
        "after_delete": after,
        "get_deleted": gone,
    }))
}
