package smtpprobe

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// IPResolver resolves host names; *net.Resolver implements it. It must be
// safe for concurrent use.
type IPResolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Defaults of Opts.
const (
	DefaultPort      = 25
	DefaultTimeout   = 10 * time.Second
	DefaultHelloName = "moat.invalid"
	// stepsBound is how many step timeouts the whole probe may take.
	stepsBound = 6
)

// Probe probes one MX host: it resolves host, connects to the first
// address that accepts on opts.Port, reads the banner (RFC 5321 §4.3.1),
// sends EHLO (§4.1.1.1), sends STARTTLS when offered (RFC 3207 §4),
// completes a TLS handshake with ServerName = host and verifies the
// certificate by hand (chain, name per RFC 7817 §3 / RFC 6125 §6, dates),
// then says QUIT. Each step has its own timeout and the whole probe is
// bounded; every read is bounded in size. It never panics and always
// returns a Result; Result.Err is nil only when STARTTLS is offered and
// the certificate verifies.
//
// The default EHLO name, "moat.invalid", is in the .invalid TLD that
// RFC 2606 reserves: it cannot be mistaken for a real sending host, and
// servers that check the EHLO name still answer EHLO (they reject at MAIL,
// which the probe never sends). Set HelloName to the checker's host name
// where servers are picky.
func Probe(ctx context.Context, host string, opts Opts) (res *Result) {
	res = &Result{Host: host}
	defer func() {
		// STYLE rule 8: a bug must not take down the checker.
		if r := recover(); r != nil {
			res.fail(fmt.Errorf("%w: internal error: %v", ErrProtocol, r), fmt.Sprintf("internal error: %v", r))
		}
	}()
	p := &prober{res: res, opts: opts.withDefaults()}
	if p.opts.Port < 1 || p.opts.Port > 65535 {
		res.fail(fmt.Errorf("%w: port %d is not a TCP port", ErrConnect, p.opts.Port), fmt.Sprintf("port %d is not a TCP port", p.opts.Port))
		return res
	}
	ctx, cancel := context.WithTimeout(ctx, stepsBound*p.opts.Timeout)
	defer cancel()
	p.run(ctx, strings.TrimSuffix(strings.ToLower(host), "."))
	return res
}

