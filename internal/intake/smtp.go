package intake

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-smtp"

	"github.com/moatmail/moat/internal/ratelimit"
	"github.com/moatmail/moat/internal/reqid"
	"github.com/moatmail/moat/internal/store"
)

// DKIM results recorded with reports received by mail.
const (
	DKIMPass = "pass" // at least one signature verifies
	DKIMFail = "fail" // signed, but no signature verifies
	DKIMNone = "none" // not signed
)

// Resolver looks up DNS TXT records (DKIM keys). *net.Resolver fits.
// It must be safe for concurrent use.
type Resolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
}

// SMTPOpts configures the SMTP intake. Recipients is required; every
// other field has a documented zero-value default.
type SMTPOpts struct {
	// Hostname is the name the server greets with and answers EHLO with.
	// Empty means "localhost".
	Hostname string
	// TLSConfig enables STARTTLS when set (RFC 3207). Nil: no STARTTLS.
	TLSConfig *tls.Config
	// Recipients are the TLS-RPT report addresses accepted (the mailto:
	// rua Moat publishes), compared case-insensitively. Mail for any other
	// address than these and DMARCRecipients is refused at RCPT: this
	// server never relays.
	Recipients []string
	// DMARCRecipients are the DMARC report addresses accepted (the rua
	// and ruf domain owners put in their DMARC records).
	DMARCRecipients []string
	// MaxMessageBytes is the largest message accepted, advertised with
	// SIZE (RFC 1870). Zero means 20 MiB (RFC 8460 §5.2 calls ten
	// megabytes a common limit; base64 adds a third).
	MaxMessageBytes int64
	// MaxRecipients is the number of RCPT commands accepted per message.
	// Zero means 10.
	MaxRecipients int
	// ReadTimeout bounds the wait for each command, and for the whole
	// message from the DATA command on. Zero means 5 minutes (RFC 5321
	// §4.5.3.2.7 asks at least that much between commands).
	ReadTimeout time.Duration
	// WriteTimeout bounds each reply. Zero means 1 minute.
	WriteTimeout time.Duration
	// RequireTLS refuses MAIL before STARTTLS with 530 5.7.0. Ignored
	// without TLSConfig.
	RequireTLS bool
	// RequireDKIM refuses a report that is not DKIM-signed or whose
	// signatures all fail (550 5.7.20; 451 4.4.3 when a key lookup failed
	// temporarily). RFC 8460 §3: reports SHOULD be signed by the reporting
	// organization. false: the result is recorded with the report.
	RequireDKIM bool
	// Resolver looks up DKIM keys. Nil means a default net.Resolver (the
	// system's DNS).
	Resolver Resolver
	// DKIMTimeout bounds the DKIM verification of one message. Zero means
	// 20 seconds.
	DKIMTimeout time.Duration
	// MaxConnections bounds simultaneous connections; more are answered
	// 421 and closed. Zero means 200.
	MaxConnections int
	// MaxConnectionsPerIP bounds simultaneous connections from one IP
	// address (IPv6: one /64). Zero means 20.
	MaxConnectionsPerIP int
	// SubmitTimeout bounds the wait for the commit of a report after the
	// message is received. Zero means 60 seconds.
	SubmitTimeout time.Duration
	// Spool acknowledges a message that holds a report once the message
	// is committed to the spool, not once its reports are stored
	// (Ingester.SpoolMail; the Ingester's RunSpool stores them).
	Spool bool
}

func (o SMTPOpts) withDefaults() SMTPOpts {
	if o.Hostname == "" {
		o.Hostname = "localhost"
	}
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = 20 << 20
	}
	if o.MaxRecipients <= 0 {
		o.MaxRecipients = 10
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 5 * time.Minute
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = time.Minute
	}
	if o.Resolver == nil {
		o.Resolver = &net.Resolver{}
	}
	if o.DKIMTimeout <= 0 {
		o.DKIMTimeout = 20 * time.Second
	}
	if o.MaxConnections <= 0 {
		o.MaxConnections = 200
	}
	if o.MaxConnectionsPerIP <= 0 {
		o.MaxConnectionsPerIP = 20
	}
	if o.SubmitTimeout <= 0 {
		o.SubmitTimeout = 60 * time.Second
	}
	return o
}

