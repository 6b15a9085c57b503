//! The mail catcher: a real SMTP listener that keeps what it receives, for the sandboxes
//! (the Okta sandbox mails PINs through it) and the connector's PIN delivery.
//!
//! Speaks enough SMTP for any client (lettre, Python `smtplib`, swaks): `EHLO`/`HELO`,
//! `MAIL FROM`, `RCPT TO`, `DATA` (dot-unstuffed, capped at [`MAX_MESSAGE`] bytes),
//! `RSET`, `NOOP`, `QUIT`. No TLS and no AUTH: bind it on loopback only. Messages are
//! read back with [`MailCatcher::messages`] or `GET /sandbox/v1/mail` on the Okta sandbox.
//!
//! [`send`] is the other half: a plain-text message sent with lettre to a configured
//! SMTP server.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// Largest message accepted (bytes of DATA).
pub const MAX_MESSAGE: usize = 1024 * 1024;
/// Most recipients per message.
pub const MAX_RECIPIENTS: usize = 100;
/// Longest command line.
const MAX_LINE: usize = 4096;

/// One received message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mail {
    /// The envelope sender (`MAIL FROM`).
    pub from: String,
    /// The envelope recipients (`RCPT TO`).
    pub to: Vec<String>,
    /// The `Subject` header (empty when absent).
    pub subject: String,
    /// The body after the header block, line endings as `\n`.
    pub body: String,
    /// When the message was accepted, RFC 3339.
    pub received_at: String,
}

/// A running catcher; dropping it does not stop it (it ends with the runtime).
#[derive(Clone)]
pub struct MailCatcher {
    addr: SocketAddr,
    messages: Arc<Mutex<Vec<Mail>>>,
    refusals: Arc<Mutex<Vec<Refusal>>>,
    rates: Arc<Mutex<Vec<RateRefusal>>>,
}

/// A recipient the catcher refuses at `RCPT TO` (a fault switch for tests).
#[derive(Debug, Clone)]
struct Refusal {
    recipient: String,
    code: u16,
    /// How many more times (`None`: every time).
    times: Option<u32>,
}

/// A fraction of recipients refused at random at `RCPT TO` (a fault switch for chaos runs).
#[derive(Debug, Clone)]
struct RateRefusal {
    code: u16,
    rate: f64,
    /// Only mail from this sender (lowercase; any when `None`).
    from: Option<String>,
}

impl std::fmt::Debug for MailCatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailCatcher")
            .field("addr", &self.addr)
            .finish()
    }
}

impl MailCatcher {
    /// Binds `addr` (port 0 picks one) and serves in the background.
    pub async fn start(addr: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        Ok(Self::serve(listener))
    }