func (o Opts) withDefaults() Opts {
	if o.Resolver == nil {
		o.Resolver = net.DefaultResolver
	}
	if o.Port == 0 {
		o.Port = DefaultPort
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.HelloName == "" {
		o.HelloName = DefaultHelloName
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// fail records the first failure of the probe.
func (r *Result) fail(err error, reason string) {
	if r.Err == nil {
		r.Err, r.Reason = err, reason
	}
}

type prober struct {
	res  *Result
	opts Opts
	conn net.Conn
	br   *bufio.Reader
}

// step times f as a named step.
func (p *prober) step(name string, f func()) {
	start := time.Now()
	f()
	p.res.Steps = append(p.res.Steps, Step{Name: name, Duration: time.Since(start)})
}

func (p *prober) run(ctx context.Context, host string) {
	var addrs []netip.Addr
	var err error
	p.step("resolve", func() { addrs, err = p.resolve(ctx, host) })
	if err != nil {
		p.res.fail(fmt.Errorf("%w: %s: %w", ErrResolve, host, err), fmt.Sprintf("cannot resolve %s: %s", host, err.Error()))
		return
	}
	p.step("connect", func() { err = p.connect(ctx, addrs) })
	if err != nil {
		return
	}
	defer p.conn.Close()
	// Cancelling ctx interrupts any blocked read or write.
	stop := context.AfterFunc(ctx, func() { _ = p.conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	p.br = bufio.NewReaderSize(p.conn, 4096)

	var banner *reply
	p.step("banner", func() { banner, err = p.read(ctx) })
	if err != nil {
		p.failIO(err, "waiting for the banner")
		return
	}
	p.res.Banner = strings.Join(banner.lines, "\n")
	if banner.code != 220 {
		// RFC 5321 §3.1: after a 554 greeting the client sends QUIT.
		re := &ReplyError{Code: banner.code, Text: banner.text()}
		p.res.fail(re, fmt.Sprintf("server refused the session: %d %s", banner.code, clip(banner.text())))
		p.quit(ctx)
		return
	}

	var ehlo *reply
	p.step("ehlo", func() { ehlo, err = p.command(ctx, "EHLO "+p.opts.HelloName) })
	if err != nil {
		p.failIO(err, "after EHLO")
		return
	}
	if ehlo.code != 250 {
		re := &ReplyError{Command: "EHLO", Code: ehlo.code, Text: ehlo.text()}
		p.res.fail(re, fmt.Sprintf("EHLO rejected: %d %s", ehlo.code, clip(ehlo.text())))
		p.quit(ctx)
		return
	}
	if len(ehlo.lines) > 1 {
		p.res.EHLO = ehlo.lines[1:]
	}
	for _, l := range p.res.EHLO {
		if f := strings.Fields(l); len(f) > 0 && strings.EqualFold(f[0], "STARTTLS") {
			p.res.STARTTLS = true
		}
	}
	if !p.res.STARTTLS {
		p.res.fail(ErrNoSTARTTLS, "server offers no STARTTLS")
		p.quit(ctx)
		return
	}

	var st *reply
	p.step("starttls", func() { st, err = p.command(ctx, "STARTTLS") })
	if err != nil {
		p.failIO(err, "after STARTTLS")
		return
	}
	// RFC 3207 §4: 220 means ready to start TLS.
	if st.code != 220 {
		re := &ReplyError{Command: "STARTTLS", Code: st.code, Text: st.text()}
		p.res.fail(re, fmt.Sprintf("STARTTLS refused: %d %s", st.code, clip(st.text())))
		p.quit(ctx)
		return
	}
	if p.br.Buffered() > 0 {
		// RFC 3207 §4: nothing may follow the 220 before the handshake;
		// bytes here would be injected into the TLS session (CVE-2011-0411 class).
		p.res.fail(fmt.Errorf("%w: data after the STARTTLS reply", ErrProtocol), "server sent data after its STARTTLS reply, before the TLS handshake")
		return
	}
	var tc *tls.Conn
	p.step("handshake", func() { tc, err = p.handshake(ctx, host) })
	if err != nil {
		if isTimeout(err) {
			p.res.fail(fmt.Errorf("%w: %w", ErrTimeout, err), "timeout during the TLS handshake")
		} else {
			p.res.fail(fmt.Errorf("%w: %w", ErrTLS, err), "TLS handshake failed: "+err.Error())
		}
		return
	}
	state := tc.ConnectionState()
	p.res.TLSVersion = state.Version
	p.res.CipherSuite = state.CipherSuite
	p.res.Chain = state.PeerCertificates
	p.res.Warnings = append(p.res.Warnings, tlsWarnings(state)...)
	v := verify(host, state.PeerCertificates, p.opts.RootCAs, p.opts.Now())
	p.res.Verified, p.res.ExpiresIn = v.ok, v.expiresIn
	if !v.ok {
		p.res.fail(&CertError{Reason: v.reason, Errs: v.errs}, v.reason)
	}
	p.conn = tc
	p.br = bufio.NewReaderSize(tc, 4096)
	p.quit(ctx)
}

// resolve returns the host's addresses, or the host itself when it is
// an address literal.
func (p *prober) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return []netip.Addr{a}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, p.opts.Timeout)
	defer cancel()
	addrs, err := p.opts.Resolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	if len(addrs) == 0 {
		return nil, errors.New("no address")
	}
	return addrs, nil
}

// connect dials the addresses in turn until one accepts.
func (p *prober) connect(ctx context.Context, addrs []netip.Addr) error {
	var reasons []string
	var errs []error
	d := net.Dialer{Timeout: p.opts.Timeout}
	for _, a := range addrs {
		ap := netip.AddrPortFrom(a.Unmap(), uint16(p.opts.Port)) //nolint:gosec // Probe checked 1..65535
		p.res.Addr = ap
		if p.opts.AllowAddr != nil {
			if err := p.opts.AllowAddr(a); err != nil {
				reasons = append(reasons, fmt.Sprintf("address %s refused: %s", a, err.Error()))
				errs = append(errs, err)
				continue
			}
		}
		c, err := d.DialContext(ctx, "tcp", ap.String())
		if err == nil {
			p.conn = c
			p.res.Connected = true
			return nil
		}
		errs = append(errs, err)
		switch {
		case errors.Is(err, syscall.ECONNREFUSED):
			reasons = append(reasons, "connection refused on "+ap.String())
		case isTimeout(err):
			reasons = append(reasons, "timeout connecting to "+ap.String())
		case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH):
			reasons = append(reasons, "no route to "+ap.String())
		default:
			reasons = append(reasons, fmt.Sprintf("cannot connect to %s: %s", ap, err.Error()))
		}
		if ctx.Err() != nil {
			break
		}
	}
	err := fmt.Errorf("%w: %w", ErrConnect, errors.Join(errs...))
	if len(errs) == 1 && isTimeout(errs[0]) {
		err = fmt.Errorf("%w: %w: %w", ErrConnect, ErrTimeout, errs[0])
	}
	p.res.fail(err, strings.Join(reasons, "; "))
	return err
}

// deadline sets the connection deadline for one step.
func (p *prober) deadline(ctx context.Context) {
	dl := time.Now().Add(p.opts.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	// SetDeadline fails only on a closed connection, which the next read
	// or write reports.
	_ = p.conn.SetDeadline(dl)
}

func (p *prober) read(ctx context.Context) (*reply, error) {
	p.deadline(ctx)
	return readReply(p.br)
}

// command sends one command line and reads its reply.
func (p *prober) command(ctx context.Context, line string) (*reply, error) {
	p.deadline(ctx)
	if _, err := io.WriteString(p.conn, line+"\r\n"); err != nil {
		return nil, err
	}
	return readReply(p.br)
}

func (p *prober) handshake(ctx context.Context, host string) (*tls.Conn, error) {
	p.deadline(ctx)
	cfg := &tls.Config{
		ServerName: host,
		// The certificate is verified by verify, after the handshake,
		// so that the exact reason of a failure can be reported.
		InsecureSkipVerify: true, //nolint:gosec // verified by hand in verify
		// Old versions and suites are offered so that a server that
		// only speaks them is described rather than unreachable; the
		// probe sends no secret over the session.
		MinVersion:   tls.VersionTLS10,
		CipherSuites: allSuites(),
	}
	if _, err := netip.ParseAddr(host); err == nil {
		cfg.ServerName = ""
	}
	tc := tls.Client(p.conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	return tc, nil
}

// quit says QUIT and waits briefly for the 221 (RFC 5321 §4.1.1.10).
func (p *prober) quit(ctx context.Context) {
	p.step("quit", func() {
		grace := min(p.opts.Timeout, 2*time.Second)
		_ = p.conn.SetDeadline(time.Now().Add(grace))
		if _, err := io.WriteString(p.conn, "QUIT\r\n"); err == nil {
			_, _ = readReply(p.br) // the answer does not matter
		}
	})
}

// failIO records an error of a read or write as the result's error and
// reason.
func (p *prober) failIO(err error, when string) {
	switch {
	case isTimeout(err):
		p.res.fail(fmt.Errorf("%w: %s: %w", ErrTimeout, when, err), "timeout "+when)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET):
		p.res.fail(fmt.Errorf("%w: %s: %w", ErrProtocol, when, err), "connection closed by the server "+when)
	case errors.Is(err, ErrProtocol):
		p.res.fail(err, strings.TrimPrefix(err.Error(), "smtpprobe: SMTP protocol error: ")+" "+when)
	default:
		p.res.fail(fmt.Errorf("%w: %s: %w", ErrProtocol, when, err), when+": "+err.Error())
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded)
}

// allSuites returns every TLS 1.0–1.2 cipher suite crypto/tls implements.
func allSuites() []uint16 {
	var ids []uint16
	for _, s := range tls.CipherSuites() {
		ids = append(ids, s.ID)
	}
	for _, s := range tls.InsecureCipherSuites() {
		ids = append(ids, s.ID)
	}
	return ids
}

// tlsWarnings describes weaknesses of the negotiated session.
func tlsWarnings(st tls.ConnectionState) []string {
	var w []string
	if st.Version < tls.VersionTLS12 {
		// RFC 8996 §2-3: TLS 1.0 and 1.1 MUST NOT be used.
		w = append(w, fmt.Sprintf("%s negotiated: RFC 8996 deprecates TLS 1.0 and 1.1; enable TLS 1.2 or later", tls.VersionName(st.Version)))
	}
	for _, s := range tls.InsecureCipherSuites() {
		if s.ID == st.CipherSuite {
			w = append(w, "insecure cipher suite "+s.Name)
		}
	}
	return w
}