// SMTPServer receives reports by mail: TLS-RPT (RFC 8460 §5.3), DMARC
// aggregate reports (RFC 7489 §7.2.1.1, RFC 9990 §3.5) and DMARC failure
// reports (RFC 6591, RFC 7489 §7.3). It accepts mail only for the
// configured report addresses, extracts the report, verifies DKIM, stores
// the report through the Ingester and answers 250 only once it is
// committed.
//
// Decisions:
//   - One report per message (RFC 8460 §5.3, RFC 7489 §7.2.1.1): the
//     first candidate part that decodes is stored (see
//     Ingester.SubmitMail). The kind is recognized by the content; the
//     address it came to only breaks ties for damaged reports.
//   - A mail without a report (a bounce, spam, an abuse report) is refused
//     with 550 5.6.0 and the reason; nothing is stored.
//   - A report that does not parse is stored as invalid and answered 250
//     with a note: it is kept and visible, and a bounce would not help
//     the sender, who cannot fix its reporter from a DSN.
//   - A duplicate is answered 250.
type SMTPServer struct {
	log        *slog.Logger
	ing        *Ingester
	opts       SMTPOpts
	recipients map[string]string // address: the kind of reports it is for (store.KindTLSRPT, KindDMARC)
	accepted   string            // the addresses, for refusals
	domains    map[string]bool   // domains of the recipients
	srv        *smtp.Server
	ctx        context.Context // set by Serve; the sessions' parent context
	ctxMu      sync.Mutex

	mu      sync.Mutex
	total   int
	perAddr map[netip.Prefix]int
}

// NewSMTPServer returns an SMTP intake storing through ing. log receives
// one line per message and per refused connection; nil discards.
func NewSMTPServer(log *slog.Logger, ing *Ingester, opts SMTPOpts) *SMTPServer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts = opts.withDefaults()
	s := &SMTPServer{
		log:        log,
		ing:        ing,
		opts:       opts,
		recipients: make(map[string]string),
		domains:    make(map[string]bool),
		perAddr:    make(map[netip.Prefix]int),
		ctx:        context.Background(),
	}
	var all []string
	for kind, list := range map[string][]string{store.KindTLSRPT: opts.Recipients, store.KindDMARC: opts.DMARCRecipients} {
		for _, r := range list {
			r = strings.ToLower(strings.TrimSpace(r))
			s.recipients[r] = kind
			all = append(all, r)
			if at := strings.LastIndexByte(r, '@'); at >= 0 {
				s.domains[r[at+1:]] = true
			}
		}
	}
	slices.Sort(all)
	s.accepted = strings.Join(all, ", ")
	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.Domain = opts.Hostname
	srv.TLSConfig = opts.TLSConfig
	srv.MaxMessageBytes = opts.MaxMessageBytes
	srv.MaxRecipients = opts.MaxRecipients
	srv.ReadTimeout = opts.ReadTimeout
	srv.WriteTimeout = opts.WriteTimeout
	srv.ErrorLog = slogPrinter{log}
	s.srv = srv
	return s
}

// Serve accepts connections on l until ctx is done or Shutdown is called.
// When ctx is done the listener and every connection are closed at once
// (a message in transfer is not acknowledged, so the sender retries); use
// Shutdown first for a graceful stop. It returns nil after a stop.
func (s *SMTPServer) Serve(ctx context.Context, l net.Listener) error {
	s.ctxMu.Lock()
	s.ctx = ctx
	s.ctxMu.Unlock()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-ctx.Done():
			_ = s.srv.Close()
		case <-stop:
		}
	}()
	err := s.srv.Serve(&limitListener{Listener: l, s: s})
	if errors.Is(err, smtp.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting connections and waits until the open ones end
// (or ctx does; then it returns ctx's error).
func (s *SMTPServer) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}

func (s *SMTPServer) baseContext() context.Context {
	s.ctxMu.Lock()
	defer s.ctxMu.Unlock()
	return s.ctx
}

func (s *SMTPServer) newSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{
		s:      s,
		conn:   c,
		id:     reqid.New(),
		remote: ratelimit.RemoteIP(c.Conn().RemoteAddr().String()),
	}, nil
}

