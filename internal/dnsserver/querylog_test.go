package dnsserver

import (
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/moatmail/moat/internal/testlog"
)

// TestQueryLog: at debug level every query is logged with a request id,
// the client's address and port, the question and the answer's code, on
// UDP and TCP; at info level nothing is (and batched UDP stays on).
func TestQueryLog(t *testing.T) {
	t.Parallel()
	var out testlog.Buffer
	env := startLogged(t, nil, pathBatch, out.Logger(slog.LevelDebug))
	if !env.srv.noBatch {
		t.Error("queries logged with batched UDP on: the batched path does not decode the client's address")
	}
	env.exchange(t, "udp", question("Customer.com._mta-sts.sts.example.net.", dns.TypeTXT, false))
	env.exchange(t, "tcp", question("missing.sts.example.net.", dns.TypeA, false))
	env.exchange(t, "udp", question("customer.com._mta-sts.sts.example.net.", 65280, false))
	// A response sent as a query, on TCP (whose answers are appended
	// after the length): not answered, and said so.
	resp := question("customer.com._mta-sts.sts.example.net.", dns.TypeTXT, false)
	resp.Response = true
	wire, err := resp.Pack()
	if err != nil {
		t.Fatal(err)
	}
	if got := env.srv.appendResponse(make([]byte, 2, 512), wire, TCP, netip.MustParseAddrPort("127.0.0.1:53000")); got != nil {
		t.Errorf("a response was answered: %x", got)
	}
	if !strings.Contains(out.String(), `msg="dns query not answered" req=`) || !strings.Contains(out.String(), "client=127.0.0.1:53000 proto=tcp") {
		t.Errorf("the unanswered message is not logged:\n%s", out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var got []string
	for _, l := range lines {
		if strings.Contains(l, `msg="dns query"`) {
			got = append(got, l)
		}
	}
	if len(got) != 3 {
		t.Fatalf("%d query lines, want 3:\n%s", len(got), out.String())
	}
	for i, want := range [][]string{
		{"proto=udp", "name=customer.com._mta-sts.sts.example.net.", "type=TXT", "rcode=NOERROR", "answers=1"},
		{"proto=tcp", "name=missing.sts.example.net.", "type=A", "rcode=NXDOMAIN", "answers=0"},
		{"proto=udp", "type=TYPE65280"},
	} {
		for _, w := range append(want, "req=", "client=127.0.0.1:", "dns_id=") {
			if !strings.Contains(got[i], w) {
				t.Errorf("line %d lacks %q: %s", i, w, got[i])
			}
		}
	}
	ids := map[string]bool{}
	for _, l := range got {
		_, rest, _ := strings.Cut(l, "req=")
		id, _, _ := strings.Cut(rest, " ")
		ids[id] = true
	}
	if len(ids) != 3 {
		t.Errorf("request ids not distinct: %v", ids)
	}

	var quiet testlog.Buffer
	env = startLogged(t, nil, pathBatch, quiet.Logger(slog.LevelInfo))
	if env.srv.noBatch || env.srv.logQueries {
		t.Error("at info level: queries logged or batched UDP off")
	}
	env.exchange(t, "udp", question("customer.com._mta-sts.sts.example.net.", dns.TypeTXT, false))
	if strings.Contains(quiet.String(), "dns query") {
		t.Errorf("query logged at info level:\n%s", quiet.String())
	}
}