    /// Serves on an already bound listener.
    pub fn serve(listener: TcpListener) -> Self {
        let addr = listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
        let catcher = Self {
            addr,
            messages: Arc::new(Mutex::new(Vec::new())),
            refusals: Arc::new(Mutex::new(Vec::new())),
            rates: Arc::new(Mutex::new(Vec::new())),
        };
        let c = catcher.clone();
        tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        let c = c.clone();
                        tokio::spawn(async move {
                            if let Err(e) = c.session(stream).await {
                                tracing::debug!(error = %e, "SMTP session ended");
                            }
                        });
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "SMTP accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                }
            }
        });
        catcher
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<Mail> {
        self.messages
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Refuses `recipient` (case-insensitive) at `RCPT TO` with `code`: a 5xx is a
    /// permanent refusal (`550 5.1.1 mailbox unavailable`), a 4xx a transient one (`451
    /// 4.3.0 try again later`). `times`: how many attempts are refused (`None`: all,
    /// until [`MailCatcher::accept_all`]).
    pub fn refuse(&self, recipient: &str, code: u16, times: Option<u32>) {
        self.refusals
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Refusal {
                recipient: recipient.to_ascii_lowercase(),
                code,
                times,
            });
    }

    /// Refuses a fraction `rate` (0 to 1) of all recipients at `RCPT TO`, at random,
    /// with `code` (5xx: `550`, permanent; 4xx: `451`, transient), only in mail from
    /// `from` (case-insensitive) when given, until [`MailCatcher::accept_all`]. Checked
    /// after the per-recipient refusals of [`MailCatcher::refuse`]; several rates add up.
    pub fn refuse_at_rate(&self, code: u16, rate: f64, from: Option<&str>) {
        let rate = if rate.is_finite() {
            rate.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self.rates
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(RateRefusal {
                code,
                rate,
                from: from.map(str::to_ascii_lowercase),
            });
    }

    /// Ends every refusal (per recipient and at a rate).
    pub fn accept_all(&self) {
        self.refusals
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
        self.rates
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    /// The refusal at a rate for mail from `from` now, if one hits: one draw decides
    /// among the rates that apply, so they add up.
    fn rate_refusal(&self, from: &str) -> Option<u16> {
        let rates = self
            .rates
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if rates.is_empty() {
            return None;
        }
        let from = from.to_ascii_lowercase();
        let draw = crate::rng::unit();
        let mut acc = 0.0;
        for r in rates
            .iter()
            .filter(|r| r.from.as_ref().is_none_or(|f| *f == from))
        {
            acc += r.rate;
            if draw < acc {
                return Some(r.code);
            }
        }
        None
    }

    /// The refusal for `recipient` now, if any (counts it down).
    fn refusal(&self, recipient: &str) -> Option<u16> {
        let mut all = self
            .refusals
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let lower = recipient.to_ascii_lowercase();
        let i = all.iter().position(|r| r.recipient == lower)?;
        let code = all[i].code;
        match &mut all[i].times {
            Some(0) => {
                all.remove(i);
                return None;
            }
            Some(n) => {
                *n -= 1;
                if *n == 0 {
                    all.remove(i);
                }
            }
            None => {}
        }
        Some(code)
    }

    /// Forgets every message.
    pub fn clear(&self) {
        self.messages
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    async fn session(&self, stream: TcpStream) -> std::io::Result<()> {
        let (r, mut w) = stream.into_split();
        let mut r = BufReader::new(r);
        w.write_all(b"220 prereg-sandbox ESMTP mail catcher\r\n")
            .await?;
        let mut from: Option<String> = None;
        let mut to: Vec<String> = Vec::new();
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = (&mut r)
                .take(MAX_LINE as u64)
                .read_until(b'\n', &mut line)
                .await?;
            ack_now(&r);
            if n == 0 {
                return Ok(());
            }
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end_matches(['\r', '\n']);
            let upper = text.to_ascii_uppercase();
            let verb = upper.split_whitespace().next().unwrap_or("");
            let reply: &[u8] = match verb {
                "EHLO" => {
                    b"250-prereg-sandbox\r\n250-SIZE 1048576\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
                }
                "HELO" => b"250 prereg-sandbox\r\n",
                "NOOP" => b"250 OK\r\n",
                "RSET" => {
                    from = None;
                    to.clear();
                    b"250 OK\r\n"
                }
                "QUIT" => {
                    w.write_all(b"221 Bye\r\n").await?;
                    return Ok(());
                }
                "MAIL" if upper.starts_with("MAIL FROM:") => {
                    from = Some(address(&text[10..]));
                    to.clear();
                    b"250 OK\r\n"
                }
                "RCPT" if upper.starts_with("RCPT TO:") => {
                    if from.is_none() {
                        b"503 MAIL first\r\n"
                    } else if to.len() >= MAX_RECIPIENTS {
                        b"452 Too many recipients\r\n"
                    } else if let Some(code) = self
                        .refusal(&address(&text[8..]))
                        .or_else(|| self.rate_refusal(from.as_deref().unwrap_or_default()))
                    {
                        tracing::info!(code, "refusing a recipient (fault switch)");
                        if code >= 500 {
                            b"550 5.1.1 mailbox unavailable (sandbox refusal)\r\n"
                        } else {
                            b"451 4.3.0 try again later (sandbox refusal)\r\n"
                        }
                    } else {
                        to.push(address(&text[8..]));
                        b"250 OK\r\n"
                    }
                }
                "DATA" => {
                    if from.is_none() || to.is_empty() {
                        b"503 MAIL and RCPT first\r\n"
                    } else {
                        w.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                            .await?;
                        match read_data(&mut r).await? {
                            Some(data) => {
                                let mail = parse(
                                    from.take().unwrap_or_default(),
                                    std::mem::take(&mut to),
                                    &data,
                                );
                                tracing::info!(to = ?mail.to, "mail caught");
                                self.messages
                                    .lock()
                                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                                    .push(mail);
                                b"250 OK: queued\r\n"
                            }
                            None => {
                                from = None;
                                to.clear();
                                b"552 Message exceeds the size limit\r\n"
                            }
                        }
                    }
                }
                "" => b"500 Empty command\r\n",
                _ => b"502 Command not implemented\r\n",
            };
            w.write_all(reply).await?;
        }
    }
}

/// `<a@b>` (with optional parameters after it) to `a@b`.
fn address(arg: &str) -> String {
    let arg = arg.trim();
    match (arg.find('<'), arg.find('>')) {
        (Some(a), Some(b)) if b > a => arg[a + 1..b].to_owned(),
        _ => arg.split_whitespace().next().unwrap_or("").to_owned(),
    }
}

/// The reading half of a session.
type Reader = BufReader<tokio::net::tcp::OwnedReadHalf>;

/// Acknowledges what was read at once when the reader is about to wait on the socket.
/// A client that writes a message in two parts (lettre sends the body, then the final
/// `.` line) waits under Nagle's algorithm for the first part's ACK, which the kernel
/// would otherwise delay by 40 ms (a delayed ACK): 40 ms per mail for nothing.
fn ack_now(r: &Reader) {
    #[cfg(target_os = "linux")]
    if r.buffer().is_empty() {
        // Only a speed-up: a socket that refuses the option works as before.
        let _ = r.get_ref().as_ref().set_quickack(true);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = r;
}

/// Reads DATA up to the lone dot, unstuffing; `None` when it exceeds [`MAX_MESSAGE`]
/// (the rest is still read and dropped so the session stays in step).
async fn read_data(r: &mut Reader) -> std::io::Result<Option<String>> {
    let mut out = Vec::new();
    let mut too_big = false;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = r.read_until(b'\n', &mut line).await?;
        ack_now(r);
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed inside DATA",
            ));
        }
        let content = line
            .strip_suffix(b"\r\n")
            .or_else(|| line.strip_suffix(b"\n"))
            .unwrap_or(&line);
        if content == b"." {
            break;
        }
        let content = content.strip_prefix(b".").unwrap_or(content);
        if out.len() + content.len() + 1 > MAX_MESSAGE {
            too_big = true;
            out.clear();
        }
        if !too_big {
            out.extend_from_slice(content);
            out.push(b'\n');
        }
    }
    Ok((!too_big).then(|| String::from_utf8_lossy(&out).into_owned()))
}