// session is one SMTP connection's state.
type session struct {
	s      *SMTPServer
	conn   *smtp.Conn
	id     string // the connection's request id (package reqid)
	msgs   int    // messages begun (DATA) on the connection
	remote netip.Addr
	from   string
	rcpts  []string
	size   int64 // of the message, as MAIL declared it (else a guess)
}

func smtpErr(code int, ec smtp.EnhancedCode, format string, args ...any) *smtp.SMTPError {
	return &smtp.SMTPError{Code: code, EnhancedCode: ec, Message: oneLine(fmt.Sprintf(format, args...))}
}

// oneLine makes text safe for one reply line: no control characters,
// bounded length.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
	const maxLen = 450 // RFC 5321 §4.5.3.1.5: reply lines up to 512 octets
	if len(s) > maxLen {
		s = strings.ToValidUTF8(s[:maxLen], "") + "..."
	}
	return s
}

func (ss *session) isTLS() bool {
	_, ok := ss.conn.TLSConnectionState()
	return ok
}

func (ss *session) Mail(from string, opts *smtp.MailOptions) error {
	if ss.s.opts.RequireTLS && ss.s.opts.TLSConfig != nil && !ss.isTLS() {
		return smtpErr(530, smtp.EnhancedCode{5, 7, 0}, "Must issue a STARTTLS command first")
	}
	if opts != nil && opts.Size > ss.s.opts.MaxMessageBytes {
		// RFC 1870 §6.2: a declared size beyond the limit is refused at MAIL.
		return smtpErr(552, smtp.EnhancedCode{5, 3, 4}, "message size %d exceeds the limit of %d bytes", opts.Size, ss.s.opts.MaxMessageBytes)
	}
	ss.from = from
	ss.rcpts = ss.rcpts[:0]
	ss.size = 4 << 10
	if opts != nil && opts.Size > 0 {
		ss.size = opts.Size
	}
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	addr := strings.ToLower(to)
	if _, ok := ss.s.recipients[addr]; ok {
		ss.rcpts = append(ss.rcpts, addr)
		return nil
	}
	accepted := ss.s.accepted
	if at := strings.LastIndexByte(addr, '@'); at >= 0 && ss.s.domains[addr[at+1:]] {
		return smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "<%s>: no such mailbox (this server only accepts TLS and DMARC reports for %s)", to, accepted)
	}
	// No relaying, ever.
	return smtpErr(550, smtp.EnhancedCode{5, 7, 1}, "<%s>: relaying denied (this server only accepts TLS and DMARC reports for %s)", to, accepted)
}

// hint is the kind of reports the message's recipients are for, "" when
// they are for both.
func (ss *session) hint() string {
	hint := ""
	for i, r := range ss.rcpts {
		k := ss.s.recipients[r]
		if i > 0 && k != hint {
			return ""
		}
		hint = k
	}
	return hint
}

func (ss *session) Reset() {
	ss.from = ""
	ss.rcpts = ss.rcpts[:0]
}

func (ss *session) Logout() error { return nil }

// drainMessage reads and discards what the sender still sends of a
// message that go-smtp's reader gave up on, straight from the
// connection: up to the end-of-data line, the message size limit, or a
// second of silence (the end may already sit in go-smtp's buffer).
func (ss *session) drainMessage() {
	if ss.conn == nil {
		return
	}
	c := ss.conn.Conn()
	limit := ss.s.srv.MaxMessageBytes
	if limit <= 0 {
		limit = 64 << 20
	}
	buf := make([]byte, 32<<10)
	var tail []byte // the last bytes read, to find CRLF.CRLF across reads
	for read := int64(0); read < limit; {
		if err := c.SetReadDeadline(time.Now().Add(time.Second)); err != nil {
			return
		}
		n, err := c.Read(buf)
		read += int64(n)
		tail = append(tail, buf[:n]...)
		if bytes.Contains(tail, []byte("\r\n.\r\n")) || err != nil {
			break
		}
		if len(tail) > 4 {
			tail = append(tail[:0], tail[len(tail)-4:]...)
		}
	}
	_ = c.SetReadDeadline(time.Time{})
}

