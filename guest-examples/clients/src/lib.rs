//! The `clients` example tool: one GET, sent through two of the HTTP client
//! libraries tool authors use with `wasi:http` (`wstd`, async; `waki`,
//! blocking). Like every tool it holds no credentials; the host attaches
//! them and redacts their echoes, whichever client sent the request.

wit_bindgen::generate!({
    path: ["../../wit", "wit"],
    world: "airlock-examples:clients/clients-tool",
    generate_all,
});

use exports::airlock_examples::clients::get::{Guest, Outcome};

struct Clients;

impl Guest for Clients {
    fn get_with_wstd(url: String, count: u32) -> Result<Outcome, String> {
        wstd::runtime::block_on(async {
            let client = wstd::http::Client::new();
            let mut outcome = Outcome { ok: 0, last_body: String::new() };
            for i in 0..count {
                let request = wstd::http::Request::get(url.as_str())
                    .body(wstd::http::Body::empty())
                    .map_err(|e| format!("request {i}: {e}"))?;
                let mut response = client.send(request).await.map_err(|e| format!("request {i}: {e:?}"))?;
                let status = response.status().as_u16();
                let body = response.body_mut().contents().await.map_err(|e| format!("request {i}: body: {e:?}"))?;
                outcome.last_body = String::from_utf8_lossy(body).into_owned();
                if status != 200 {
                    return Err(format!("request {i}: status {status}: {}", outcome.last_body));
                }
                outcome.ok += 1;
            }
            Ok(outcome)
        })
    }

    fn get_with_waki(url: String, count: u32) -> Result<Outcome, String> {
        let client = waki::Client::new();
        let mut outcome = Outcome { ok: 0, last_body: String::new() };
        for i in 0..count {
            let response = client.get(&url).send().map_err(|e| format!("request {i}: {e:#}"))?;
            let status = response.status_code();
            let body = response.body().map_err(|e| format!("request {i}: body: {e:#}"))?;
            outcome.last_body = String::from_utf8_lossy(&body).into_owned();
            if status != 200 {
                return Err(format!("request {i}: status {status}: {}", outcome.last_body));
            }
            outcome.ok += 1;
        }
        Ok(outcome)
    }
}

export!(Clients);
