package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/emersion/go-smtp"
)

// tlsConfig is the clients' TLS configuration. Server CPU is what is
// measured: the client skips verifying the development CA's certificate
// to leave the CPUs to the server, offers X25519 only (as tlsload does)
// and keeps no session cache, so a new connection is a full handshake.
func (l *load) tlsConfig() *tls.Config {
	return &tls.Config{
		ServerName:         l.cfg.host,
		InsecureSkipVerify: true,
		CurvePreferences:   []tls.CurveID{tls.X25519},
	}
}

// https is one client POSTing reports: over one keep-alive connection, or
// a new connection per report with -per-conn 1.
func (l *load) https(ctx context.Context) {
	tc := l.tlsConfig()
	tc.NextProtos = []string{"http/1.1"}
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, l.cfg.addr)
			if err == nil {
				l.conns.Add(1)
			}
			return c, err
		},
		TLSClientConfig:     tc,
		TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{}, // HTTP/1.1
		DisableKeepAlives:   l.cfg.perConn == 1,
		DisableCompression:  true,
		MaxIdleConnsPerHost: 1,
		MaxConnsPerHost:     1,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	url := "https://" + l.cfg.host + "/v1/tlsrpt"
	ct := "application/tlsrpt+json"
	if l.cfg.gzip {
		ct = "application/tlsrpt+gzip"
	}
	for {
		body, ok := l.take()
		if !ok {
			return
		}
		if err := l.post(ctx, client, url, ct, body); err != nil {
			l.fail(err)
			return
		}
	}
}

func (l *load) post(ctx context.Context, client *http.Client, url, ct string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", ct)
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", url, err)
	}
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("POST %s: reading the answer: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: %s: %q", url, resp.Status, answer)
	}
	return l.ack(string(answer))
}

// errRefused is a connection refused with 421 in the greeting (Moat's
// SMTP intake bounds the connections per client IP address, and every
// client here is 127.0.0.1).
var errRefused = errors.New("connection refused with 421")

// smtp is one client delivering reports by mail, -per-conn messages per
// connection. A connection refused with 421 is retried a moment later, as
// a sending MTA would, with the same message.
func (l *load) smtp(ctx context.Context) {
	for {
		msg, ok := l.take()
		if !ok {
			return
		}
		err := l.session(ctx, msg)
		for tries := 1; errors.Is(err, errRefused) && tries < 1000; tries++ {
			l.refused.Add(1)
			time.Sleep(5 * time.Millisecond)
			err = l.session(ctx, msg)
		}
		if err != nil {
			l.fail(err)
			return
		}
	}
}

// session delivers first and up to perConn-1 more messages over one
// connection, then QUITs.
func (l *load) session(ctx context.Context, first []byte) error {
	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", l.cfg.addr)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", l.cfg.addr, err)
	}
	l.conns.Add(1)
	var c *smtp.Client
	if l.cfg.starttls {
		c, err = smtp.NewClientStartTLS(conn, l.tlsConfig())
	} else {
		c = smtp.NewClient(conn)
		err = c.Hello("mta.sender.example")
	}
	if err != nil {
		conn.Close()
		var se *smtp.SMTPError
		if errors.As(err, &se) && se.Code == 421 {
			return fmt.Errorf("%w: %w", errRefused, err)
		}
		return fmt.Errorf("%s: greeting, EHLO or STARTTLS: %w", l.cfg.addr, err)
	}
	defer func() { _ = c.Close() }()
	c.CommandTimeout = 30 * time.Second
	c.SubmissionTimeout = time.Minute
	msg := first
	for k := 0; ; k++ {
		if err := l.deliver(c, msg); err != nil {
			return err
		}
		if k+1 >= l.cfg.perConn {
			break
		}
		var ok bool
		if msg, ok = l.take(); !ok {
			break
		}
	}
	if err := c.Quit(); err != nil {
		return fmt.Errorf("%s: QUIT: %w", l.cfg.addr, err)
	}
	return nil
}

func (l *load) deliver(c *smtp.Client, msg []byte) error {
	if err := c.Mail("noreply-tlsrpt@sender.example", &smtp.MailOptions{Size: int64(len(msg))}); err != nil {
		return fmt.Errorf("MAIL: %w", err)
	}
	if err := c.Rcpt(l.cfg.rcpt, nil); err != nil {
		return fmt.Errorf("RCPT TO:<%s>: %w", l.cfg.rcpt, err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("DATA: writing the message: %w", err)
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		return fmt.Errorf("end of DATA: %w", err)
	}
	return l.ack(resp.StatusText)
}