// Data receives one message and answers only after its report is stored
// (with SMTPOpts.Spool: after the message is committed to the spool).
// A panic here is recovered by go-smtp, which answers 421 and closes the
// connection.
func (ss *session) Data(r io.Reader) error {
	start := time.Now()
	// The message is read into a buffer of the size MAIL declared (RFC
	// 1870), not grown from 512 bytes and copied on the way; at most 1 MiB
	// is set aside before the bytes arrive (a declaration is only a claim).
	buf := bytes.NewBuffer(make([]byte, 0, min(ss.size, 1<<20)+bytes.MinRead))
	_, err := buf.ReadFrom(r)
	data := buf.Bytes()
	if err != nil {
		var se *smtp.SMTPError
		if errors.As(err, &se) {
			return se // 552 5.3.4 when beyond MaxMessageBytes
		}
		if errors.Is(err, smtp.ErrTooLongLine) {
			// RFC 5321 §4.5.3.1.6: a text line is at most 1000 octets
			// with its CRLF; §4.5.3.1.10: "500 Line too long". The message
			// will not get shorter on a retry: a permanent failure. go-smtp
			// stops reading at the long line and closes the connection
			// after this answer; the rest of the message is read first, or
			// the close resets a connection the sender is still writing
			// to, it never sees the 500 and retries.
			ss.drainMessage()
			return smtpErr(500, smtp.EnhancedCode{5, 5, 2}, "line too long: a line of the message exceeds %d octets", ss.s.srv.MaxLineLength)
		}
		return smtpErr(451, smtp.EnhancedCode{4, 3, 0}, "reading the message failed: %v", err)
	}
	ctx := ss.s.baseContext()
	dres, dwhy, dtemp := ss.s.verifyDKIM(ctx, data)
	// The message's attributes are formatted only for a line written: at
	// --log-level warn, slog.Logger.With would format them for nothing.
	ss.msgs++
	log := msgLog{log: ss.s.log, ctx: ctx, attrs: []any{"req", reqid.Sub(ss.id, ss.msgs), "remote", ss.remote, "from", ss.from, "size", len(data), "dkim", dres}}
	if ss.s.opts.RequireDKIM && dres != DKIMPass {
		log.Info("report mail refused: DKIM", "why", dwhy, "temporary", dtemp)
		if dtemp {
			return smtpErr(451, smtp.EnhancedCode{4, 4, 3}, "DKIM key lookup failed temporarily (%s); please retry", dwhy)
		}
		// RFC 8460 §3: reports SHOULD be DKIM-signed by the reporting
		// organization; this server is configured to insist.
		return smtpErr(550, smtp.EnhancedCode{5, 7, 20}, "report refused: DKIM %s (%s); this server requires reports signed by the reporting organization (RFC 8460 §3)", dres, dwhy)
	}

	hint := ss.hint()
	what := "report"
	switch hint {
	case store.KindTLSRPT:
		what = "TLS report"
	case store.KindDMARC:
		what = "DMARC report"
	}
	detail := fmt.Sprintf("from=<%s> ip=%s helo=%s", ss.from, ss.remote, ss.conn.Hostname())
	sctx, cancel := context.WithTimeout(ctx, ss.s.opts.SubmitTimeout)
	defer cancel()
	sub := Submission{Source: SourceSMTP, SourceDetail: detail, DKIM: dres}
	if ss.s.opts.Spool {
		// The processor adds the Message-ID (a header parse less here).
		return ss.spool(sctx, log, sub, data, hint, what, start)
	}
	sub.SourceDetail = withMessageID(detail, data)
	results, err := ss.s.ing.SubmitMail(sctx, sub, data, MailOpts{Hint: hint})
	if err != nil {
		return refusal(log, err, what)
	}
	res := results[0]
	log.Info("report received", "kind", res.Kind, "id", res.ID, "duplicate", res.Duplicate, "conflict_of", res.ConflictOf,
		"status", res.Status, "org", res.OrganizationName, "report_id", res.ReportID, "duration", time.Since(start))
	name := "report"
	switch res.Kind {
	case store.KindDMARC:
		name = "DMARC report"
	case store.KindDMARCFailure:
		name = "DMARC failure report"
	}
	switch {
	case res.Duplicate:
		return smtpErr(250, smtp.EnhancedCode{2, 0, 0}, "%s already received (report %d)", name, res.ID)
	case res.ConflictOf != 0:
		return smtpErr(250, smtp.EnhancedCode{2, 6, 0}, "%s kept aside as report %d: report %d has its organization, report id and period with another content",
			name, res.ID, res.ConflictOf)
	case res.Error != "":
		return smtpErr(250, smtp.EnhancedCode{2, 6, 0}, "invalid %s kept as report %d: %s", name, res.ID, res.Error)
	case res.Kind == store.KindDMARC:
		return smtpErr(250, smtp.EnhancedCode{2, 0, 0}, "%s stored (report %d: %d records, %d messages)", name, res.ID, res.Records, res.Messages)
	default:
		return smtpErr(250, smtp.EnhancedCode{2, 0, 0}, "%s stored (report %d)", name, res.ID)
	}
}

