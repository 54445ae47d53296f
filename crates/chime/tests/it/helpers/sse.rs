//! A Server-Sent Events reader for the inbox stream: the next event under a deadline, or
//! every event until the stream ends.

use futures::StreamExt;

use super::PATIENCE;

/// A Server-Sent Events reader.
pub struct SseReader {
    stream: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: String,
}

#[derive(Debug)]
pub struct SseEvent {
    pub event: String,
    pub data: String,
}

impl SseReader {
    /// Sends `request` (see [`super::TestClient::sse`]) and checks that it opened a stream.
    pub async fn open(request: reqwest::RequestBuilder) -> SseReader {
        let response = request.send().await.expect("sse request");
        assert_eq!(response.status(), 200);
        assert!(response.headers()["content-type"]
            .to_str()
            .expect("content type")
            .starts_with("text/event-stream"));
        SseReader {
            stream: response.bytes_stream().boxed(),
            buffer: String::new(),
        }
    }

    /// The next event (comments and keep-alives skipped), failing after [`PATIENCE`].
    pub async fn next(&mut self) -> SseEvent {
        tokio::time::timeout(PATIENCE, self.next_inner())
            .await
            .expect("timed out waiting for an SSE event")
    }

    /// The next event's name (comments and keep-alives skipped), or `None` once the stream
    /// ends; with no time limit, for a reader that runs beside the test.
    pub async fn next_until_closed(&mut self) -> Option<String> {
        self.next_or_end().await.map(|e| e.event)
    }

    async fn next_inner(&mut self) -> SseEvent {
        self.next_or_end().await.expect("the SSE stream ended")
    }

    pub async fn next_or_end(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = SseEvent {
                    event: "message".into(),
                    data: String::new(),
                };
                let mut has_data = false;
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event.event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        event.data.push_str(v.trim_start());
                        has_data = true;
                    }
                }
                if has_data {
                    return Some(event);
                }
                continue;
            }
            let chunk = match self.stream.next().await? {
                Ok(chunk) => chunk,
                Err(_) => return None,
            };
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}
