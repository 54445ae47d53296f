//! What the person reads: subject, plain-text and HTML bodies, and the headers that make a
//! resend recognisable.
//!
//! Both bodies say the same things in the same order (task name, late note, description, due
//! time in the task's own zone, link), so a reader gets the whole reminder whichever part
//! their client shows. Every string a user wrote is HTML-escaped in the HTML part; the HTML
//! uses inline styles only, since many clients drop `<style>` blocks.

use std::fmt::Write as _;

use chime_core::html::escape as escape_html;
use sha2::{Digest, Sha256};

use crate::{local_due_time, Reminder};

/// The subject and the two bodies of one reminder.
pub(crate) struct Rendered {
    pub(crate) subject: String,
    pub(crate) text: String,
    pub(crate) html: String,
}

const LATE_NOTE: &str = "This reminder is late: Chime could not send it at the due time.";
const FOOTER: &str = "An automatic reminder from Chime.";

pub(crate) fn render(message: &Reminder, app_base_url: Option<&str>) -> Rendered {
    let name = message.task.name.as_str();
    let description = message.task.description.as_deref();
    let due = local_due_time(message);
    let link = app_base_url.map(|base| format!("{base}/tasks/{}", message.occurrence.task_id));
    // One-click actions: each link opens a confirmation page whose button acts (a mail
    // scanner that fetches links changes nothing).
    let actions: Vec<(&str, String)> = app_base_url
        .map(|base| {
            message
                .actions
                .iter()
                .map(|a| (a.label.as_str(), format!("{base}/act/{}", a.token)))
                .collect()
        })
        .unwrap_or_default();
    let prefix = if message.late {
        "Late reminder"
    } else {
        "Reminder"
    };
    let subject = format!("{prefix}: {name}");

    // `write!` into a `String` cannot fail.
    let mut text = format!("{subject}\n\n");
    if message.late {
        let _ = write!(text, "{LATE_NOTE}\n\n");
    }
    if let Some(description) = description {
        let _ = write!(text, "{description}\n\n");
    }
    let _ = writeln!(text, "Due: {due}");
    if !actions.is_empty() {
        let _ = writeln!(text);
        for (label, url) in &actions {
            let _ = writeln!(text, "{label}: {url}");
        }
    }
    if let Some(link) = &link {
        let _ = write!(text, "\nOpen the task: {link}\n");
    }
    let _ = write!(text, "\n-- \n{FOOTER}\n");

    let mut html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>{}</title></head>\n\
         <body style=\"margin:0;padding:24px;font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;\
         color:#1f2328;line-height:1.5;\">\n<div style=\"max-width:560px;margin:0 auto;\">\n\
         <p style=\"margin:0 0 4px;font-size:14px;color:#59636e;\">{prefix}</p>\n\
         <h1 style=\"margin:0 0 16px;font-size:22px;\">{}</h1>\n",
        escape_html(&subject),
        escape_html(name),
    );
    if message.late {
        let _ = writeln!(
            html,
            "<p style=\"margin:0 0 16px;padding:8px 12px;background:#fff8c5;\
             border-left:4px solid #d4a72c;\">{LATE_NOTE}</p>"
        );
    }
    if let Some(description) = description {
        let _ = writeln!(
            html,
            "<p style=\"margin:0 0 16px;\">{}</p>",
            escape_html(description).replace('\n', "<br>\n")
        );
    }
    let _ = writeln!(
        html,
        "<p style=\"margin:0 0 16px;\"><strong>Due:</strong> {}</p>",
        escape_html(&due)
    );
    if !actions.is_empty() {
        let _ = write!(html, "<p style=\"margin:24px 0 0;\">");
        for (i, (label, url)) in actions.iter().enumerate() {
            let (background, color) = if i == 0 {
                ("#1a7f37", "#ffffff")
            } else {
                ("#f6f8fa", "#1f2328")
            };
            let _ = write!(
                html,
                "<a href=\"{}\" style=\"display:inline-block;margin:0 8px 8px 0;\
                 padding:8px 16px;background:{background};color:{color};border:1px solid #d1d9e0;\
                 border-radius:6px;text-decoration:none;\">{}</a>",
                escape_html(url),
                escape_html(label)
            );
        }
        let _ = writeln!(html, "</p>");
    }
    if let Some(link) = &link {
        let _ = writeln!(
            html,
            "<p style=\"margin:24px 0;\"><a href=\"{}\" style=\"display:inline-block;\
             padding:8px 16px;background:#1f6feb;color:#ffffff;border-radius:6px;\
             text-decoration:none;\">Open the task</a></p>",
            escape_html(link)
        );
    }
    let _ = write!(
        html,
        "<p style=\"margin:32px 0 0;font-size:12px;color:#59636e;\">{FOOTER}</p>\n\
         </div>\n</body></html>\n"
    );

    Rendered {
        subject,
        text,
        html,
    }
}

/// `<{32 hex digits of SHA-256(key)}@chime>`: the same for every attempt of one delivery, so a
/// receiver that already has the message can drop a resend.
pub(crate) fn message_id(idempotency_key: &str) -> String {
    let digest = Sha256::digest(idempotency_key.as_bytes());
    let mut id = String::with_capacity(45);
    id.push('<');
    for byte in &digest[..16] {
        let _ = write!(id, "{byte:02x}");
    }
    id.push_str("@chime>");
    id
}

/// Whether `text` holds what a mail client would decode as an RFC 2047 encoded word
/// (`=?charset?encoding?text?=`). Written raw into a header (lettre encodes only words with
/// characters outside printable ASCII), a task named `=?utf-8?q?Bcc=3A_x=40evil.example?=`
/// would show as `Bcc: x@evil.example` instead of as typed.
pub(crate) fn has_encoded_word(text: &str) -> bool {
    text.contains("=?")
}

/// The Subject header with all of `subject` in base64 encoded words (RFC 2047), at most 42
/// bytes of UTF-8 each (whole characters) so that each folded line stays within 78
/// characters; a mail client decodes them back to exactly `subject`.
pub(crate) fn encoded_subject(subject: &str) -> lettre::message::header::HeaderValue {
    use base64::Engine as _;
    use lettre::message::header::{HeaderName, HeaderValue};
    const CHUNK: usize = 42;
    let mut words = Vec::new();
    let mut start = 0;
    while start < subject.len() {
        let mut end = (start + CHUNK).min(subject.len());
        while !subject.is_char_boundary(end) {
            end -= 1;
        }
        let chunk = &subject.as_bytes()[start..end];
        words.push(format!(
            "=?utf-8?b?{}?=",
            base64::engine::general_purpose::STANDARD.encode(chunk)
        ));
        start = end;
    }
    // Only base64 and the encoded-word markers, folded: nothing a header could be injected by.
    HeaderValue::dangerous_new_pre_encoded(
        HeaderName::new_from_ascii_str("Subject"),
        subject.to_owned(),
        words.join("\r\n "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_id_is_a_stable_hash_of_the_key() {
        let id = message_id("tsk_1@2026-12-07T08:00:00Z/email");
        assert_eq!(id, message_id("tsk_1@2026-12-07T08:00:00Z/email"));
        assert_ne!(id, message_id("tsk_1@2026-12-08T08:00:00Z/email"));
        assert_eq!(id.len(), 1 + 32 + "@chime>".len());
        assert!(id.starts_with('<') && id.ends_with("@chime>"));
        // SHA-256("abc") starts with ba7816bf8f01cfea414140de5dae2223.
        assert_eq!(
            message_id("abc"),
            "<ba7816bf8f01cfea414140de5dae2223@chime>"
        );
    }
}
