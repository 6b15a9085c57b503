//! The SMTP mail catcher: a raw SMTP conversation and lettre both land messages.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sandbox::mail::{MailCatcher, SmtpTarget, send};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

async fn catcher() -> MailCatcher {
    MailCatcher::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

struct Conn {
    r: BufReader<tokio::net::tcp::OwnedReadHalf>,
    w: tokio::net::tcp::OwnedWriteHalf,
}

impl Conn {
    async fn open(c: &MailCatcher) -> Self {
        let (r, w) = TcpStream::connect(c.addr()).await.unwrap().into_split();
        let mut conn = Self {
            r: BufReader::new(r),
            w,
        };
        assert!(conn.reply().await.starts_with("220"));
        conn
    }
    async fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut l = String::new();
            self.r.read_line(&mut l).await.unwrap();
            all.push_str(&l);
            if l.len() < 4 || l.as_bytes()[3] != b'-' {
                return all;
            }
        }
    }
    async fn cmd(&mut self, line: &str) -> String {
        self.w
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .unwrap();
        self.reply().await
    }
}

#[tokio::test]
async fn a_raw_smtp_session_is_caught_with_dot_unstuffing_and_rset() {
    let c = catcher().await;
    let mut s = Conn::open(&c).await;
    assert!(s.cmd("EHLO test").await.starts_with("250"));
    assert!(s.cmd("NOOP").await.starts_with("250"));
    assert!(
        s.cmd("DATA").await.starts_with("503"),
        "DATA before MAIL is refused"
    );
    assert!(
        s.cmd("MAIL FROM:<dropped@example.com>")
            .await
            .starts_with("250")
    );
    assert!(s.cmd("RSET").await.starts_with("250"));
    assert!(
        s.cmd("MAIL FROM:<sender@example.com> SIZE=100")
            .await
            .starts_with("250")
    );
    assert!(s.cmd("RCPT TO:<a@example.com>").await.starts_with("250"));
    assert!(s.cmd("RCPT TO:<b@example.com>").await.starts_with("250"));
    assert!(s.cmd("DATA").await.starts_with("354"));
    let r = s
        .cmd("Subject: Hello\r\nFrom: sender@example.com\r\n\r\nline one\r\n..leading dot\r\n.")
        .await;
    assert!(r.starts_with("250"), "{r}");
    assert!(s.cmd("QUIT").await.starts_with("221"));
    let m = c.messages();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].from, "sender@example.com");
    assert_eq!(m[0].to, ["a@example.com", "b@example.com"]);
    assert_eq!(m[0].subject, "Hello");
    assert_eq!(m[0].body, "line one\n.leading dot");
}

#[tokio::test]
async fn a_message_over_the_size_cap_is_refused_and_the_session_goes_on() {
    let c = catcher().await;
    let mut s = Conn::open(&c).await;
    s.cmd("HELO test").await;
    s.cmd("MAIL FROM:<x@example.com>").await;
    s.cmd("RCPT TO:<y@example.com>").await;
    s.cmd("DATA").await;
    let big = "x".repeat(1000);
    for _ in 0..(sandbox::mail::MAX_MESSAGE / 1000 + 10) {
        s.w.write_all(format!("{big}\r\n").as_bytes())
            .await
            .unwrap();
    }
    assert!(s.cmd(".").await.starts_with("552"));
    assert!(s.cmd("NOOP").await.starts_with("250"));
    assert!(c.messages().is_empty());
}

#[tokio::test]
async fn lettre_mail_arrives_with_subject_and_body() {
    let c = catcher().await;
    let target = SmtpTarget {
        host: "127.0.0.1".into(),
        port: c.addr().port(),
        from: "noreply@example.com".into(),
    };
    send(
        &target,
        &["u@example.com".to_owned()],
        "Your PIN",
        "The PIN is: 123456\n.\nend".into(),
    )
    .await
    .unwrap();
    let m = c.messages();
    assert_eq!(m[0].to, ["u@example.com"]);
    assert_eq!(m[0].subject, "Your PIN");
    assert!(
        m[0].body.contains("The PIN is: 123456\n.\nend"),
        "{:?}",
        m[0].body
    );
}

#[tokio::test]
async fn a_long_folded_subject_reads_back_with_its_spaces() {
    let c = catcher().await;
    let target = SmtpTarget {
        host: "127.0.0.1".into(),
        port: c.addr().port(),
        from: "noreply@example.com".into(),
    };
    let subject =
        "PIN for the security key of AdeleV@contoso.onmicrosoft.com (serial 31636842) sent today";
    send(&target, &["u@example.com".to_owned()], subject, "x".into())
        .await
        .unwrap();
    assert_eq!(c.messages()[0].subject, subject);
}

#[tokio::test]
async fn a_refusal_rate_applies_to_its_sender_only_until_accept_all() {
    let c = catcher().await;
    // Rate 1: every recipient of mail from okta@example.com is refused for good; mail
    // from anyone else meets the rate-0 rule only, so it passes.
    c.refuse_at_rate(550, 1.0, Some("OKTA@example.com"));
    c.refuse_at_rate(451, 0.0, None);
    let mut s = Conn::open(&c).await;
    s.cmd("HELO test").await;
    s.cmd("MAIL FROM:<okta@example.com>").await;
    let r = s.cmd("RCPT TO:<a@example.com>").await;
    assert!(r.starts_with("550"), "{r}");
    s.cmd("RSET").await;
    s.cmd("MAIL FROM:<connector@example.com>").await;
    let r = s.cmd("RCPT TO:<a@example.com>").await;
    assert!(r.starts_with("250"), "{r}");
    s.cmd("RSET").await;

    // A transient rate for every sender: 451.
    c.accept_all();
    c.refuse_at_rate(451, 1.0, None);
    s.cmd("MAIL FROM:<connector@example.com>").await;
    let r = s.cmd("RCPT TO:<a@example.com>").await;
    assert!(r.starts_with("451"), "{r}");
    s.cmd("RSET").await;

    // accept_all ends the rates too.
    c.accept_all();
    s.cmd("MAIL FROM:<okta@example.com>").await;
    assert!(s.cmd("RCPT TO:<a@example.com>").await.starts_with("250"));
    assert!(s.cmd("DATA").await.starts_with("354"));
    assert!(
        s.cmd("Subject: x\r\n\r\nbody\r\n.")
            .await
            .starts_with("250")
    );
    assert_eq!(c.messages().len(), 1);
}
