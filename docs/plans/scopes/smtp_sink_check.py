"""Drives smtp_sink.py (beside this file) the way a Rust test would, with Python's smtplib
as the sender: plain SMTP with a temporary failure and a refused recipient, then STARTTLS
required with AUTH. Needs aiosmtpd and openssl. Run: python smtp_sink_check.py"""
import json, os, smtplib, ssl, subprocess, sys, tempfile, time
from email.message import EmailMessage

PY = sys.executable
SINK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../crates/keysmith-cli/tests/smtp/sink.py")
TMP = tempfile.mkdtemp(prefix="smtp-sink-")
OUT, KEY, CRT = (os.path.join(TMP, n) for n in ("out.jsonl", "sink.key", "sink.crt"))


def start(*extra):
    p = subprocess.Popen([PY, SINK, "--stdin-lifeline", "--lifetime", "60", *extra],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    first = json.loads(p.stdout.readline())
    return p, first


def message(subject, body, to="alice@example.test"):
    m = EmailMessage()
    m["From"] = "Keysmith <keysmith@example.test>"
    m["To"] = to
    m["Subject"] = subject
    m.set_content(body, cte="quoted-printable")
    return m


# 1. plain SMTP, no auth
t0 = time.monotonic()
p, ready = start("--out", OUT, "--fail-first", "1", "--reject-rcpt", "nobody@example.test")
print("READY", ready, f"{(time.monotonic()-t0)*1000:.0f} ms")
with smtplib.SMTP("127.0.0.1", ready["port"], local_hostname="keysmith.local", timeout=10) as s:
    print("EHLO", s.ehlo()[0], sorted(s.esmtp_features))
    try:
        s.send_message(message("first try", "fails with 451"))
    except smtplib.SMTPDataError as e:
        print("TEMPFAIL", e.smtp_code, e.smtp_error.decode())
    try:
        s.send_message(message("to nobody", "x", to="nobody@example.test"))
    except smtplib.SMTPRecipientsRefused as e:
        print("REJECTED", e.recipients)
    s.send_message(message("Your API key expires in 7 days",
                           "Key wandb_v1_abc… (nightly) expires on 2026-12-14.\n.\nA line with a dot above; ünïcode too."))
rec = json.loads(p.stdout.readline())
print("RECEIVED", json.dumps({k: rec[k] for k in ("seq", "mail_from", "rcpt_tos", "tls", "auth_login", "helo", "headers", "text")}, ensure_ascii=False))
p.stdin.close()
print("EXIT on stdin close", p.wait(timeout=5))
print("FILE lines", [json.loads(l)["event"] for l in open(OUT)])

# 2. STARTTLS required + AUTH
subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", KEY, "-out", CRT],
               check=True, capture_output=True)
p, ready = start("--tls-cert", CRT, "--tls-key", KEY, "--require-starttls", "--auth", "mailer:s3cret")
print("READY", ready)
with smtplib.SMTP("127.0.0.1", ready["port"], local_hostname="keysmith.local", timeout=10) as s:
    s.ehlo()
    print("BEFORE TLS", sorted(s.esmtp_features))
    try:
        s.mail("keysmith@example.test")
        print("MAIL before STARTTLS", s.rcpt("alice@example.test"))
    except smtplib.SMTPException as e:
        print("MAIL before STARTTLS refused:", e)
    s.rset()
    ctx = ssl.create_default_context(cafile=CRT)
    s.starttls(context=ctx)
    s.ehlo()
    print("AFTER TLS", sorted(s.esmtp_features))
    s.login("mailer", "s3cret")
    s.send_message(message("over TLS", "hello"))
rec = json.loads(p.stdout.readline())
print("RECEIVED", {k: rec[k] for k in ("seq", "tls", "auth_login", "text")})
p.terminate()
print("EXIT on SIGTERM", p.wait(timeout=5))