fn parse(from: String, to: Vec<String>, data: &str) -> Mail {
    let (head, body) = data.split_once("\n\n").unwrap_or((data, ""));
    let mut subject = String::new();
    let mut in_subject = false;
    let mut qp = false;
    for l in head.lines() {
        if l.starts_with([' ', '\t']) {
            // RFC 5322 §2.2.3: unfolding removes the line break only; the folding
            // whitespace is part of the value.
            if in_subject {
                subject.push_str(l);
            }
            continue;
        }
        in_subject = false;
        if let Some((k, v)) = l.split_once(':') {
            if k.eq_ignore_ascii_case("subject") {
                subject = v.trim().to_owned();
                in_subject = true;
            } else if k.eq_ignore_ascii_case("content-transfer-encoding") {
                qp = v.trim().eq_ignore_ascii_case("quoted-printable");
            }
        }
    }
    let body = if qp {
        quoted_printable(body)
    } else {
        body.to_owned()
    };
    Mail {
        from,
        to,
        subject,
        body: body.trim_end_matches('\n').to_owned(),
        received_at: crate::time::rfc3339(crate::time::now()),
    }
}

fn quoted_printable(s: &str) -> String {
    let mut out = Vec::new();
    for line in s.split('\n') {
        let (line, soft) = match line.strip_suffix('=') {
            Some(l) => (l, true),
            None => (line, false),
        };
        let b = line.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'='
                && i + 2 < b.len()
                && let Some(v) = std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        if !soft {
            out.push(b'\n');
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Where to send mail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmtpTarget {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// The `From` address.
    pub from: String,
}

/// Why mail could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// An address or header was invalid.
    #[error("building the message: {0}")]
    Build(String),
    /// The SMTP server refused or could not be reached.
    #[error("sending through {server}: {detail}")]
    Smtp {
        /// host:port.
        server: String,
        /// The reason.
        detail: String,
    },
}

/// Sends one plain-text message (unencrypted SMTP: for the catcher or a local relay).
pub async fn send(
    target: &SmtpTarget,
    to: &[String],
    subject: &str,
    body: String,
) -> Result<(), SendError> {
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
    let mut b = Message::builder()
        .from(
            target
                .from
                .parse()
                .map_err(|e| SendError::Build(format!("from {:?}: {e}", target.from)))?,
        )
        .subject(subject);
    for t in to {
        b = b.to(t
            .parse()
            .map_err(|e| SendError::Build(format!("to {t:?}: {e}")))?);
    }
    let msg = b
        .header(lettre::message::header::ContentType::TEXT_PLAIN)
        .body(body)
        .map_err(|e| SendError::Build(e.to_string()))?;
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&target.host)
        .port(target.port)
        .build();
    transport.send(msg).await.map_err(|e| SendError::Smtp {
        server: format!("{}:{}", target.host, target.port),
        detail: e.to_string(),
    })?;
    Ok(())
}