// refusal is the answer to a message whose report was not taken (err from
// SubmitMail or SpoolMail); what names the report the address is for.
func refusal(log msgLog, err error, what string) error {
	switch {
	case errors.Is(err, ErrNotReport):
		log.Info("report mail refused", "err", err)
		return smtpErr(550, smtp.EnhancedCode{5, 6, 0}, "no %s in this message: %s", what, reason(err, ErrNotReport))
	case errors.Is(err, ErrTooLarge):
		log.Info("report mail refused", "err", err)
		return smtpErr(552, smtp.EnhancedCode{5, 3, 4}, "report too large: %v", err)
	case errors.Is(err, ErrSpoolFull):
		log.Warn("report mail deferred", "err", err)
		return smtpErr(452, smtp.EnhancedCode{4, 3, 1}, "too many reports wait to be stored; please retry later")
	}
	log.Warn("report not stored", "err", err)
	return smtpErr(451, smtp.EnhancedCode{4, 3, 0}, "the report could not be stored; please retry later")
}

// spool keeps a message that holds a report in the spool and answers.
func (ss *session) spool(ctx context.Context, log msgLog, sub Submission, data []byte, hint, what string, start time.Time) error {
	rc, err := ss.s.ing.SpoolMail(ctx, sub, data, MailOpts{Hint: hint})
	if err != nil {
		return refusal(log, err, what)
	}
	log.Info("report mail spooled", "kind", rc.Kind, "spool_id", rc.ID, "reports", rc.Reports, "duration", time.Since(start))
	name := "report"
	switch rc.Kind {
	case store.KindTLSRPT:
		name = "TLS report"
	case store.KindDMARC:
		name = "DMARC report"
	case store.KindDMARCFailure:
		name = "DMARC failure report"
	}
	if rc.Reports > 1 {
		name = fmt.Sprintf("%d reports", rc.Reports)
	}
	return smtpErr(250, smtp.EnhancedCode{2, 0, 0}, "%s accepted, queued for storage (spool %d)", name, rc.ID)
}

// msgLog writes the lines of one message with its attributes.
type msgLog struct {
	log   *slog.Logger
	ctx   context.Context
	attrs []any
}

func (l msgLog) at(level slog.Level, msg string, args ...any) {
	if !l.log.Enabled(l.ctx, level) {
		return
	}
	l.log.Log(l.ctx, level, msg, append(slices.Clip(l.attrs), args...)...)
}

func (l msgLog) Info(msg string, args ...any) { l.at(slog.LevelInfo, msg, args...) }

func (l msgLog) Warn(msg string, args ...any) { l.at(slog.LevelWarn, msg, args...) }

// reason is err's message without the sentinel's prefix.
func reason(err, sentinel error) string {
	return strings.TrimPrefix(err.Error(), sentinel.Error()+": ")
}

// verifyDKIM checks the message's DKIM signatures (RFC 6376). It returns
// DKIMPass when any signature verifies, DKIMNone when there is none, and
// DKIMFail otherwise, with a description, and whether the failure is only
// temporary (a key lookup failed).
func (s *SMTPServer) verifyDKIM(ctx context.Context, data []byte) (result, why string, temporary bool) {
	if unsigned(data) {
		return DKIMNone, "no DKIM-Signature", false // what the verifier finds, without its header parse
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.DKIMTimeout)
	defer cancel()
	lookup := func(name string) (txts []string, err error) {
		// The verifier may call this from its own goroutines: a panic
		// here would end the process, so it becomes an error.
		defer func() {
			if p := recover(); p != nil {
				txts, err = nil, fmt.Errorf("DKIM key lookup of %s failed internally: %v", name, p)
			}
		}()
		return s.opts.Resolver.LookupTXT(ctx, name)
	}
	verifs, err := dkim.VerifyWithOptions(bytes.NewReader(data), &dkim.VerifyOptions{LookupTXT: lookup, MaxVerifications: 8})
	if err != nil && !errors.Is(err, dkim.ErrTooManySignatures) {
		return DKIMFail, "message header unreadable: " + err.Error(), false
	}
	if len(verifs) == 0 {
		return DKIMNone, "no DKIM-Signature", false
	}
	var reasons []string
	temporary = true
	for _, v := range verifs {
		if v.Err == nil {
			return DKIMPass, "d=" + v.Domain, false
		}
		if !dkim.IsTempFail(v.Err) {
			temporary = false
		}
		reasons = append(reasons, fmt.Sprintf("d=%s: %v", v.Domain, v.Err))
	}
	return DKIMFail, strings.Join(reasons, "; "), temporary
}

// unsigned reports whether the message data surely has no DKIM-Signature
// field: its header ends with an empty line and does not name one. The
// verifier would read the header to find none; a header it cannot read
// (no empty line) is left to it, for its error.
func unsigned(data []byte) bool {
	var end int
	switch {
	case bytes.HasPrefix(data, []byte("\n")) || bytes.HasPrefix(data, []byte("\r\n")):
		end = 0
	default:
		for i := 0; ; {
			j := bytes.IndexByte(data[i:], '\n')
			if j < 0 {
				return false
			}
			i += j + 1
			if bytes.HasPrefix(data[i:], []byte("\n")) || bytes.HasPrefix(data[i:], []byte("\r\n")) {
				end = i
				break
			}
		}
	}
	const name = "dkim-signature"
	h := data[:end]
	for i := 0; i+len(name) <= len(h); i++ {
		if h[i]|0x20 == 'd' && bytes.EqualFold(h[i:i+len(name)], []byte(name)) {
			return false
		}
	}
	return true
}

// limitListener refuses connections beyond the limits with a 421 reply.
type limitListener struct {
	net.Listener
	s *SMTPServer
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := ratelimit.ClientKey(ratelimit.RemoteIP(c.RemoteAddr().String()))
		if why := l.s.acquire(key); why != "" {
			l.s.log.Info("smtp connection refused", "remote", c.RemoteAddr().String(), "why", why)
			// A fresh connection's send buffer is empty: this write does
			// not block the accept loop for long.
			_ = c.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = fmt.Fprintf(c, "421 4.7.0 %s %s, try again later\r\n", l.s.opts.Hostname, why)
			_ = c.Close()
			continue
		}
		return &smtpConn{Conn: c, release: func() { l.s.release(key) }}, nil
	}
}

func (s *SMTPServer) acquire(key netip.Prefix) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.total >= s.opts.MaxConnections {
		return "too many connections"
	}
	if s.perAddr[key] >= s.opts.MaxConnectionsPerIP {
		return "too many connections from your address"
	}
	s.total++
	s.perAddr[key]++
	return ""
}

func (s *SMTPServer) release(key netip.Prefix) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total--
	if s.perAddr[key]--; s.perAddr[key] <= 0 {
		delete(s.perAddr, key)
	}
}

// slogPrinter adapts go-smtp's logger to slog: recovered panics are
// errors; connection failures (failed TLS handshakes, resets: what
// scanners cause all day) are informational.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Printf(format string, v ...any) { p.print(fmt.Sprintf(format, v...)) }

func (p slogPrinter) Println(v ...any) { p.print(fmt.Sprintln(v...)) }

func (p slogPrinter) print(msg string) {
	msg = strings.TrimSpace(msg)
	if strings.Contains(msg, "panic") {
		p.log.Error("smtp server: " + msg)
		return
	}
	p.log.Info("smtp server: " + msg)
}
